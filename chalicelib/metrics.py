"""Pipeline metrics in CloudWatch embedded metric format (EMF), through Powertools Metrics.

One namespace (``vodpipe``), one default dimension (``service``) and at most one more
(``kind`` of task: chunk, audio): bounded, never a job id. ``emit`` writes one EMF
JSON line to the sink: standard output by default, which is what CloudWatch extracts metrics
from in Lambda; the transcoder task's log router does the same on ECS (see README,
"Operations"); the local cloud ships each function's and task's output to its log stream and
extracts the metrics itself (``infra/local/cloudwatch/logs.py``).

Metric names and units:

=========================  =======  =====================================================
Uploads                    Count    objects received by ingest
BytesIn                    Bytes    size of the uploaded sources
JobsStarted                Count    jobs created with tasks
JobsCompleted              Count    jobs that reached ``complete``
JobsFailed                 Count    jobs that reached ``failed`` (ingest, worker or DLQ)
DeadLetters                Count    task messages that reached the dead-letter queue
IngestDeadLetters          Count    ingest messages that reached the ingest dead-letter queue
DeadLettersPending         Count    dead letters waiting for a redrive (gauge; alarm)
TranscodeSeconds           Seconds  wall time of one task's ffmpeg work (dimension ``kind``)
TranscodeSpeed             None     source seconds encoded per wall second (``kind``)
TimeQueued                 Seconds  upload to a task's first start (``kind``)
TimeToPlayable             Seconds  upload to the first published (EVENT or whole) presentation
JobLatency                 Seconds  upload to ``complete``
BytesOut                   Bytes    bytes a task wrote to the output bucket (``kind``)
=========================  =======  =====================================================
"""
from __future__ import annotations

import json
import sys
import threading
from typing import Callable

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "vodpipe"
Unit = MetricUnit

_lock = threading.Lock()


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


sink: Callable[[str], None] = _stdout


def emit(values: list[tuple[str, float, MetricUnit]], kind: str | None = None) -> None:
    """Write ``values`` (name, value, unit) as one EMF document, with dimension ``kind`` when
    given. Never raises: metrics must not fail the pipeline."""
    if not values:
        return
    try:
        with _lock:
            m = Metrics(namespace=NAMESPACE, service="vodpipe")
            m.clear_metrics()
            if kind:
                m.add_dimension(name="kind", value=kind)
            for name, value, unit in values:
                m.add_metric(name=name, unit=unit, value=float(value))
            doc = m.serialize_metric_set()
            m.clear_metrics()
        sink(json.dumps(doc, separators=(",", ":")))
    except Exception:  # noqa: BLE001
        pass
