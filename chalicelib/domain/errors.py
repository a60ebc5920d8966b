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
    """A failure worth retrying (ffmpeg killed by a signal, a dependency unavailable)."""


class ToolMissingError(VodpipeError):
    """ffmpeg or ffprobe cannot be found; the message says how to install them."""
