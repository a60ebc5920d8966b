"""What a task kind needs from the runner that runs it.

A task kind (``chunk_task.encode_chunk``, ``audio_task.encode_audio``) is a function
``encode(runtime, url, out_dir, job_id, msg, on_progress) -> (stats, (seconds, cpu_seconds))``.
It gets the runner as an ``EncodeRuntime``, so the task kinds depend on this protocol and
the runner (``transcode.TranscodeTaskRunner``) on the task kinds, never the other way round.
"""
from __future__ import annotations

import threading
from typing import Callable, Protocol

from chalicelib.tools.ffmpeg import RunResult

from .context import Context


class EncodeRuntime(Protocol):
    """The runner of one task message, as a task kind sees it while it encodes."""

    @property
    def ctx(self) -> Context:
        """The process's settings and adapters."""
        ...

    @property
    def canceled(self) -> threading.Event:
        """Set when the running task's job was canceled (the segment uploader checks it:
        nothing more is written for a canceled job)."""
        ...

    @property
    def interrupted(self) -> bool:
        """The current run was stopped: canceled, lease lost, overdue or SIGTERM."""
        ...

    def raise_if_interrupted(self, job_id: str, name: str) -> None:
        """Raise what stopped the current run of task ``name`` of job ``job_id``:
        ``JobCanceled``, ``TaskLeased`` (lease lost) or ``RunTimeout`` (overran its bound);
        nothing when it was not interrupted."""
        ...

    def ffmpeg(self, args: list[str], duration: float, on_progress: Callable[[float], None], what: str, url: str,
               check_result: bool = True, measure_quality: bool = False, info_log: bool = False,
               niceness: int = 0) -> RunResult:
        """Run ffmpeg with ``args`` over ``duration`` seconds of media within the task's time
        bound, reporting ``on_progress(percent)``; stoppable by the runner. ``what`` names the
        run in errors, ``url`` is its input. With ``check_result``, raise what interrupted it
        or what its failure means (``chalicelib.tools.ffmpeg.check``: ``PermanentError``,
        ``TransientError``). ``info_log``: the result's ``stderr`` holds the info-level log.
        ``niceness``: its CPU niceness (``chunks.encode_niceness``)."""
        ...
