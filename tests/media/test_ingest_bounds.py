"""The ingest handler bounds what a job may take (issue 22), on a real clip probed with PyAV,
through chalice.test.Client on the emulator (fixtures of tests/handlers/test_app.py): the work
estimate is in the job and a job over ``MaxJobVcpuSeconds`` fails ``TOO_MUCH_WORK`` before any
task; the output folder (default: the job id) is claimed before anything is written, a
redelivered ingest claims it again, and a request for a folder inside it fails
``OUTPUT_PREFIX_IN_USE`` at ingest even when the API's early check was passed."""
import json

from chalicelib.domain import jobs
from chalicelib.domain.sources import ObjectRef, job_request
from tests.conftest import media
from tests.contract.conftest import client, ctx, emulator  # noqa: F401  (fixtures)
from tests.handlers.test_app import (app_client, invoke_ingest, job_of, queues,  # noqa: F401  (fixtures)
                                     task_messages, upload_and_get_event)


def claim(ctx, folder):  # noqa: F811
    found = ctx.records._ddb.get_item(TableName=ctx.records.table_name, Key=ctx.records._claim_key(folder),
                                      ConsistentRead=True).get("Item")
    return ctx.records._plain(found) if found else None


def test_a_job_over_the_work_limit_fails_too_much_work_with_no_task(app_client, client, emulator, queues, ctx,  # noqa: F811
                                                                    monkeypatch):
    monkeypatch.setenv("VODPIPE_MAX_JOB_VCPU_SECONDS", "1")  # flower.mp4: 5 s of 960x540 at 29.97 fps: 3.4 vCPU-s
    body = upload_and_get_event(client, emulator, queues, media("flower.mp4"), "bounds/work.mp4")
    invoke_ingest(app_client, body)
    assert task_messages(queues, emulator) == []
    job = job_of(app_client, body)
    assert job["status"] == "failed" and job["error"]["code"] == "TOO_MUCH_WORK", job["error"]
    work = job["work"]
    assert work["vcpu_seconds"] > 3 and work["frames"] == 4 * 151 and work["audio_seconds"] > 5
    assert f"about {work['vcpu_seconds']} vCPU-seconds" in job["error"]["message"]
    assert "limit is 1 vCPU-seconds" in job["error"]["message"]
    assert job["tasks"] == [] and claim(ctx, job["job_id"]) is None, "no task and no claim"


def test_ingest_claims_the_default_folder_and_refuses_a_request_inside_it(app_client, client, emulator, queues,  # noqa: F811
                                                                          ctx):  # noqa: F811
    body = upload_and_get_event(client, emulator, queues, media("flower.mp4"), "bounds/owner.mp4")
    record = json.loads(body)["Records"][0]["s3"]
    owner = jobs.job_id_for(record["bucket"]["name"], record["object"]["key"], record["object"]["eTag"])
    # a crash after the claim and before the job was written: the redelivery claims again
    assert ctx.records.claim_folder(owner, owner) is None
    invoke_ingest(app_client, body)
    job = job_of(app_client, body)
    assert job["status"] == "queued" and job["work"]["vcpu_seconds"] > 0 and job["source"]["owner"] == "upload"
    assert claim(ctx, owner)["job_id"] == owner
    assert task_messages(queues, emulator)
    # a job request naming a folder inside it (as if POST /jobs had raced the claim)
    ref = ObjectRef(record["bucket"]["name"], "bounds/owner.mp4", record["object"]["eTag"], record["object"]["size"],
                    settings={"output_prefix": f"{owner}/360p"}, request="inside")
    invoke_ingest(app_client, json.dumps(job_request(ref)))
    other = app_client.http.get(f"/jobs/{ref.job_id}").json_body
    assert other["status"] == "failed" and other["error"]["code"] == "OUTPUT_PREFIX_IN_USE", other["error"]
    assert f"the output folder of job {owner}" in other["error"]["message"]
    assert other["source"]["owner"] is None, "a request names someone's object: not its own"
