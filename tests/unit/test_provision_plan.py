"""Provisioning as a plan and its execution (``infra.local.cloudformation``), and ``vodpipe plan``."""
import pytest

from infra.local.cli.main import main
from infra.local.cloudformation.plan import CREATE, PLAY, SKIP, UNSUPPORTED, plan_stack
from infra.local.cloudformation.provision import Provisioner
from infra.local.cloudformation.template import load_template

REGION, ACCOUNT = "us-east-1", "123456789012"


def _plan(template, params=None):
    provisioner = Provisioner(None, None, REGION)
    return plan_stack(template, params, REGION, ACCOUNT, provisioner.creatable(template))


def test_the_template_plans_every_resource_once_after_what_it_depends_on():
    template = load_template()
    plan = _plan(template, {"PublicOutputs": "true"})
    order = [step.logical for step in plan.steps]
    assert sorted(order) == sorted(template["Resources"]) and not plan.unsupported
    position = {logical: i for i, logical in enumerate(order)}
    for logical in order:
        assert all(position[dep] < position[logical] for dep in plan.stack.deps(logical)), logical
    actions = {step.logical: step.action for step in plan.steps}
    assert actions["TasksQueue"] == CREATE and actions["JobsTable"] == CREATE
    assert actions["TranscoderExecutionRole"] == PLAY and actions["TranscoderService"] == PLAY
    # no CDN locally: the distribution's condition is false, so it is skipped, not faked
    assert actions["OutputDistribution"] == SKIP


def test_parameters_flip_conditions_in_the_plan():
    template = load_template()
    public = {s.logical: s.action for s in _plan(template, {"PublicOutputs": "true"}).steps}
    cdn = {s.logical: s.action for s in _plan(template, {"PublicOutputs": "false"}).steps}
    assert public["OutputDistribution"] == SKIP and public["OutputBucketPublicRead"] == CREATE
    assert cdn["OutputDistribution"] == PLAY and cdn["OutputBucketPublicRead"] == SKIP


def test_an_unsupported_type_is_refused_before_anything_is_created():
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
                              "Thing": {"Type": "AWS::Glue::Job", "Properties": {}}}}
    plan = _plan(template)
    assert [s.action for s in plan.steps] == [CREATE, UNSUPPORTED]
    # the provisioner has no session: creating the queue would fail with AttributeError
    with pytest.raises(NotImplementedError, match="AWS::Glue::Job"):
        Provisioner(None, None, REGION).execute(plan)


def test_vodpipe_plan_prints_one_line_per_resource(capsys):
    assert main(["plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    resources = [line for line in lines if not line.startswith("parameter")]
    assert len(resources) == len(load_template()["Resources"])
    assert any(line.startswith("create") and "IngestBucket" in line for line in resources)
    assert main(["plan", "--param", "NoSuchParameter=1"]) == 2
    assert main(["plan", "--param", "no-equals-sign"]) == 2
