"""The package `make package` builds for AWS (the same one the local cloud runs the functions
from): lint-clean, scanner-clean with every suppression justified, each function bound to its
own role, its own stack's queues and the resources' names by reference. And the source template
lint-clean. Here, beside the end-to-end tests, not in the fast set: building the package and
running cfn-lint and checkov take tens of seconds."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.local.cloudformation.template import TEMPLATE
from infra.package import ROOT, ensure_package


@pytest.fixture(scope="module")
def packaged() -> Path:
    out = ensure_package(ROOT / "out")
    return out / "sam.yaml"


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return yaml.safe_load(packaged.read_text())


def functions(template):
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def test_template_passes_cfn_lint():
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    res = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_packaged_template_passes_cfn_lint(packaged):
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    res = subprocess.run([cfn_lint, str(packaged)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_packaged_template_has_no_scanner_finding_and_every_suppression_says_why(packaged, template):
    checkov = os.environ.get("VODPIPE_CHECKOV") or str(ROOT / ".venv-scan" / "bin" / "checkov")
    assert os.path.exists(checkov), "checkov missing: `make test` installs it (.venv-scan, constraints-scan.txt)"
    res = subprocess.run([checkov, "-f", str(packaged), "--framework", "cloudformation", "--quiet", "-o", "json"],
                         capture_output=True, text=True, timeout=600)
    report = json.loads(res.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]]
    assert failed == [], failed
    assert report["summary"]["passed"] > 100
    for logical, res_ in template["Resources"].items():
        for skip in ((res_.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            assert len(skip.get("comment", "")) > 40, f"{logical}: {skip['id']} suppressed without a reason"


def test_every_function_has_its_own_role_and_its_stacks_resources(template):
    fns = functions(template)
    assert len(fns) == 7  # ingest, its dead letters, the two task DLQs, gauge, webhooks, API
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in fns.values()]
    assert len(set(roles)) == len(roles) and "DefaultRole" not in template["Resources"]
    for logical, fn in fns.items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["VODPIPE_JOBS_TABLE"] == {"Ref": "JobsTable"}, logical
        assert env["VODPIPE_ACCOUNT"] == {"Ref": "AWS::AccountId"}
        for event in (fn["Properties"].get("Events") or {}).values():
            if event["Type"] == "SQS":  # not the literal ARN of the default stage's queue
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"


def test_the_worker_scales_on_backlog_and_sits_in_private_subnets(template):
    res = template["Resources"]
    tracking = res["TranscoderBacklogScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    expression = [m for m in tracking["CustomizedMetricSpecification"]["Metrics"] if m.get("ReturnData")]
    # the three task queues' visible messages per running task
    assert expression[0]["Expression"] == \
        "(visible_normal + FILL(visible_high, 0) + FILL(visible_first, 0)) / IF(running > 0, running, 1)"
    queues = {m["Id"]: m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
              for m in tracking["CustomizedMetricSpecification"]["Metrics"] if m["Id"].startswith("visible_")}
    assert queues == {"visible_normal": "TasksQueue", "visible_high": "TasksHighQueue", "visible_first": "TasksFirstQueue"}
    assert res["TranscoderScalableTarget"]["Properties"]["MinCapacity"] == {"Ref": "TranscoderMinTasks"}
    assert template["Parameters"]["TranscoderMinTasks"]["MinValue"] == 0
    network = res["TranscoderService"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert template["Parameters"]["AssignPublicIp"]["Default"] == "DISABLED"
    assert network["Subnets"]["Fn::If"][0] == "CreateVpc"
    endpoints = {r["Properties"]["ServiceName"]["Fn::Sub"].split("${AWS::Region}.", 1)[1]
                 for r in res.values() if r["Type"] == "AWS::EC2::VPCEndpoint"}
    assert endpoints == {"s3", "dynamodb", "sqs", "sns", "logs", "ecr.api", "ecr.dkr"}
    assert not [r for r in res.values() if r["Type"] in ("AWS::EC2::InternetGatewayAttachment", "AWS::EC2::NatGateway")]
    protection = [s for p in res["TranscoderTaskRole"]["Properties"]["Policies"]
                  for s in p["PolicyDocument"]["Statement"] if s.get("Sid") == "ScaleInProtection"]
    assert protection and "ecs:UpdateTaskProtection" in protection[0]["Action"]


def test_outputs_are_delivered_through_cloudfront_with_origin_access_control(template):
    res = template["Resources"]
    config = res["OutputDistribution"]["Properties"]["DistributionConfig"]
    assert config["Origins"][0]["OriginAccessControlId"] == {"Fn::GetAtt": ["OutputOriginAccessControl", "Id"]}
    playlists = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "*.m3u8"][0]
    ttl = lambda ref: res[ref["Ref"]]["Properties"]["CachePolicyConfig"]["DefaultTTL"]  # noqa: E731
    assert ttl(playlists["CachePolicyId"]) <= 2 and ttl(config["DefaultCacheBehavior"]["CachePolicyId"]) >= 86400
    cors = res["PlayersCorsPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert cors["AccessControlAllowOrigins"]["Items"] == ["*"]
    read = res["OutputBucketDistributionRead"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"} and "AWS:SourceArn" in read["Condition"]["StringEquals"]
    base = template["Metadata"]["VodpipeFunctions"]["Environment"]["VODPIPE_OUTPUT_BASE_URL"]["Fn::If"]
    assert base[0] == "UseCdn" and "OutputDistribution.DomainName" in base[1]["Fn::Sub"]


def test_console_routes_take_the_console_pools_id_tokens_and_the_others_sigv4(template):
    """API Gateway allows one authorizer per method: the console's twins under /console/api use
    the template's user pool (not the placeholder the app holds at packaging time)."""
    (api,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    body = api["Properties"]["DefinitionBody"]
    cognito = body["securityDefinitions"]["ConsoleUsers"]["x-amazon-apigateway-authorizer"]
    assert cognito == {"type": "cognito_user_pools", "providerARNs": [{"Fn::GetAtt": ["ConsoleUserPool", "Arn"]}]}
    unauthorized = body["x-amazon-apigateway-gateway-responses"]["DEFAULT_4XX"]["responseParameters"]
    assert unauthorized["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"  # a 401 the console can read
    assert template["Resources"]["ConsoleUserPool"]["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"]
    assert template["Resources"]["ConsoleUserPoolClient"]["Properties"]["GenerateSecret"] is False
    console = [m for path, ms in body["paths"].items() if path.startswith("/console/api/")
               for verb, m in ms.items() if verb != "options"]
    others = [m for path, ms in body["paths"].items() if not path.startswith("/console/")
              for verb, m in ms.items() if verb != "options"]
    assert console and len(console) == len(others)
    assert all(m["security"] == [{"ConsoleUsers": []}] for m in console)
    assert all(m.get("security") in ([{"sigv4": []}], None) for m in others)


def test_the_webhook_signing_key_is_in_the_webhooks_function_only(template):
    """Ingest parses untrusted media; it, the API and the dead-letter functions never hold the
    key that signs webhooks (nor the deployment's webhook URLs, which often carry tokens)."""
    for logical, fn in functions(template).items():
        env = fn["Properties"]["Environment"]["Variables"]
        if logical == "Webhooks":
            assert env["VODPIPE_WEBHOOK_SECRET"] == {"Ref": "WebhookSecret"}
            assert env["VODPIPE_WEBHOOK_URLS"] == {"Ref": "WebhookUrls"}
        else:
            assert "VODPIPE_WEBHOOK_SECRET" not in env and "VODPIPE_WEBHOOK_URLS" not in env, logical
