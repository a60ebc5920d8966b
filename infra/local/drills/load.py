"""Load drill: many uploads dropped at once, each must complete exactly once, none stuck.

    python -m infra.local.drills.load [INPUT] [--uploads 50] [--workers N] [--ladder 360,240]

Starts a fresh local cloud (stage ``load``), uploads INPUT (default: the Big Buck Bunny sample)
under ``--uploads`` distinct keys from 10 threads at once, and follows the job-events topic
(an SQS subscription, as any consumer would) until every job is terminal or ``--timeout``
passes. Prints the report queue-based transcoders are judged by: jobs, completed, failed,
duplicated ``JobCompleted`` events, stuck jobs, throughput (jobs/min over the whole run) and
upload-to-complete latency min/mean/P50/P95. Not a test; the figures go in the README.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chalicelib.domain.statistics import percentile
from chalicelib.domain.jobs import job_id_for

from infra.local.cloud import LocalCloud
from infra.local.sample import sample_clip


def run(clip: Path, uploads: int, workers: int | None, ladder: str, timeout: float) -> dict:
    """Run the drill; returns the report as a dict (seconds, jobs/min)."""
    env = {"VODPIPE_LADDER": ladder} if ladder else {}
    with tempfile.TemporaryDirectory() as state, \
            LocalCloud(port=0, api_port=0, workers=workers, env=env, params={"Stage": "load"}, state_dir=state) as cloud:
        sqs, sns, s3 = cloud.client("sqs"), cloud.client("sns"), cloud.client("s3")
        url = sqs.create_queue(QueueName="load-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=cloud.stack.refs["JobEventsTopic"], Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": "true",
                                  "FilterPolicy": json.dumps({"event_type": ["JobCompleted", "JobFailed"]})})
        bucket = cloud.stack.refs["IngestBucket"]
        body = clip.read_bytes()
        uploaded: dict[str, float] = {}

        def put(i: int) -> None:
            key = f"load/{i:03d}-{clip.name}"
            etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
            uploaded[job_id_for(bucket, key, etag)] = time.monotonic()

        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(put, range(uploads)))
        upload_seconds = time.monotonic() - started
        ended: dict[str, list[tuple[str, float]]] = {}
        deadline = started + timeout
        while time.monotonic() < deadline and len(ended) < uploads:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                event = json.loads(m["Body"])
                ended.setdefault(event["job_id"], []).append((event["event_type"], time.monotonic()))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        # a late duplicate would arrive within a few seconds: listen a little longer
        quiet_until = time.monotonic() + 5
        while time.monotonic() < quiet_until:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                event = json.loads(m["Body"])
                ended.setdefault(event["job_id"], []).append((event["event_type"], time.monotonic()))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        wall = max((t for evs in ended.values() for _, t in evs), default=time.monotonic()) - started
        completed = [j for j, evs in ended.items() if any(e == "JobCompleted" for e, _ in evs)]
        latencies = [min(t for e, t in ended[j] if e == "JobCompleted") - uploaded[j] for j in completed if j in uploaded]
        return {
            "uploads": uploads, "workers": cloud.workers, "clip": clip.name, "upload_seconds": round(upload_seconds, 1),
            "completed": len(completed),
            "failed": sum(1 for evs in ended.values() if any(e == "JobFailed" for e, _ in evs)),
            "duplicate_events": sum(len(evs) - 1 for evs in ended.values()),
            "stuck": uploads - len(ended), "unknown_jobs": len(set(ended) - set(uploaded)),
            "wall_seconds": round(wall, 1), "jobs_per_minute": round(60 * len(completed) / wall, 1) if wall else 0,
            "latency_seconds": {"min": round(min(latencies), 1), "mean": round(statistics.mean(latencies), 1),
                                "p50": round(percentile(latencies, 50), 1),
                                "p95": round(percentile(latencies, 95), 1)} if latencies else None,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", type=Path)
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--ladder", default="")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    report = run(args.input or sample_clip(), args.uploads, args.workers, args.ladder, args.timeout)
    print(json.dumps(report, indent=2))
    return 0 if report["completed"] == args.uploads and report["duplicate_events"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
