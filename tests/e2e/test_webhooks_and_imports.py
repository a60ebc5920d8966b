"""Webhooks and URL imports against hostile peers, end to end on the local cloud (issue 22):

* a receiver answering garbage and a target whose URL http.client refuses come before a good
  target: the good target gets every event once, the bad ones are recorded and retried with
  backoff (10 s, then 20 s ...), and nothing else is held up;
* the signature (Standard Webhooks) covers the delivery id, the timestamp and the target;
* the signing key reaches the webhooks function only;
* a webhook URL's tokens never show in the job resource or the functions' logs;
* an import from a server trickling bytes fails ``IMPORT_TIMEOUT`` at its deadline, and a body
  shorter than its Content-Length is never stored.

Every server here listens on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.domain.webhooks import verify
from infra.local.cloud import LocalCloud
from tests.conftest import media, wait_for
from tests.rawserver import RawServer, garbage, recording_receiver

SECRET = "e2e-hooks-secret"
TOKEN = "Secr3tT0kenXYZ"
IMPORT_TIMEOUT = 5
TIMEOUT = 180


def trickle(conn, stop_at):
    """A 200 announcing 1 MB, then one byte a second for at most 60 s."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 1000000\r\n\r\n")
    until = min(stop_at, time.monotonic() + 60)
    while time.monotonic() < until:
        conn.sendall(b"\0")
        time.sleep(1)


