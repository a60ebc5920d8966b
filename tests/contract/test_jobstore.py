"""JobStore on the emulator's DynamoDB: conditional writes keep the state machine honest."""
import uuid
from concurrent.futures import ThreadPoolExecutor

from chalicelib.domain import jobs

TASKS = [{"name": "360p", "kind": "video", "width": 640, "height": 360},
         {"name": "audio", "kind": "audio"},
         {"name": "chunk-000", "kind": "chunk", "index": 0, "start": 0, "end": 30, "seg_counts": {"360p": 0, "240p": 0}}]


def new_job(ctx, **extra):
    job_id = uuid.uuid4().hex[:20]
    assert ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED, "source_key": "k", **extra}, TASKS)
    return job_id


def test_create_is_idempotent(ctx):
    job_id = new_job(ctx)
    assert not ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED}, TASKS)
    job, tasks = ctx.store.get(job_id)
    assert job["status"] == jobs.QUEUED and sorted(t["name"] for t in tasks) == ["360p", "audio", "chunk-000"]
    assert ctx.store.get("nope") is None


def test_status_moves_forward_only(ctx):
    job_id = new_job(ctx)
    assert ctx.store.set_job_status(job_id, jobs.PROCESSING)
    assert not ctx.store.set_job_status(job_id, jobs.QUEUED)
    assert ctx.store.set_job_status(job_id, jobs.COMPLETE)
    assert not ctx.store.set_job_status(job_id, jobs.FAILED)
    assert ctx.store.get(job_id)[0]["status"] == jobs.COMPLETE


def test_progress_never_goes_back_and_needs_a_running_task(ctx):
    job_id = new_job(ctx)
    assert not ctx.store.set_task_progress(job_id, "360p", 10)  # still queued
    assert ctx.store.start_task(job_id, "360p")[1]["attempts"] == 1
    assert ctx.store.set_task_progress(job_id, "360p", 40)
    assert not ctx.store.set_task_progress(job_id, "360p", 30)
    task = next(t for t in ctx.store.get(job_id)[1] if t["name"] == "360p")
    assert task["progress"] == 40 and task["status"] == jobs.PROCESSING


def test_a_running_tasks_published_segments_only_grow(ctx):
    job_id = new_job(ctx)
    assert not ctx.store.record_partial_output(job_id, "audio", 6.0, extinf=[6.0])  # not started
    ctx.store.start_task(job_id, "audio")
    assert ctx.store.record_partial_output(job_id, "audio", 12.0, extinf=[6.0, 6.0], peak_bandwidth=130_000)
    # a redelivered run that has made less so far never shrinks what players were shown
    assert not ctx.store.record_partial_output(job_id, "audio", 6.0, extinf=[6.0])
    assert not ctx.store.record_partial_output(job_id, "audio", 12.0, extinf=[6.0, 6.0])
    assert ctx.store.record_partial_output(job_id, "audio", 18.0, extinf=[6.0, 6.0, 6.0])
    task = next(t for t in ctx.store.get(job_id)[1] if t["name"] == "audio")
    assert task["covered"] == 18.0 and task["extinf"] == [6.0, 6.0, 6.0] and task["peak_bandwidth"] == 130_000
    ctx.store.complete_task(job_id, "audio", {"extinf": [6.0, 6.0, 6.0, 1.5]})
    assert not ctx.store.record_partial_output(job_id, "audio", 24.0, extinf=[6.0] * 4)  # finished: final


def test_completion_is_a_set_under_duplicates_and_races(ctx):
    job_id = new_job(ctx)
    for name in ("360p", "audio"):
        ctx.store.start_task(job_id, name)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda n: ctx.store.complete_task(job_id, n, {"segments": 1}),
                                ["360p", "audio", "360p", "audio", "360p", "audio"]))
    assert sum(first for first, _ in results) == 2  # each task finished exactly once
    job = ctx.store.get(job_id)[0]
    assert job["done"] == ["360p", "audio"]
    assert ctx.store.start_task(job_id, "360p") == ("done", None)  # a done task is never restarted
    # exactly one of many concurrent finalizers wins the status write
    with ThreadPoolExecutor(4) as pool:
        wins = list(pool.map(lambda _: ctx.store.set_job_status(job_id, jobs.COMPLETE), range(4)))
    assert wins.count(True) == 1


