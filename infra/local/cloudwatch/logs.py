"""CloudWatch's part of logging, played locally: ship log lines to CloudWatch Logs on the
emulator and extract embedded-metric-format (EMF) lines into CloudWatch metrics.

* Lambda functions (each in its own process, ``infra/local/awslambda/runtime.py``): their output files (Powertools
  log lines and EMF lines) are tailed into ``/aws/lambda/<app>-<stage>-<function>`` (the API:
  ``/aws/lambda/<app>-<stage>``), one log stream per function container
  (``YYYY/MM/DD/[$LATEST]<id>``), as Lambda names them.
* Worker tasks: their output files are tailed into the task definition's ``awslogs`` group,
  stream ``<awslogs-stream-prefix>/<container>/<task id>``, as the awslogs driver names them.
* Every JSON line with an ``_aws.CloudWatchMetrics`` directive also becomes PutMetricData,
  what CloudWatch does for Lambda (and, on ECS, for the log router's ``json/emf`` output).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

log = logging.getLogger("vodpipe.local.logs")
def emf_to_metric_data(doc: dict) -> list[tuple[str, list[dict]]]:
    """(namespace, MetricData entries) for an EMF document (CloudWatch EMF specification:
    ``_aws.CloudWatchMetrics[].{Namespace, Dimensions, Metrics}``; values are the root keys,
    a number or an array of numbers). Documents that are not EMF give []."""
    meta = doc.get("_aws") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return []
    ts = datetime.fromtimestamp(int(meta.get("Timestamp", time.time() * 1000)) / 1000, timezone.utc)
    out = []
    for directive in meta.get("CloudWatchMetrics") or []:
        data = []
        for dims in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": d, "Value": str(doc[d])} for d in dims if d in doc]
            for metric in directive.get("Metrics") or []:
                value = doc.get(metric["Name"])
                values = value if isinstance(value, list) else [value]
                values = [float(v) for v in values if isinstance(v, (int, float))]
                if not values:
                    continue
                entry = {"MetricName": metric["Name"], "Dimensions": dimensions, "Timestamp": ts,
                         "Unit": metric.get("Unit", "None")}
                if len(values) == 1:
                    entry["Value"] = values[0]
                else:
                    entry["Values"] = values
                data.append(entry)
        out.append((directive.get("Namespace", "default"), data))
    return out


class LogShipper(threading.Thread):
    """Batches lines per (group, stream) and ships them every ``interval`` seconds; tails
    worker log files; extracts EMF metrics."""

    def __init__(self, logs_client, cloudwatch_client, function_group: callable, interval: float = 1.0):
        super().__init__(daemon=True, name="log-shipper")
        self.logs, self.cw = logs_client, cloudwatch_client
        self.function_group = function_group  # function name -> log group
        self.interval = interval
        self._pending: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._streams: set[tuple[str, str]] = set()
        self._tails: dict[Path, tuple[tuple[str, str], int]] = {}
        self._halt = threading.Event()
        self.shipped = 0
        self.metrics_put = 0
        # raw values seen, for the alarm evaluator's percentile alarms: key -> [(time, value)]
        self._values: dict[tuple, list[tuple[datetime, float]]] = defaultdict(list)

    # --- sources ----------------------------------------------------------------------
    def tail(self, path: Path, group: str, stream: str) -> None:
        """Ship new lines of ``path`` (a worker's output) to (group, stream)."""
        with self._lock:
            self._tails.setdefault(Path(path), ((group, stream), 0))

    def add(self, target: tuple[str, str], line: str, ts_ms: int | None = None) -> None:
        with self._lock:
            self._pending[target].append((ts_ms or int(time.time() * 1000), line))

    # --- shipping ---------------------------------------------------------------------
    def _read_tails(self) -> None:
        with self._lock:
            tails = list(self._tails.items())
        for path, (target, offset) in tails:
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1  # whole lines only
            if end:
                for line in data[:end].decode(errors="replace").splitlines():
                    if line.strip():
                        self.add(target, line)
                with self._lock:
                    self._tails[path] = (target, offset + end)

    def _ensure_stream(self, group: str, stream: str) -> None:
        if (group, stream) in self._streams:
            return
        for call, kwargs in ((self.logs.create_log_group, {"logGroupName": group}),
                             (self.logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
            try:
                call(**kwargs)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
        self._streams.add((group, stream))

    def flush(self) -> None:
        """Ship everything pending now."""
        self._read_tails()
        with self._lock:
            pending, self._pending = self._pending, defaultdict(list)
        for (group, stream), events in pending.items():
            events.sort()
            self._ensure_stream(group, stream)
            for i in range(0, len(events), 1000):
                batch = events[i:i + 1000]
                self.logs.put_log_events(logGroupName=group, logStreamName=stream,
                                         logEvents=[{"timestamp": t, "message": m} for t, m in batch])
                self.shipped += len(batch)
            self._extract_metrics(m for _, m in events)

    def _extract_metrics(self, lines: Iterable[str]) -> None:
        for line in lines:
            if '"_aws"' not in line:
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            for namespace, data in emf_to_metric_data(doc):
                for d in data:
                    key = (namespace, d["MetricName"], frozenset((x["Name"], x["Value"]) for x in d["Dimensions"]))
                    vals = d.get("Values") or [d["Value"]]
                    with self._lock:
                        self._values[key] = (self._values[key] + [(d["Timestamp"], v) for v in vals])[-10000:]
                for i in range(0, len(data), 20):
                    self.cw.put_metric_data(Namespace=namespace, MetricData=data[i:i + 20])
                    self.metrics_put += len(data[i:i + 20])

    def values(self, namespace: str, name: str, dimensions: list[dict]) -> list[tuple[datetime, float]]:
        """(time, value) of every datapoint of a metric seen in EMF lines (latest 10,000)."""
        key = (namespace, name, frozenset((d["Name"], d["Value"]) for d in dimensions))
        with self._lock:
            return list(self._values.get(key, []))

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the emulator may be going away
                log.debug("log shipping failed", exc_info=True)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        try:
            self.flush()
        except Exception:  # noqa: BLE001
            log.debug("final log flush failed", exc_info=True)
