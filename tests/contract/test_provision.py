"""The emulator provisioned from infra/template.yaml has what the template says (the template's
cfn-lint, a slow check: tests/e2e/test_packaged_template.py)."""
import json

from chalicelib.config import resource_names
from infra.local.cloudformation.template import load_template


def test_config_defaults_match_the_template_names(emulator):
    env = emulator["stack"].app_env()
    names = resource_names(env["VODPIPE_APP"], env["VODPIPE_STAGE"], env["VODPIPE_ACCOUNT"])
    for key, value in names.items():
        if key == "VODPIPE_EVENTS_TOPIC":
            assert env["VODPIPE_EVENTS_TOPIC_ARN"].endswith(":" + value)
        else:
            assert env[key] == value


def test_queues_have_the_templates_timeouts_and_redrive(emulator, client):
    sqs = client("sqs")
    tpl = load_template()["Resources"]
    stack = emulator["stack"]
    for logical, dlq in (("TasksQueue", "TasksDeadLetterQueue"), ("IngestQueue", "IngestDeadLetterQueue")):
        attrs = sqs.get_queue_attributes(QueueUrl=stack.refs[logical], AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == stack.attrs[dlq]["Arn"]
        want = stack.resolve(tpl[logical]["Properties"])
        assert int(redrive["maxReceiveCount"]) == int(want["RedrivePolicy"]["maxReceiveCount"])
        assert attrs["VisibilityTimeout"] == str(want["VisibilityTimeout"])


def test_ingest_bucket_notifies_the_ingest_queue_and_output_bucket_allows_cors(emulator, client):
    s3, stack = client("s3"), emulator["stack"]
    conf = s3.get_bucket_notification_configuration(Bucket=stack.refs["IngestBucket"])
    assert conf["QueueConfigurations"][0]["QueueArn"] == stack.attrs["IngestQueue"]["Arn"]
    assert conf["QueueConfigurations"][0]["Events"] == ["s3:ObjectCreated:*"]
    rules = s3.get_bucket_cors(Bucket=stack.refs["OutputBucket"])["CORSRules"]
    assert rules[0]["AllowedMethods"] == ["GET", "HEAD"] and rules[0]["AllowedOrigins"] == ["*"]


def test_table_has_the_status_index(emulator, client):
    table = client("dynamodb").describe_table(TableName=emulator["stack"].refs["JobsTable"])["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by-status"]


def test_task_definition_is_registered_with_its_environment(emulator, client):
    arn = emulator["stack"].refs["TranscoderTaskDefinition"]
    td = client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    env = {e["name"]: e["value"] for e in td["containerDefinitions"][0]["environment"]}
    assert env["VODPIPE_TASKS_QUEUE"] == "vodpipe-dev-transcode-tasks"
    assert td["cpu"] == "2048" and td["memory"] == "4096"


def test_provisioning_twice_is_harmless(emulator):
    from infra.local.cloudformation.provision import Provisioner
    again = Provisioner(emulator["session"], emulator["endpoint"], "us-east-1").provision()
    assert again.app_env() == emulator["stack"].app_env()
