"""The largest plan the template allows is ingested within DynamoDB's limits.

A 2-hour upload with ``TranscoderMaxTasks=100`` plans 100 chunks plus the audio task: with the
job item, 102 writes, over DynamoDB's 100 actions per ``TransactWriteItems`` (refused by the
emulator as by AWS, ``infra/local/emulator/limits.py``). ``JobStore.create_job`` writes the job
with its first tasks in one conditional transaction and the rest in further create-if-absent
batches, so a crash between two batches is finished by the redelivered ingest."""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from chalicelib.domain import jobs
from chalicelib.domain.chunks import plan_chunks


def many_tasks(n: int) -> list[dict]:
    return [{"name": "audio", "kind": "audio"}] + [
        {"name": f"chunk-{i:03d}", "kind": "chunk", "index": i, "start": 60.0 * i, "end": 60.0 * (i + 1),
         "seg_counts": {"720p": 0}} for i in range(n - 1)]


def task_names(ctx, job_id) -> list[str]:
    return sorted(t["name"] for t in ctx.store.get(job_id)[1])


def test_a_two_hour_upload_at_the_largest_parallelism_plans_more_than_one_transaction():
    chunks = plan_chunks(2 * 3600.0, 100, 6, 60.0)
    assert len(chunks) == 100  # + the audio task + the job item: 102 writes


def test_a_job_of_150_tasks_is_created_with_every_task(ctx):
    job_id, tasks = uuid.uuid4().hex[:20], many_tasks(150)
    assert ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED}, tasks)
    job, items = ctx.store.get(job_id)
    assert job["tasks"] == [t["name"] for t in tasks]
    assert sorted(i["name"] for i in items) == sorted(t["name"] for t in tasks)
    assert all(i["status"] == jobs.QUEUED and i["attempts"] == 0 for i in items)
    # a duplicate event creates nothing and changes nothing
    assert ctx.store.start_task(job_id, "chunk-120")[0] == "acquired"
    assert not ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED}, tasks)
    assert ctx.store.get_task(job_id, "chunk-120")["status"] == jobs.PROCESSING


def test_a_crash_between_two_batches_is_finished_by_the_redelivered_ingest(ctx, monkeypatch):
    """GIVEN an ingest that dies after the job and its first 99 tasks are written WHEN the event
    is redelivered THEN the missing task items are written, none that exists is overwritten, and
    the call reports the duplicate (the fan-out follows, every task item exists)."""
    job_id, tasks = uuid.uuid4().hex[:20], many_tasks(250)
    ddb = ctx.store._ddb
    real = ddb.transact_write_items
    calls = []

    def dies_on_the_second_batch(**kwargs):
        calls.append(len(kwargs["TransactItems"]))
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "the function was killed"}},
                              "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(ddb, "transact_write_items", dies_on_the_second_batch)
    with pytest.raises(ClientError):
        ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED, "fanned_out": False}, tasks)
    monkeypatch.setattr(ddb, "transact_write_items", real)
    assert calls == [100, 100]
    assert len(task_names(ctx, job_id)) == 99  # the job and its first 99 tasks, atomically
    # a worker could not hold one yet (no message was sent), but an operator's edit must survive
    ctx.store.update_job(job_id, note="kept")
    assert not ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED, "fanned_out": False}, tasks)
    assert task_names(ctx, job_id) == sorted(t["name"] for t in tasks)
    assert ctx.store.get(job_id)[0]["note"] == "kept"


def test_a_redelivery_writes_only_what_is_missing(ctx):
    job_id, tasks = uuid.uuid4().hex[:20], many_tasks(120)
    assert ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED, "fanned_out": False}, tasks)
    assert ctx.store.start_task(job_id, "chunk-010")[0] == "acquired"  # fanned out, then crashed before the flag
    ctx.store._ddb.delete_item(TableName=ctx.store.table_name,
                               Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "TASK#chunk-110"}})
    assert not ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED, "fanned_out": False}, tasks)
    assert ctx.store.get_task(job_id, "chunk-010")["status"] == jobs.PROCESSING  # untouched
    assert ctx.store.get_task(job_id, "chunk-110")["status"] == jobs.QUEUED      # restored
    # once fanned out, a duplicate writes nothing at all
    ctx.store.update_job(job_id, fanned_out=True)
    ctx.store._ddb.delete_item(TableName=ctx.store.table_name,
                               Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "TASK#chunk-111"}})
    assert not ctx.store.create_job({"job_id": job_id, "job_status": jobs.QUEUED}, tasks)
    assert ctx.store.get_task(job_id, "chunk-111") is None


def test_the_emulator_refuses_the_single_transaction_ingest_used_to_write(ctx):
    """What create_job wrote before: the job and 150 tasks in one transaction. AWS refuses it,
    and so does the emulator now."""
    store = ctx.store
    job_id = uuid.uuid4().hex[:20]
    items = [{"Put": {"TableName": store.table_name, "Item": store._item(
        {"pk": f"JOB#{job_id}", "sk": sk})}} for sk in ["JOB", *(f"TASK#{t['name']}" for t in many_tasks(150))]]
    with pytest.raises(ClientError) as err:
        store._ddb.transact_write_items(TransactItems=items)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert store.get(job_id) is None
