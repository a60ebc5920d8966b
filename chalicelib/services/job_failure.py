"""The one failure path of a job: record it ``failed`` with its error, publish ``JobFailed``
once, count ``JobsFailed``.

Every way a job fails goes through ``fail_job``: a permanent error at ingest
(``ingest.ingest_object``), a task's permanent error on a worker
(``transcode.TranscodeTaskRunner.fail``), a task message dead-lettered
(``failures.dead_letter``) and an upload dead-lettered at ingest
(``failures.ingest_dead_letter``). "Once" comes from the conditional writes
(docs/state.md): only the call whose write moved the job to ``failed`` (or created it
failed) publishes and counts.
"""
from __future__ import annotations

from chalicelib import metrics
from chalicelib.aws.table import now_iso
from chalicelib.domain import jobs

from .context import Context


def fail_job(ctx: Context, job_id: str, error: dict, *, event_detail: dict | None = None,
             metadata: dict | None = None, create: dict | None = None, update_existing: bool = True,
             metric_values: list | None = None) -> bool:
    """Fail job ``job_id`` with ``error`` (``{"code", "message", ...}``, stored as the job's
    ``error`` and sent as the event's ``error``); returns True when this call failed it.

    * ``create``: the job item to create, already ``failed`` (a conditional create, for a job
      that may not exist yet: ``job_id``, source fields, ``job_status``, ``error`` ...). When
      the job exists already, its status is moved to ``failed`` instead, unless
      ``update_existing`` is False (then nothing is written). Without ``create``, the existing
      job's status moves to ``failed`` (forward only: nothing happens to a job that already
      ended) with ``error`` and ``completed_at``.
    * When this call failed the job: ``JobFailed`` is published with ``{"error": error,
      **event_detail}`` and ``metadata`` (the job's ``metadata`` setting, echoed in events),
      and the ``JobsFailed`` count (1, no dimension) is appended to ``metric_values`` (the EMF
      document the caller is building and emits) or, when ``metric_values`` is None, emitted
      here on its own.

    Raises what the job store or the events topic raise (AWS errors); a failed metric never
    raises (``metrics.emit``)."""
    failed = False
    if create is not None:
        failed = ctx.store.create_job(create, [])
    if not failed and (create is None or update_existing):
        failed = ctx.store.set_job_status(job_id, jobs.FAILED, error=error, completed_at=now_iso())
    if not failed:
        return False
    ctx.events.publish("JobFailed", job_id, jobs.FAILED, {"error": error, **(event_detail or {})}, metadata)
    counted = ("JobsFailed", 1, metrics.Unit.Count)
    if metric_values is None:
        metrics.emit([counted])
    else:
        metric_values.append(counted)
    return True
