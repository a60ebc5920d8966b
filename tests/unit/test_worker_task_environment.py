"""A local worker task's environment is what Fargate would give it: the image's, the task
definition's, the agent's, and the local cloud's overrides; nothing of the host's."""
import re

from infra.local.cloudformation.plan import plan_stack
from infra.local.cloudformation.template import load_template
from infra.local.ecs.autoscaling import ScalingPolicy
from infra.local.ecs.service import IMAGE_ENVIRONMENT, ROOT, TranscoderService


def test_image_environment_is_the_dockerfiles():
    text = (ROOT / "containers" / "transcoder" / "Dockerfile").read_text()
    declared = {}
    for line in re.findall(r"^ENV (.+)$", text, flags=re.M):
        declared.update(pair.split("=", 1) for pair in line.split())
    assert declared == IMAGE_ENVIRONMENT


class _Attributes(dict):
    """Any Fn::GetAtt of a resource that was never created: ``<attribute>-<logical id>``."""

    def __init__(self, logical):
        super().__init__()
        self.logical = logical

    def __missing__(self, attribute):
        return f"{attribute}-{self.logical}"


def test_a_task_gets_its_task_definition_and_nothing_of_the_host(monkeypatch):
    monkeypatch.setenv("VODPIPE_ONLY_ON_THE_HOST", "leak")
    monkeypatch.setenv("VODPIPE_LADDER", "host-ladder")
    template = load_template()
    stack = plan_stack(template, {"PublicOutputs": "true"}, "us-east-1", "123456789012", set()).stack
    stack.refs.update({k: f"ref-{k}" for k in template["Resources"]})
    stack.attrs.update({k: _Attributes(k) for k in template["Resources"]})
    definition = stack.task_definition()
    service = TranscoderService(definition, ScalingPolicy(0, 1, 1.0, 60.0, 60.0), ROOT, lambda: 0,
                                lambda task_id: f"arn:task/{task_id}", lambda action, arn: True,
                                {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "secret"},
                                {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "VODPIPE_LADDER": "240"}, "us-east-1")
    env = service.task_environment("abc")
    declared = {e["Name"]: str(e["Value"]) for e in definition["ContainerDefinitions"][0]["Environment"]}
    assert {k: env[k] for k in declared if k != "VODPIPE_LADDER"} == {k: v for k, v in declared.items()
                                                                      if k != "VODPIPE_LADDER"}
    assert "VODPIPE_ONLY_ON_THE_HOST" not in env
    assert env["VODPIPE_LADDER"] == "240", "the local cloud's override, not the host's variable"
    assert env["ECS_AGENT_URI"].endswith("/abc") and env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA" and env["PYTHONUNBUFFERED"] == "1"
    extra = set(env) - set(declared) - set(IMAGE_ENVIRONMENT)
    assert extra <= {"PATH", "PYTHONPATH", "LANG", "HOME", "VODPIPE_FFMPEG", "VODPIPE_FFPROBE", "AWS_REGION",
                     "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "ECS_AGENT_URI", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "VODPIPE_LADDER"}, extra
