"""Alarm evaluation rules (CloudWatch user guide, "Evaluating an alarm")."""
from infra.local.cloudwatch.alarms import evaluate, percentile

ALARM = {"EvaluationPeriods": 5, "DatapointsToAlarm": 3, "Threshold": 900,
         "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing"}


def test_m_out_of_n_datapoints():
    assert evaluate(ALARM, [1000, 1000, 1000, 0, 0], "OK")[0] == "ALARM"
    assert evaluate(ALARM, [1000, 1000, 0, 0, 0], "ALARM")[0] == "OK"
    state, reason = evaluate(ALARM, [1000, None, 1000, None, 1000], "OK")
    assert state == "ALARM" and "3 out of the last 5" in reason


def test_treat_missing_data():
    none = [None] * 5
    assert evaluate(ALARM, none, "OK")[0] == "INSUFFICIENT_DATA"
    assert evaluate({**ALARM, "TreatMissingData": "notBreaching"}, none, "ALARM")[0] == "OK"
    assert evaluate({**ALARM, "TreatMissingData": "breaching"}, none, "OK")[0] == "ALARM"
    assert evaluate({**ALARM, "TreatMissingData": "ignore"}, none, "ALARM")[0] == "ALARM"
    assert evaluate({**ALARM, "TreatMissingData": "breaching"}, [1000, None, None, 0, 0], "OK")[0] == "ALARM"


def test_comparison_operators_and_default_datapoints():
    alarm = {"EvaluationPeriods": 1, "Threshold": 5, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    assert evaluate(alarm, [5], "OK")[0] == "ALARM" and evaluate(alarm, [4.9], "ALARM")[0] == "OK"


def test_percentile_nearest_rank():
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([3.0], 95) == 3.0 and percentile([], 95) is None
