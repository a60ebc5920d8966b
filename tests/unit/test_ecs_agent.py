"""The local ECS agent's task-protection endpoint, driven by the worker's own client
(chalicelib.aws.task_protection), with the task role's permission checked."""
import pytest

from chalicelib.aws.task_protection import TaskProtection
from infra.local.ecs.agent import EcsAgent


@pytest.fixture
def agent():
    allowed = {"value": True}
    calls = []

    def authorize(action, arn):
        calls.append((action, arn))
        return allowed["value"]
    a = EcsAgent(lambda task_id: f"arn:aws:ecs:us-east-1:123456789012:task/vodpipe-dev/{task_id}", authorize)
    a.start()
    a.allowed, a.calls = allowed, calls
    yield a
    a.stop()


def test_a_task_protects_itself_while_it_encodes_and_releases_when_idle(agent):
    protection = TaskProtection(agent.uri("task1"))
    assert not agent.protected("task1")
    assert protection.protect(seconds=125) and agent.protected("task1")
    assert not agent.protected("task2"), "protection is per task"
    assert agent.calls[-1] == ("ecs:UpdateTaskProtection", "arn:aws:ecs:us-east-1:123456789012:task/vodpipe-dev/task1")
    assert protection.release() and not agent.protected("task1")


def test_protection_is_refused_when_the_task_role_lacks_the_permission(agent):
    agent.allowed["value"] = False
    protection = TaskProtection(agent.uri("task1"))
    assert protection.protect(seconds=60) is False and not agent.protected("task1")
    assert not protection.enabled


def test_outside_ecs_there_is_nothing_to_protect():
    assert TaskProtection(None).protect(60) is False
    assert TaskProtection(None).release() is True
