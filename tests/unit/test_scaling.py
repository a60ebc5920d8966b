"""The transcoder service's scaling, as the template's policies define it (target tracking on
backlog per task, the first task out of zero, gradual scale-in), played by the local scaler."""
import copy

import pytest

from infra.local.cloudformation.template import Stack, load_template
from infra.local.ecs.autoscaling import Scaler, ScalingPolicy


FIRST_STEPS = ((0.0, 1.0, 1), (1.0, 2.0, 2), (2.0, 3.0, 3), (3.0, None, 4))


def policy(min_tasks=0, max_tasks=4, target=1.0, scale_in=300.0, first_steps=((0.0, None, 1),)):
    return ScalingPolicy(min_tasks, max_tasks, target, scale_in, 60.0, first_steps, 1.0)


def test_policy_is_read_from_the_template_parameters():
    template = copy.deepcopy(load_template())
    params = {k: v.get("Default") for k, v in template["Parameters"].items()}
    params.update(TranscoderMinTasks=1, TranscoderMaxTasks=6, TranscoderBacklogPerTask=3, TranscoderScaleInCooldown=120)
    stack = Stack(template, params, "us-east-1", "123456789012",
                  refs={"TranscoderCluster": "vodpipe-dev", "TasksQueue": "url", "TasksHighQueue": "url-high", "TasksFirstQueue": "url-first",
                        "TranscoderService": "svc",
                        "TranscoderScalableTarget": "target"},
                  attrs={"TasksQueue": {"QueueName": "q"}, "TasksHighQueue": {"QueueName": "q-high"}, "TasksFirstQueue": {"QueueName": "q-first"},
                         "TranscoderService": {"Name": "svc"}})
    assert ScalingPolicy.from_stack(stack) == ScalingPolicy(1, 6, 3.0, 120.0, 60.0, FIRST_STEPS, 1.0)


@pytest.mark.parametrize("visible,expected", [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (9, 4)])
def test_out_of_zero_one_task_per_waiting_message_up_to_four(visible, expected):
    # GIVEN the template's steps (relative to the alarm's threshold of one message)
    first = policy(max_tasks=8, first_steps=FIRST_STEPS)
    # WHEN messages wait and no task runs THEN the step policy starts that many tasks at once
    assert first.capacity(visible, 0) == expected
    assert policy(max_tasks=2, first_steps=FIRST_STEPS).capacity(visible, 0) == min(expected, 2), "clamped"


@pytest.mark.parametrize("visible,running,expected", [
    (0, 0, 0),    # nothing waits, nothing runs
    (5, 0, 1),    # the step policy: the first task out of zero
    (5, 1, 4),    # ceil(1 x 5/1 / 1) = 5, clamped to the maximum 4
    (3, 2, 3),    # backlog per task 1.5 -> 3 tasks
    (2, 2, 2),    # on target
    (0, 3, 0),    # no backlog: scale in (idle tasks only; see the runner)
])
def test_capacity_follows_backlog_per_task(visible, running, expected):
    assert policy().capacity(visible, running) == expected


def test_capacity_respects_minimum_and_target():
    assert policy(min_tasks=2).capacity(0, 0) == 2
    assert policy(target=4).capacity(9, 1) == 3  # ceil(9 / 4)


def test_scale_out_at_once_scale_in_only_after_the_cooldown():
    scaler = Scaler(policy(scale_in=300))
    # GIVEN a backlog of 6 with no task: one task, then the target-tracking capacity
    assert scaler.decide(0, 6, 0, 0) == 1
    assert scaler.decide(2, 6, 1, 1) == 4
    # WHEN the backlog drains, the count stays until the metric was low for the cooldown
    assert scaler.decide(10, 0, 4, 4) == 4
    assert scaler.decide(200, 0, 4, 4) == 4
    assert scaler.decide(309, 0, 4, 4) == 4, "300 s since the last scale-out not yet passed from the low start"
    assert scaler.decide(311, 0, 4, 4) == 0
    # AND a new backlog scales out again immediately
    assert scaler.decide(312, 2, 0, 0) == 1


def test_a_short_dip_does_not_scale_in():
    scaler = Scaler(policy(scale_in=60))
    scaler.decide(0, 4, 1, 1)
    assert scaler.decide(100, 0, 4, 4) == 4
    assert scaler.decide(130, 4, 4, 4) == 4, "back on target: the low period restarts"
    assert scaler.decide(170, 0, 4, 4) == 4
    assert scaler.decide(231, 0, 4, 4) == 0


def test_chunk_parallelism_is_the_tasks_this_machine_holds():
    from infra.local.ecs.service import tasks_that_fit
    two_vcpu = {"Cpu": "2048"}
    # 2 cores hold one 2-vCPU task, however many workers; 8 cores hold 4, capped by the workers
    assert tasks_that_fit(two_vcpu, cores=2, workers=2) == 1
    assert tasks_that_fit(two_vcpu, cores=8, workers=2) == 2 and tasks_that_fit(two_vcpu, cores=8, workers=6) == 4
    # never fewer than one, even when a task is larger than the machine
    assert tasks_that_fit({"Cpu": "4096"}, cores=2, workers=2) == 1
    assert tasks_that_fit({"Cpu": "1024"}, cores=2, workers=4) == 2
