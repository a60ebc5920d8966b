"""The webhook signing key (and the deployment's webhook URLs, which often carry tokens) reach
the webhooks function only: in the package for AWS (``infra/package.py`` applies the template's
``Metadata.VodpipeFunctions.FunctionEnvironment``) and in the local cloud (``function_settings``),
never ingest (which parses untrusted media), the API or a worker task."""
import copy

from infra.local.cloud import LOCAL_WEBHOOK_SECRET, LocalCloud
from infra.local.cloudformation.template import load_template
from infra.package import apply_function_metadata, function_name

OWN = ("VODPIPE_WEBHOOK_SECRET", "VODPIPE_WEBHOOK_URLS")
FUNCTIONS = ("Ingest", "IngestDeadLetters", "DeadLetters", "HighDeadLetters", "DeadLetterGauge", "Webhooks", "APIHandler")


def test_the_package_gives_the_secret_to_the_webhooks_function_only():
    template = copy.deepcopy(load_template())
    for logical in FUNCTIONS:
        template["Resources"][logical] = {"Type": "AWS::Serverless::Function", "Properties": {
            "Handler": "app.x", "Environment": {"Variables": {"VODPIPE_STAGE": "dev"}}}}
    # a variable of one function's own environment set for all (e.g. by config.json) is removed
    template["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"]["VODPIPE_WEBHOOK_SECRET"] = "leak"
    apply_function_metadata(template)
    for logical in FUNCTIONS:
        env = template["Resources"][logical]["Properties"]["Environment"]["Variables"]
        assert env["VODPIPE_INGEST_BUCKET"] == {"Ref": "IngestBucket"}, "the shared environment still reaches all"
        if function_name(logical) == "webhooks":
            assert env["VODPIPE_WEBHOOK_SECRET"] == {"Ref": "WebhookSecret"}
            assert env["VODPIPE_WEBHOOK_URLS"] == {"Ref": "WebhookUrls"}
        else:
            assert not set(OWN) & set(env), f"{logical} must not get {set(OWN) & set(env)}"
    shared = template["Metadata"]["VodpipeFunctions"]["Environment"]
    assert not set(OWN) & set(shared)


def test_the_local_cloud_gives_the_secret_to_the_webhooks_function_only():
    env = {"VODPIPE_WEBHOOK_SECRET": "mine", "VODPIPE_WEBHOOK_URLS": "http://127.0.0.1:1/h", "VODPIPE_LADDER": "360"}
    cloud = LocalCloud(port=0, env=env)
    settings = cloud.local_settings()  # what every function gets
    assert not set(OWN) & set(settings) and settings["VODPIPE_LADDER"] == "360"
    assert cloud.function_settings() == {"webhooks": {"VODPIPE_WEBHOOK_SECRET": "mine",
                                                      "VODPIPE_WEBHOOK_URLS": "http://127.0.0.1:1/h"}}
    assert LocalCloud(port=0).function_settings() == {"webhooks": {"VODPIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET}}
    assert not set(OWN) & {line.split("=", 1)[0].split()[-1] for line in cloud.export_lines()}
