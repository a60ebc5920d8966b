"""Packaging for AWS gives each function its own role from the template (not Chalice's
DefaultRole, which would allow almost nothing our code calls)."""
import copy

import pytest

from infra.local.cloudformation.template import load_template
from infra.package import bind_function_roles, function_name


def packaged(functions):
    """What `chalice package --merge-template` produces, reduced to what matters here."""
    template = copy.deepcopy(load_template())
    template["Resources"]["DefaultRole"] = {"Type": "AWS::IAM::Role", "Properties": {}}
    for logical in functions:
        template["Resources"][logical] = {"Type": "AWS::Serverless::Function", "Properties": {
            "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]}, "Handler": "app.x"}}
    return template


def test_every_function_of_the_app_gets_its_own_role():
    import app
    names = sorted({src.name for src in app.app.event_sources} | {"api"})
    logical = {"ingest": "Ingest", "ingest_dead_letters": "IngestDeadLetters", "dead_letters": "DeadLetters",
               "high_dead_letters": "HighDeadLetters",
               "dead_letter_gauge": "DeadLetterGauge", "webhooks": "Webhooks", "api": "APIHandler"}
    assert sorted(function_name(logical[n]) for n in names) == names
    template = bind_function_roles(packaged([logical[n] for n in names]))
    assert "DefaultRole" not in template["Resources"]
    roles = {template["Resources"][logical[n]]["Properties"]["Role"]["Fn::GetAtt"][0] for n in names}
    assert len(roles) == len(names), "one role per function"
    for n in names:
        role = template["Resources"][template["Resources"][logical[n]]["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert role["Metadata"]["VodpipePrincipal"] == f"function:{n}"
        statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        # "*" only for actions without resource-level permissions (Service Authorization Reference)
        unscoped = {"cloudwatch:GetMetricData"}
        assert all(s["Resource"] != "*" or {s["Action"]} <= unscoped for s in statements), f"{n}: no * resource"


def test_a_function_without_a_role_is_refused():
    with pytest.raises(ValueError, match="no role in the template for function transcode_everything"):
        bind_function_roles(packaged(["TranscodeEverything"]))


def test_sqs_events_are_bound_to_the_templates_queues_not_chalices_literal_arn():
    """Chalice writes the queue ARN of the stage the app was packaged under; bound to the
    template's queue resource, a stack with another AppName/Stage listens to its own queue."""
    from infra.package import bind_event_queues
    template = packaged(["Ingest"])
    template["Resources"]["Ingest"]["Properties"]["Events"] = {"IngestSqsEventSource": {"Type": "SQS", "Properties": {
        "Queue": {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:vodpipe-dev-ingest"},
        "BatchSize": 1}}}
    bind_event_queues(template)
    queue = template["Resources"]["Ingest"]["Properties"]["Events"]["IngestSqsEventSource"]["Properties"]["Queue"]
    assert queue == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    template["Resources"]["Ingest"]["Properties"]["Events"]["IngestSqsEventSource"]["Properties"]["Queue"] = \
        "arn:aws:sqs:us-east-1:123456789012:somebody-elses-queue"
    with pytest.raises(ValueError, match="somebody-elses-queue, not a queue of the template"):
        bind_event_queues(template)


def test_functions_get_the_templates_environment_and_justified_suppressions():
    from infra.package import apply_function_metadata
    template = packaged(["Ingest", "APIHandler"])
    template["Resources"]["RestAPI"] = {"Type": "AWS::Serverless::Api", "Properties": {}}
    template["Resources"]["Ingest"]["Properties"]["Environment"] = {"Variables": {"VODPIPE_STAGE": "dev"}}
    apply_function_metadata(template)
    env = template["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"]
    assert env["VODPIPE_STAGE"] == "dev" and env["VODPIPE_INGEST_BUCKET"] == {"Ref": "IngestBucket"}
    skipped = {s["id"] for s in template["Resources"]["APIHandler"]["Metadata"]["checkov"]["skip"]}
    assert {"CKV_AWS_116", "CKV_AWS_117"} <= skipped
    assert {s["id"] for s in template["Resources"]["RestAPI"]["Metadata"]["checkov"]["skip"]} >= {"CKV_AWS_120"}
