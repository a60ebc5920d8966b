"""The transcoder service scales with the backlog (the template's target tracking on backlog per
task, minimum 0), and scale-in never stops an encode: a task that holds a message holds ECS
scale-in protection through its agent endpoint."""
from __future__ import annotations

import pytest

from infra.local.cloud import LocalCloud
from tests.conftest import looped_clip, media
from tests.e2e.test_failures import job, terminal, upload, wait_for


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    env = {"VODPIPE_LADDER": "360,240", "VODPIPE_POLL_WAIT_SECONDS": "1"}
    # a 3 s scale-in cooldown (300 s by default) so a scale-in happens while encodes still run
    params = {"Stage": "scaling", "TranscoderScaleInCooldown": 3}
    with LocalCloud(port=0, api_port=0, workers=2, env=env, params=params, scale_interval=0.5,
                    state_dir=tmp_path_factory.mktemp("state")) as c:
        yield c


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return looped_clip(tmp_path_factory.mktemp("long"), "flower.mp4", 7)


def test_workers_follow_the_backlog_from_zero_and_scale_in_spares_running_encodes(cloud, long_clip):
    runner = cloud.transcoder
    # GIVEN an idle service with minimum 0: no task runs
    wait_for(lambda: len(runner.history) >= 2, 10, "two scaling evaluations")
    assert runner.desired == 0 and not runner.tasks
    # WHEN two long uploads queue 2 x (2 video + audio + thumbnails) task messages
    ids = [upload(cloud, long_clip, f"scale/{i}.mp4") for i in range(2)]
    # THEN the service scales out to its maximum (2): out of zero, the step policy starts one
    # task per waiting message (clamped to the maximum), then target tracking follows
    wait_for(lambda: runner.desired == 2 and len(runner.tasks) == 2, 30, "two worker tasks")
    first = next((v, r, d) for _, v, r, d in runner.history if d > 0)
    assert first[1] == 0 and first[2] == min(first[0], 2), f"out of zero by the step policy: {first}"
    # AND every task holding a message holds scale-in protection
    busy = wait_for(lambda: [t for t in runner.tasks if runner.agent.protected(t.task_id)], 30, "a protected task")
    assert busy
    for job_id in ids:
        assert terminal(cloud, job_id, timeout=300)["status"] == "complete"
    # AND with the backlog gone the service scales in to 0 after the cooldown: idle tasks stop
    wait_for(lambda: runner.desired == 0 and not runner.tasks, 30, "scale-in to zero")
    # AND no encode was interrupted: every task ran once, no task died, nothing was released
    for job_id in ids:
        assert all(t["attempts"] == 1 for t in job(cloud, job_id)["tasks"]), job(cloud, job_id)
    assert runner.restarts == 0
    low = [(v, r, d) for _, v, r, d in runner.history if d < r]
    assert low, "a scale-in was decided while tasks still ran (their protection kept them)"
    assert cloud.denials == []


def test_a_warm_service_runs_its_minimum_before_any_upload_and_uses_it(tmp_path_factory):
    # GIVEN a service whose minimum is 1 task (a deployment that keeps a warm worker)
    params = {"Stage": "warm", "TranscoderMinTasks": 1}
    with LocalCloud(port=0, api_port=0, workers=2, env={"VODPIPE_LADDER": "240", "VODPIPE_POLL_WAIT_SECONDS": "1"},
                    params=params, state_dir=tmp_path_factory.mktemp("state")) as cloud:
        runner = cloud.transcoder
        # WHEN the local cloud is up THEN that task runs and polls before anything is uploaded
        runner.wait_ready()
        assert runner.desired == 1 and len(runner.tasks) == 1 and runner.started == 1
        assert b"worker started" in runner.tasks[0].log_path.read_bytes()
        # AND an upload completes on the warm service
        job_id = upload(cloud, media("bear-vp9-odd-dimensions.webm"), "warm/bear.webm")
        assert terminal(cloud, job_id, timeout=120)["status"] == "complete"
        assert runner.restarts == 0 and cloud.denials == []
