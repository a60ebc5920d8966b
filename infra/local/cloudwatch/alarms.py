"""CloudWatch alarm evaluation, played locally (moto stores alarms but never evaluates them).

Every ``interval`` seconds each alarm of the stack is evaluated the way CloudWatch documents
it ("Evaluating an alarm", CloudWatch user guide): the last ``EvaluationPeriods`` periods of
``Period`` seconds; ``DatapointsToAlarm`` (M) of them breaching -> ALARM; missing periods
per ``TreatMissingData`` (``missing``: not counted, all missing -> INSUFFICIENT_DATA;
``notBreaching``/``breaching``: counted as good/bad; ``ignore``: all missing keeps the state).
Alarms start INSUFFICIENT_DATA. A state change is set on the emulator with its reason, kept
in the history log group and published to the alarm's actions (SNS) as CloudWatch's alarm
notification JSON.

Also publishes the SQS metrics SQS would (``AWS/SQS`` ``ApproximateNumberOfMessagesVisible``
per queue, ``ApproximateAgeOfOldestMessage`` of the task queues), read from the emulator's
queues (``sqs_metrics``), as SQS publishes them from its own state.
``pNN`` alarms are evaluated from the raw values the local EMF extraction saw
(``LogShipper.values``) with the project's one percentile definition
(``chalicelib/domain/statistics.py``), the same the emulator's ``GetMetricData`` answers with
(``percentiles.py``).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Sequence

from chalicelib.aws.table import now_iso
from chalicelib.domain.statistics import percentile


log = logging.getLogger("vodpipe.local.alarms")

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def evaluate(alarm: dict, values: Sequence[float | None], current: str) -> tuple[str, str]:
    """New (state, reason) for ``alarm`` (describe_alarms shape) given one value per
    evaluation period, oldest first (None = no datapoint)."""
    n = int(alarm["EvaluationPeriods"])
    m = int(alarm.get("DatapointsToAlarm") or n)
    treat = alarm.get("TreatMissingData") or "missing"
    threshold = float(alarm["Threshold"])
    cmp = COMPARE[alarm["ComparisonOperator"]]
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return current, "no datapoints: state kept (TreatMissingData ignore)"
        return "INSUFFICIENT_DATA", f"Insufficient Data: {len(values)} datapoints were unknown."
    breaching = sum(1 for v in present if cmp(v, threshold))
    if treat == "breaching":
        breaching += missing
    shown = ", ".join("missing" if v is None else f"{v:g}" for v in values)
    op = alarm["ComparisonOperator"]
    if breaching >= m:
        return "ALARM", (f"Threshold Crossed: {breaching} out of the last {n} datapoints [{shown}] were "
                         f"{op} the threshold ({threshold:g}) (minimum {m} datapoints for OK -> ALARM transition).")
    return "OK", (f"Threshold Crossed: {breaching} out of the last {n} datapoints [{shown}] were {op} "
                  f"the threshold ({threshold:g}) (minimum {m} datapoints for ALARM transition).")


#: The reason of a just-created alarm (moto's and AWS's wording).
INITIAL_REASON = "Unchecked: Initial alarm creation"


class AlarmEvaluator(threading.Thread):
    """Evaluates the stack's alarms every ``interval`` seconds (see the module docstring)."""

    def __init__(self, client: Callable[[str], Any], stack: Any, shipper: Any, queues: Any, alarm_names: list[str],
                 history_group: str, interval: float = 10.0):
        """``client(service)``: boto3 clients (CloudWatch, SNS, Logs) as the service itself;
        ``stack``: the resolved stack (its queues, account, region); ``shipper``: the log
        shipper, whose raw metric values answer percentile alarms; ``queues``: the ``AWS/SQS``
        metrics reader (``sqs_metrics.queue_metrics``, built once and reused every
        evaluation); ``alarm_names``: the alarms to evaluate; ``history_group``: the log group
        of their state changes; ``interval`` in s."""
        super().__init__(daemon=True, name="alarm-evaluator")
        self.stack, self.shipper, self._queues = stack, shipper, queues
        self.alarm_names, self.history_group, self.interval = alarm_names, history_group, interval
        self.cw, self.sns, self.logs = client("cloudwatch"), client("sns"), client("logs")
        self._halt = threading.Event()
        self.history: list[dict] = []
        self._stream = f"{datetime.now(timezone.utc):%Y/%m/%d}/evaluator"
        try:  # the alarms start in INSUFFICIENT_DATA when they are created, not on a first poll
            self._setup()
            self._ready = True
        except Exception:  # noqa: BLE001
            log.exception("alarm evaluator could not start")
            self._ready = False

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def run(self) -> None:
        if not self._ready:
            return
        while not self._halt.wait(self.interval):
            try:
                self.publish_queue_metrics()
                self.evaluate_all()
            except Exception:  # noqa: BLE001 - the emulator may be going away
                log.debug("alarm evaluation failed", exc_info=True)

    def _setup(self) -> None:
        for call, kw in ((self.logs.create_log_group, {"logGroupName": self.history_group}),
                         (self.logs.create_log_stream, {"logGroupName": self.history_group, "logStreamName": self._stream})):
            try:
                call(**kw)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
        for alarm in self._alarms():
            # moto creates an alarm in OK (AWS: INSUFFICIENT_DATA) with this reason; a state kept
            # from an earlier run (a data directory) has another reason and stands
            if alarm.get("StateReason") == INITIAL_REASON:
                self._transition(alarm, "INSUFFICIENT_DATA", INITIAL_REASON, notify=False)

    def _alarms(self) -> list[dict]:
        return self.cw.describe_alarms(AlarmNames=self.alarm_names)["MetricAlarms"]

    # --- metrics ----------------------------------------------------------------------
    def publish_queue_metrics(self) -> None:
        """Put the ``AWS/SQS`` metrics of the stack's queues (see the module docstring)."""
        stack, now = self.stack, datetime.now(timezone.utc)
        data = []
        for logical, res in stack.template["Resources"].items():
            if res["Type"] != "AWS::SQS::Queue" or logical not in stack.refs:
                continue
            name = stack.attrs[logical]["QueueName"]
            data.append({"MetricName": "ApproximateNumberOfMessagesVisible", "Timestamp": now, "Unit": "Count",
                         "Value": float(self._queues.visible(name)), "Dimensions": [{"Name": "QueueName", "Value": name}]})
        for logical in ("TasksQueue", "TasksHighQueue", "TasksFirstQueue"):
            name = stack.attrs[logical]["QueueName"]
            age = self._queues.oldest_age(name, now.timestamp())
            if age is not None:
                data.append({"MetricName": "ApproximateAgeOfOldestMessage", "Timestamp": now, "Unit": "Seconds",
                             "Value": age, "Dimensions": [{"Name": "QueueName", "Value": name}]})
        for i in range(0, len(data), 20):
            self.cw.put_metric_data(Namespace="AWS/SQS", MetricData=data[i:i + 20])

    def _values(self, alarm: dict, now: datetime) -> list[float | None]:
        period, n = int(alarm["Period"]), int(alarm["EvaluationPeriods"])
        start = now - timedelta(seconds=period * n)
        if alarm.get("ExtendedStatistic"):
            p = float(alarm["ExtendedStatistic"].lstrip("p"))
            seen = self.shipper.values(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions", []))
            out = []
            for k in range(n):
                lo, hi = start + timedelta(seconds=period * k), start + timedelta(seconds=period * (k + 1))
                out.append(percentile([v for t, v in seen if lo <= t < hi], p))
            return out
        res = self.cw.get_metric_data(StartTime=start, EndTime=now, MetricDataQueries=[{
            "Id": "m", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
                           "Dimensions": alarm.get("Dimensions", [])},
                "Period": period, "Stat": alarm["Statistic"]}}])
        result = res["MetricDataResults"][0]
        by_time = {ts.astimezone(timezone.utc): v for ts, v in zip(result["Timestamps"], result["Values"])}
        out = []
        for k in range(n):
            lo = start + timedelta(seconds=period * k)
            hits = [v for ts, v in by_time.items() if abs((ts - lo).total_seconds()) < 1]
            out.append(hits[0] if hits else None)
        return out

    # --- state ------------------------------------------------------------------------
    def evaluate_all(self) -> None:
        now = datetime.now(timezone.utc)
        for alarm in self._alarms():
            state, reason = evaluate(alarm, self._values(alarm, now), alarm["StateValue"])
            if state != alarm["StateValue"]:
                self._transition(alarm, state, reason)

    def _transition(self, alarm: dict, state: str, reason: str, notify: bool = True) -> None:
        old = alarm["StateValue"]
        when = now_iso()
        self.cw.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason,
                                StateReasonData=json.dumps({"version": "1.0", "evaluatedAt": when}))
        entry = {"AlarmName": alarm["AlarmName"], "OldStateValue": old, "NewStateValue": state,
                 "NewStateReason": reason, "StateChangeTime": when}
        self.history.append(entry)
        self.logs.put_log_events(logGroupName=self.history_group, logStreamName=self._stream,
                                 logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(entry)}])
        log.info("alarm %s: %s -> %s (%s)", alarm["AlarmName"], old, state, reason)
        if not notify:
            return
        actions = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}[state]
        message = {**entry, "AlarmDescription": alarm.get("AlarmDescription"), "AWSAccountId": self.stack.account,
                   "Region": self.stack.region, "AlarmArn": alarm.get("AlarmArn"),
                   "Trigger": {k: alarm.get(k) for k in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic",
                                                          "Period", "EvaluationPeriods", "DatapointsToAlarm",
                                                          "ComparisonOperator", "Threshold", "TreatMissingData",
                                                          "Dimensions")}}
        for arn in alarm.get(actions) or []:
            self.sns.publish(TopicArn=arn, Subject=f'{state}: "{alarm["AlarmName"]}" in {self.stack.region}'[:100],
                             Message=json.dumps(message, default=str))