def test_listing_and_counts(ctx):
    # the table is shared with the other tests: counts are compared with their own value before
    before = ctx.store.count_by_status()
    a, b = new_job(ctx), new_job(ctx)
    assert ctx.store.set_job_status(a, jobs.FAILED, error={"code": "X", "message": "y"})
    items, _ = ctx.store.list_jobs(jobs.FAILED, 100)
    assert items[0]["job_id"] == a, "newest first"
    assert b not in [i["job_id"] for i in items]
    counts = ctx.store.count_by_status()
    assert set(counts) == set(jobs.STATUSES)
    assert counts == {**before, jobs.QUEUED: before[jobs.QUEUED] + 1, jobs.FAILED: before[jobs.FAILED] + 1}
    # paging through everything (at least these two jobs) in pages of one
    page1, token = ctx.store.list_jobs(None, 1)
    assert len(page1) == 1 and token
    page2, _ = ctx.store.list_jobs(None, 1, token)
    assert page2 and page2[0]["job_id"] != page1[0]["job_id"]


def test_lease_is_exclusive_until_it_expires_or_is_released(ctx):
    job_id = new_job(ctx)
    state, item = ctx.store.start_task(job_id, "360p", owner="w1", lease_seconds=60, now=1000)
    assert state == "acquired" and item["lease_owner"] == "w1"
    assert ctx.store.start_task(job_id, "360p", owner="w2", lease_seconds=60, now=1010) == ("leased", None)
    assert ctx.store.renew_lease(job_id, "360p", "w1", 60, now=1050)
    assert not ctx.store.renew_lease(job_id, "360p", "w2", 60, now=1050)
    assert ctx.store.start_task(job_id, "360p", owner="w2", lease_seconds=60, now=1100) == ("leased", None)
    state, item = ctx.store.start_task(job_id, "360p", owner="w2", lease_seconds=60, now=1111)  # expired
    assert state == "acquired" and item["attempts"] == 2
    ctx.store.release_lease(job_id, "360p", "w2")
    assert ctx.store.start_task(job_id, "360p", owner="w3", lease_seconds=60, now=1112)[0] == "acquired"


def test_segment_checkpoints_are_ordered_and_never_duplicated(ctx):
    job_id = new_job(ctx)
    first = {"index": 0, "bytes": 1000, "start": 1.0, "last_frame": 6.966667, "end": 7.0, "frames": 180}
    second = {"index": 1, "bytes": 400, "start": 7.0, "last_frame": 9.066667, "end": 9.1, "frames": 63}
    # GIVEN a chunk with two renditions WHEN segments are recorded in one write per sweep
    assert not ctx.checkpoints.record(job_id, "chunk-000", {"360p": [second]}, {"360p": 1})  # gap: refused
    assert ctx.checkpoints.record(job_id, "chunk-000", {"360p": [first], "240p": [first, second]},
                                  {"360p": 0, "240p": 0})
    # a duplicate (or a stale worker) changes nothing, not even the renditions that would fit
    assert not ctx.checkpoints.record(job_id, "chunk-000", {"360p": [second], "240p": [first]},
                                      {"360p": 1, "240p": 0})
    assert ctx.checkpoints.record(job_id, "chunk-000", {"360p": [second]}, {"360p": 1})
    # THEN the chunk reads them back in order, and the task item holds only their counts
    assert ctx.checkpoints.of_task(job_id, "chunk-000") == {"360p": [first, second], "240p": [first, second]}
    task = ctx.store.get_task(job_id, "chunk-000")
    assert task["seg_counts"] == {"360p": 2, "240p": 2} and "segs" not in task
    # a plain read of the job skips the checkpoint items; a read with checkpoints groups them
    job, tasks = ctx.store.get(job_id)
    assert sorted(t["name"] for t in tasks) == ["360p", "audio", "chunk-000"]
    assert all("segs" not in t for t in tasks)
    chunk = next(t for t in ctx.store.get(job_id, checkpoints=True)[1] if t["name"] == "chunk-000")
    assert chunk["segs"] == {"360p": [first, second], "240p": [first, second]}
    view = jobs.job_resource(job, tasks, "out", None)
    assert next(t for t in view["tasks"] if t["name"] == "chunk-000")["segments_done"] == 2


def test_a_sweep_larger_than_one_transaction_is_recorded_whole_and_in_order(ctx):
    # GIVEN 120 segments of each of two renditions (a finish sweep after a long upload outage)
    job_id = new_job(ctx)
    entries = [{"index": i, "bytes": 100 + i, "start": 1.0 + 2 * i, "last_frame": round(2.966667 + 2 * i, 6),
                "end": 3.0 + 2 * i, "frames": 60} for i in range(120)]
    # WHEN they are recorded in one call (DynamoDB takes at most 100 actions per transaction)
    assert ctx.checkpoints.record(job_id, "chunk-000", {"360p": entries, "240p": entries}, {"360p": 0, "240p": 0})
    # THEN every one is stored, in order, and the counts match
    assert ctx.checkpoints.of_task(job_id, "chunk-000") == {"360p": entries, "240p": entries}
    assert ctx.store.get_task(job_id, "chunk-000")["seg_counts"] == {"360p": 120, "240p": 120}