def short(conn, stop_at):
    """A 200 announcing 1000 bytes, then 500 and the end of the connection."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 1000\r\n\r\n" + b"\0" * 500)


def delivery_id_of(head: str) -> str | None:
    return next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                 if line.lower().startswith("webhook-id:")), None)


@pytest.fixture(scope="module")
def good():
    """A receiver that answers 204 and records (headers, body, time, path) of every POST."""
    with recording_receiver() as receiver:
        yield receiver

@pytest.fixture(scope="module")
def bad():
    # it must outlive the module's cloud start, the job and a retry's backoff (a 20 s lifetime
    # ended before the second attempt on a loaded machine)
    server = RawServer(garbage, lifetime=600)
    yield server
    server.close()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, good, bad):
    invalid = f"http://127.0.0.1:{bad.port}/a b"  # http.client's InvalidURL; a deployment URL set before the rule
    env = {"VODPIPE_LADDER": "240", "VODPIPE_POLL_WAIT_SECONDS": "1", "VODPIPE_WEBHOOK_SECRET": SECRET,
           "VODPIPE_WEBHOOK_URLS": f"http://127.0.0.1:{bad.port}/hooks,{invalid},{good[0]}/hooks",
           "VODPIPE_IMPORT_TIMEOUT": str(IMPORT_TIMEOUT)}
    with LocalCloud(port=0, api_port=0, workers=1, env=env, state_dir=tmp_path_factory.mktemp("state"),
                    params={"Stage": "hooks"}) as c:
        yield c


def job(cloud, job_id):
    return cloud.api_call("GET", f"/jobs/{job_id}", signed=False)[1]


def wait_terminal(cloud, job_id, timeout=TIMEOUT):
    def terminal():
        status, found = cloud.api_call("GET", f"/jobs/{job_id}", signed=False)
        return status == 200 and found["status"] in ("complete", "failed", "canceled") and found
    return wait_for(terminal, timeout, f"job {job_id} to end", interval=0.5)


def deliveries(cloud) -> list[dict]:
    """The delivery records (``HOOK#<id>`` items) of the jobs table, plain."""
    ddb = cloud.client("dynamodb")
    items = ddb.scan(TableName=cloud.stack.refs["JobsTable"], FilterExpression="begins_with(pk, :p)",
                     ExpressionAttributeValues={":p": {"S": "HOOK#"}})["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


@pytest.fixture(scope="module")
def hooked_job(cloud, good):
    """flower.mp4 uploaded with its own webhook URL (a token in its path and query)."""
    own = f"{good[0]}/own/{TOKEN}?token={TOKEN}"
    cloud.client("s3").upload_file(str(media("flower.mp4")), cloud.stack.refs["IngestBucket"], "hooks/flower.mp4",
                                   ExtraArgs={"Metadata": {"webhook-url": own}})

    def of_key():
        listing = cloud.api_call("GET", "/jobs?limit=100", signed=False)[1]["jobs"]
        return next((j for j in listing if j["source"]["key"] == "hooks/flower.mp4"), None)
    done = wait_terminal(cloud, wait_for(of_key, TIMEOUT, "the job of hooks/flower.mp4", interval=0.5)["job_id"])
    assert done["status"] == "complete", done.get("error")
    return done, own


def test_bad_targets_block_no_good_target_and_are_retried_with_backoff(cloud, good, bad, hooked_job):
    done, own = hooked_job
    url, got = good
    job_id = done["job_id"]

    def of_job(path_prefix):
        return [(h, json.loads(b), t, p) for h, b, t, p in list(got)
                if p.startswith(path_prefix) and json.loads(b).get("job_id") == job_id]
    for prefix in ("/hooks", "/own/"):  # the deployment's good target (after two bad ones) and the job's own
        mine = wait_for(lambda: (e := of_job(prefix)) and any(x["event_type"] == "JobCompleted" for _, x, _, _ in e)
                        and e, 30, f"the JobCompleted webhook of {job_id} at {prefix}", interval=0.5)
        types = [e["event_type"] for _, e, _, _ in mine]
        assert types[0] == "JobQueued" and types.count("JobCompleted") == 1 and types.count("JobQueued") == 1
        ids = [h["webhook-id"] for h, _, _, _ in mine]
        assert len(ids) == len(set(ids)), f"every event once at {prefix}, whatever the bad targets did"
    # the garbage receiver: each delivery attempted, then again after the backoff (>= 10 s)
    def retried():
        by_id: dict[str, list[float]] = {}
        for when, head in list(bad.hits):
            if (d := delivery_id_of(head)) and "/hooks" in head.split("\r\n", 1)[0]:
                by_id.setdefault(d, []).append(when)
        return [sorted(times) for times in by_id.values() if len(times) >= 2]
    twice = wait_for(retried, 60, "a second attempt at the garbage receiver", interval=1)
    assert all(times[1] - times[0] >= 9.5 for times in twice), f"retried without backoff: {twice}"
    assert not any(" b HTTP/1.1" in head or "/a%20b" in head for _, head in bad.hits), \
        "the invalid URL is never requested"
    # every target's deliveries are recorded: the good ones delivered once, the bad ones failed
    records = deliveries(cloud)
    of = lambda u: [r for r in records if r["url"] == u and r.get("job_id") == job_id]  # noqa: E731
    assert of(f"{url}/hooks") and all(r["status"] == "delivered" and int(r["attempts"]) == 1 for r in of(f"{url}/hooks"))
    garbage_records = of(f"http://127.0.0.1:{bad.port}/hooks")
    assert garbage_records and all(r["status"] == "failed" and r["next_attempt_at"] for r in garbage_records)
    assert any("BadStatusLine" in r["last_error"] for r in garbage_records)
    invalid_records = of(f"http://127.0.0.1:{bad.port}/…")
    assert invalid_records and all(r["status"] == "failed" and "a space" in r["last_error"] for r in invalid_records)
    assert max(int(r["attempts"]) for r in garbage_records + invalid_records) >= 2
    assert TOKEN not in json.dumps(records), "delivery records keep URLs redacted"


def test_the_signature_covers_id_timestamp_and_target(cloud, good, hooked_job):
    done, own = hooked_job
    url, got = good
    assert got
    for headers, body, when, path in list(got):
        target = url + path
        assert json.loads(body)["target"] == target
        assert verify(SECRET, headers, body, now=when, target=target)
        assert not verify(SECRET, headers, body, now=when, target=f"{url}/somebody-else"), "replay elsewhere"
        assert not verify(SECRET, {**headers, "webhook-id": "another"}, body, now=when)
        assert not verify(SECRET, {**headers, "webhook-timestamp": str(int(when) - 60)}, body, now=when)
        assert not verify(SECRET, headers, body, now=when + 301), "outside the replay window"


def test_the_webhook_secret_reaches_the_webhooks_function_only(cloud):
    assert cloud.lambdas.function_env("webhooks")["VODPIPE_WEBHOOK_SECRET"] == SECRET
    for fn in ("ingest", "api", "dead_letters", "ingest_dead_letters"):
        env = cloud.lambdas.function_env(fn)
        assert "VODPIPE_WEBHOOK_SECRET" not in env and "VODPIPE_WEBHOOK_URLS" not in env, fn
        assert SECRET not in json.dumps(env), fn
    packaged = cloud.lambdas.package.template["Resources"]  # the sam.yaml `make package` writes for AWS
    assert packaged["Webhooks"]["Properties"]["Environment"]["Variables"]["VODPIPE_WEBHOOK_SECRET"] == \
        {"Ref": "WebhookSecret"}
    assert "VODPIPE_WEBHOOK_SECRET" not in packaged["Ingest"]["Properties"]["Environment"]["Variables"]
    assert "VODPIPE_WEBHOOK_SECRET" not in cloud.task_overrides()


def test_webhook_url_tokens_never_show_in_the_job_or_the_logs(cloud, good, hooked_job):
    done, own = hooked_job
    assert done["settings"]["webhook_url"] == f"{good[0]}/own/…?token=…"
    assert TOKEN not in json.dumps(job(cloud, done["job_id"]))
    assert any(path.startswith(f"/own/{TOKEN}?token={TOKEN}") for _, _, _, path in good[1]), \
        "deliveries use the real URL"
    logs = sorted((cloud.state_dir / "logs").glob("function-*.log"))
    assert any("webhooks" in p.name for p in logs)
    leaks = [p.name for p in logs if TOKEN in p.read_text(errors="replace")]
    assert not leaks, f"the token is in {leaks}"


def test_an_import_from_a_slow_sender_fails_at_its_deadline(cloud):
    sender = RawServer(trickle, lifetime=120)
    try:
        started = time.monotonic()
        status, accepted = cloud.api_call("POST", "/jobs", json.dumps(
            {"source": f"http://127.0.0.1:{sender.port}/slow.mp4"}).encode())
        assert status == 202, accepted
        failed = wait_terminal(cloud, accepted["job_id"], timeout=40)
        assert failed["status"] == "failed" and failed["error"]["code"] == "IMPORT_TIMEOUT", failed["error"]
        assert time.monotonic() - started < IMPORT_TIMEOUT + 25
        assert len(sender.hits) == 1, "a permanent failure: not retried"
    finally:
        sender.close()


def test_a_body_shorter_than_its_content_length_is_never_stored(cloud):
    sender = RawServer(short, lifetime=120)
    try:
        status, accepted = cloud.api_call("POST", "/jobs", json.dumps(
            {"source": f"http://127.0.0.1:{sender.port}/short.mp4"}).encode())
        assert status == 202, accepted
        job_id = accepted["job_id"]
        ddb = cloud.client("dynamodb")

        def ingest_error():
            item = ddb.get_item(TableName=cloud.stack.refs["JobsTable"],
                                Key={"pk": {"S": f"INGEST#{job_id}"}, "sk": {"S": "INGEST"}}).get("Item")
            return item and item["error"]["M"]["message"]["S"]
        message = wait_for(ingest_error, 40, "the ingest error of the short import", interval=0.5)
        assert "sent 500 of its 1000 bytes" in message
        listing = cloud.client("s3").list_objects_v2(Bucket=cloud.stack.refs["IngestBucket"], Prefix=f"imports/{job_id}/")
        assert listing.get("KeyCount", 0) == 0, "nothing stored, not even truncated"
        status, found = cloud.api_call("GET", f"/jobs/{job_id}", signed=False)
        assert status == 404 or found["status"] != "failed", "retried (transient), never probed as a truncated file"
    finally:
        sender.close()
