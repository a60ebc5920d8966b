"""Error taxonomy shared by ingest, workers and the API.

``PermanentError``: retrying cannot help (not a video, corrupt or truncated media, unsupported
input). The job fails at once with ``code`` and a readable ``message``; the task is deleted,
not retried. Anything else raised while handling a task is treated as transient and retried
through the SQS visibility timeout until the redrive policy moves it to the dead-letter queue.
"""
from __future__ import annotations


class VodpipeError(Exception):
    """Base class of vodpipe's own errors."""


class PermanentError(VodpipeError):
    """A failure that no retry can fix.

    ``code`` is a stable machine-readable identifier (upper snake case, e.g.
    ``UNREADABLE_MEDIA``); ``message`` is meant for the person who uploaded the file.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        """``{"code": ..., "message": ...}``, the shape of a job's ``error`` field."""
        return {"code": self.code, "message": self.message}


class TransientError(VodpipeError):
    """A failure worth retrying (ffmpeg killed by a signal, a dependency unavailable).

    ``code`` names the cause for operators (``last_error.code`` of the task, the dead letter):
    ``TRANSIENT`` unless a subclass or the raiser says more."""

    code = "TRANSIENT"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class SourceUnreachable(TransientError):
    """ffmpeg/ffprobe could not read the source over HTTP (an HTTP error status, a refused or
    reset connection, a timeout). The caller asks S3 what happened to the pinned object and
    raises the precise error (``SOURCE_NOT_FOUND``, ``SOURCE_CHANGED``, access denied)."""

    code = "SOURCE_UNREACHABLE"


class ConfigurationError(TransientError):
    """Our own deployment refused us (AccessDenied on our buckets, queues, table or topic):
    never the media's fault. Retried, so a fixed policy lets the work finish; alarmed through
    the dead-letter queues when it persists."""

    code = "ACCESS_DENIED"


class RunTimeout(TransientError):
    """An ffmpeg run or a task exceeded its wall-clock bound (derived from the probed
    duration and the minimum speed setting). Retried; after the redrive count the task ends
    in the dead-letter queue, never in an endless loop."""

    code = "TASK_TIMEOUT"


class ToolMissingError(VodpipeError):
    """ffmpeg or ffprobe cannot be found; the message says how to install them."""


def describe(error: BaseException) -> dict[str, str]:
    """``{"code", "message"}`` for any error, as stored in ``last_error``: our own codes, the
    AWS error code of a botocore ``ClientError`` (``AccessDenied``, ``ThrottlingException``...),
    else the exception's class name. Messages are cut to 1,000 characters."""
    code = getattr(error, "code", None)
    if not isinstance(code, str):
        response = getattr(error, "response", None)
        code = (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None
    message = error.message if isinstance(error, PermanentError) else str(error)
    return {"code": str(code or type(error).__name__), "message": message[:1000]}


class InvalidSettings(PermanentError):
    """A settings document that does not validate. ``field`` names the offending field (dotted,
    e.g. ``ladder.1.bitrate``; ``x-amz-meta-<key>`` for S3 metadata); ``message`` says why."""

    def __init__(self, field: str, message: str):
        super().__init__("INVALID_SETTINGS", f"{field}: {message}")
        self.field = field
        self.reason = message
