"""Benchmark: the pipeline against one hand-written ffmpeg command making the same outputs.

    python -m infra.local.drills.bench [INPUT ...] [--workers 1,2] [--ladder 1080,720,...] [--repeat N] [--cold]

Without INPUT it uses two clips built from the Big Buck Bunny sample (cached under
~/.cache/vodpipe): 60 s of 1080p30 H.264/AAC and the same minute looped to 5 minutes. For each
input, in the same run on this machine:

* reference: ``chalicelib.domain.ffmpeg_args.reference_ladder_args``, one ffmpeg that decodes
  once and splits to every rendition, the audio, the poster and the sprite sheet (the
  physical limit of this machine for these outputs);
* pipeline, once per worker count: a fresh local cloud (moto, the packaged functions, N worker
  processes), one upload. By default the service is measured in its steady state: warm worker
  tasks (``TranscoderMinTasks`` = N, as a deployment that wants latency runs it, since a
  Fargate task takes tens of seconds to start) and one 2 s warm-up upload through it first, so
  the functions' execution environments exist; ``--cold`` starts from zero tasks and cold
  environments, inside the measurement. The bench waits for the job's terminal event on an
  SQS queue subscribed to the job-events topic. Measured: upload latency (the PUT),
  processing latency (upload done to ``complete``), time to first playable (upload done to
  ``playable_at``), wall and CPU seconds of everything it ran (this process's threads:
  emulator, pollers, API; every child process: functions, workers and their ffmpeg), split
  into ffmpeg (as the tasks report it) and orchestration (the rest; ``(cloud)`` is the part
  spent in this process: the emulator, event-source pollers, API server, alarms and log
  shipping).

``--repeat N`` runs N rounds of (reference, pipeline per worker count), interleaved so slow
and fast spells of the machine fall on both, and reports each figure's median over the rounds
(ratios: the median of each round's pipeline / reference).

Prints the report (jobs, success rate, throughput, latency min/mean/P50/P95, then per run:
wall, CPU, ratios to the reference, time to first playable, chunks, per-chunk cost) and the
2-hour projection the README quotes. Not a test: performance is measured here, not asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from chalicelib.domain.statistics import percentile
from chalicelib.domain import ffmpeg_args
from chalicelib.domain.conversions import plan_picture
from chalicelib.domain.jobs import job_id_for
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.tools import ffmpeg, media_probe

from infra.local.cloud import LocalCloud
from infra.local.drills.projection import playable_projection, projection
from infra.local.sample import cache_dir, sample_clip


def make_default_input() -> Path:
    """A 60 s 1080p30 clip (Big Buck Bunny sample looped 12x, scaled, CRF 18), cached."""
    target = cache_dir() / "bench_1080p30_60s.mp4"
    if target.exists():
        return target
    src = sample_clip()
    tmp = target.with_suffix(".part.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "11", "-i", str(src), "-t", "60",
                    "-vf", "scale=1920:1080:flags=lanczos,fps=30", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "18", "-c:a", "aac", "-b:a", "192k", "-ac", "2", "-movflags", "+faststart", str(tmp)],
                   check=True)
    tmp.rename(target)
    return target


def make_long_input() -> Path:
    """The 60 s clip played 5 times (stream copy): 5 minutes of 1080p30, cached."""
    target = cache_dir() / "bench_1080p30_300s.mp4"
    if not target.exists():
        tmp = target.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "4", "-i", str(make_default_input()), "-c", "copy",
                        "-movflags", "+faststart", str(tmp)], check=True)
        tmp.rename(target)
    return target


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _live_children_cpu() -> float:
    """CPU seconds already spent by this process's running children (and the children they
    have reaped), from ``/proc/<pid>/stat`` (utime, stime, cutime, cstime; proc(5)). What a
    run started before its window must not count when those children are reaped later."""
    me, total, tick = os.getpid(), 0.0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # fields after the command name: state, ppid, ...
            total += sum(int(x) for x in fields[11:15]) / tick
    return total


def _seconds_between(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(b) - parse(a)).total_seconds()


_RUNS = iter(range(1, 1000))


def _events_queue(cloud: LocalCloud) -> str:
    """An SQS queue subscribed to the job-events topic for terminal events (how a client of a
    queue-based transcoder waits: MediaConvert's EventBridge rules, our SNS topic); its URL."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName="bench-job-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.stack.refs["JobEventsTopic"], Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true",
                              "FilterPolicy": json.dumps({"event_type": ["JobCompleted", "JobFailed", "JobCanceled"]})})
    return url


def _wait_for_end(cloud: LocalCloud, queue_url: str, job_id: str, timeout: float = 3600.0) -> None:
    """Long-poll ``queue_url`` until ``job_id``'s terminal event arrives. Raises TimeoutError."""
    sqs, deadline = cloud.client("sqs"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            if json.loads(m["Body"]).get("job_id") == job_id:
                return
    raise TimeoutError(f"job {job_id}: no terminal event in {timeout:.0f} s")


def _upload(cloud: LocalCloud, path: Path, key: str) -> str:
    """Upload ``path`` as ``key`` (settings in the metadata: the defaults, so the upload starts
    at once without a sidecar wait); the job id."""
    s3, bucket = cloud.client("s3"), cloud.stack.refs["IngestBucket"]
    s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"settings": "{}"}})
    return job_id_for(bucket, key, s3.head_object(Bucket=bucket, Key=key)["ETag"])


def warm_up_clip(path: Path, seconds: float = 2.0) -> Path:
    """The first ``seconds`` of ``path`` (stream copy), cached beside the bench inputs."""
    target = cache_dir() / f"warmup_{seconds:g}s_{path.stem}.mp4"
    if not target.exists():
        tmp = target.with_suffix(".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-t", f"{seconds:g}", "-c", "copy", str(tmp)],
                       check=True)
        tmp.rename(target)
    return target


def run_pipeline(path: Path, workers: int, ladder: str | None, warm: bool = True, durable: bool = True) -> dict:
    """One upload through a fresh local cloud with ``workers`` worker processes (its own
    stage: moto servers in one process share state, docs/measured-facts.md).

    ``warm`` measures the steady state of a running service: the worker tasks run and poll
    before the upload (minimum tasks = ``workers``), and a 2 s warm-up upload has gone through
    end to end first, so the functions' execution environments and the workers' clients exist,
    as they do for every upload but a service's first. Without it the service scales out from
    zero and every environment starts cold, inside the measurement.

    ``durable`` keeps the emulator's state in a data directory, as ``vodpipe up`` does: every
    call that changes state is on disk before it is answered. The job's share is reported as
    ``state_bytes`` (snapshots and S3 bodies written) and ``snapshots``; its CPU is in
    ``local_cloud_cpu``."""
    env = {"VODPIPE_POLL_WAIT_SECONDS": "20"}
    if ladder:
        env["VODPIPE_LADDER"] = ladder
    params = {"Stage": f"bench{next(_RUNS)}", **({"TranscoderMinTasks": workers} if warm else {})}
    with tempfile.TemporaryDirectory() as state, \
            LocalCloud(port=0, api_port=0, workers=workers, env=env, state_dir=state, params=params,
                       data_dir=Path(state) / "data" if durable else None) as cloud:
        events = _events_queue(cloud)
        if warm:
            cloud.transcoder.wait_ready()
            _wait_for_end(cloud, events, _upload(cloud, warm_up_clip(path), f"warmup/{path.name}"), 600)
        # from here: start-up (packaging, provisioning, warm-up) is not the pipeline's cost; the
        # running workers' and function environments' CPU so far is subtracted when they are reaped
        children0 = _cpu(resource.RUSAGE_CHILDREN) + _live_children_cpu()
        self0 = _cpu(resource.RUSAGE_SELF)
        written0, snapshots0 = (cloud.state.bytes_written, cloud.state.snapshots_written) if cloud.state else (0, 0)
        t0 = time.monotonic()
        job_id = _upload(cloud, path, path.name)
        uploaded = time.monotonic()
        _wait_for_end(cloud, events, job_id)
        with urllib.request.urlopen(cloud.api_url + f"/jobs/{job_id}") as r:  # read routes open locally
            job = json.load(r)
        written = (cloud.state.bytes_written - written0, cloud.state.snapshots_written - snapshots0) \
            if cloud.state else (0, 0)
    # the workers and functions have exited: their CPU (and their ffmpeg's) is in RUSAGE_CHILDREN
    local_cloud = _cpu(resource.RUSAGE_SELF) - self0  # emulator, pollers, API server, alarms, log shipping
    cpu = _cpu(resource.RUSAGE_CHILDREN) - children0 + local_cloud
    # latencies from the job's own timestamps (S3's event time of the upload, then the
    # pipeline's), so the event's delivery adds nothing
    playable = _seconds_between(job.get("uploaded_at"), job.get("playable_at"))
    processing = _seconds_between(job.get("uploaded_at"), job.get("completed_at"))
    tasks = job.get("tasks") or []
    ffmpeg_cpu = sum(float(t.get("cpu_seconds") or 0) for t in tasks)
    worker_cpu = sum(float(t.get("worker_cpu_seconds") or 0) for t in tasks)
    chunks = [t for t in tasks if t["kind"] == "chunk"]
    starts = [t["started_at"] for t in tasks if t.get("started_at")]
    first_task = _seconds_between(job.get("uploaded_at"), min(starts)) if starts else None
    walls = {t["name"]: _seconds_between(t.get("started_at"), t.get("completed_at")) for t in tasks}
    processing = processing if processing is not None else time.monotonic() - uploaded
    return {"status": job["status"], "workers": workers, "upload": uploaded - t0, "processing": processing,
            "wall": uploaded - t0 + processing, "cpu": cpu, "ffmpeg_cpu": ffmpeg_cpu, "local_cloud_cpu": local_cloud,
            "worker_cpu": worker_cpu, "playable": playable, "chunks": len(chunks),
            "first_task": first_task, "warm": warm, "durable": durable, "state_bytes": written[0],
            "snapshots": written[1], "breakdown": job.get("time_to_playable") or {},
            "first_chunk_wall": walls.get("chunk-000"), "audio_wall": walls.get("audio"),
            "chunk_cpu": sum(float(t.get("cpu_seconds") or 0) for t in chunks),
            "renditions": [r["name"] for r in job["renditions"]], "job": job}


def run_reference(path: Path, ladder: str | None, converted: bool = True) -> dict:
    """The one-command reference over ``path``, probed as ingest probes (PyAV), with the job's
    picture conversions (``converted``; without them: scale only, every decoded frame as it
    comes, the chain before them). Returns {wall, cpu, renditions, conversions}."""
    info = parse_probe(media_probe.probe(str(path)))
    rungs = tuple(int(x) for x in ladder.split(",")) if ladder else (1080, 720, 480, 360, 240)
    p = plan(info, rungs)
    picture = plan_picture(info, (p.videos[0].width, p.videos[0].height)) if converted else None
    if not converted:
        p = replace(p, videos=tuple(replace(r, frame_rate=None) for r in p.videos))
    out = Path(tempfile.mkdtemp(prefix="vodpipe-bench-"))
    try:
        for r in [*p.videos, *p.audios]:
            (out / r.name).mkdir()
        args = ffmpeg_args.reference_ladder_args(str(path), str(out), p, frame_rate=info.frame_rate, picture=picture)
        res = ffmpeg.FfmpegProcess().run(args, info.duration)
        ffmpeg.check(res, "reference ladder")
        return {"wall": res.seconds, "cpu": res.cpu_seconds, "renditions": [r.name for r in p.videos],
                "conversions": list(picture.conversions) if picture else []}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _dist(values: list[float]) -> str:
    return (f"min {min(values):.1f}  mean {statistics.fmean(values):.1f}  P50 {percentile(values, 50):.1f}  "
            f"P95 {percentile(values, 95):.1f} s")


_MEDIAN_FIELDS = ("upload", "processing", "wall", "cpu", "ffmpeg_cpu", "local_cloud_cpu", "worker_cpu", "playable",
                  "state_bytes", "snapshots",
                  "first_task", "chunk_cpu", "wall_x", "cpu_x")


def median_run(runs: list[dict]) -> dict:
    """One run of the same configuration summarised over rounds: each figure's median (None
    when any round lacks it), ``status`` complete only when every round completed."""
    out = dict(runs[0])
    for key in _MEDIAN_FIELDS:
        values = [r.get(key) for r in runs]
        out[key] = statistics.median(values) if values and None not in values else None
    out["status"] = "complete" if all(r["status"] == "complete" for r in runs) else "failed"
    return out


def breakdown_line(stages: dict) -> str:
    """``jobs.time_to_playable`` as one line: each stage's seconds, the total and watchable."""
    def shown(key: str) -> str:
        return "-" if stages.get(key) is None else f"{stages[key]:.1f}"
    return (f"time to playable: event->ingest {shown('to_ingest')} + ingest {shown('ingest')} + "
            f"->1st task {shown('to_first_task')} + 1st task->playable {shown('first_task_to_playable')} "
            f"(first chunk {shown('first_chunk')}, then publish {shown('publish')}) = "
            f"{shown('total')} s; watchable without a stall after {shown('watchable')} s")


def report(results: list[dict]) -> None:
    """Print the report for ``results`` [{input, duration, rounds, reference, runs: [pipeline
    summary per worker count], all_runs: [every pipeline run]}]."""
    runs = [r for res in results for r in res["all_runs"]]
    ok = [r for r in runs if r["status"] == "complete"]
    total_wall = sum(r["wall"] for r in runs)
    print("\n== vodpipe benchmark ==")
    print(f"jobs {len(runs)}, succeeded {len(ok)} ({100 * len(ok) / max(1, len(runs)):.0f} %), "
          f"throughput {60 * len(ok) / max(total_wall, 1e-6):.2f} jobs/min (one job at a time)")
    print(f"upload latency      {_dist([r['upload'] for r in runs])}")
    print(f"processing latency  {_dist([r['processing'] for r in runs])}")
    playable = [r["playable"] for r in runs if r["playable"] is not None]
    if playable:
        print(f"first playable      {_dist(playable)}")
    waits = [r["first_task"] for r in runs if r.get("first_task") is not None]
    if waits:
        print(f"upload to 1st task  {_dist(waits)} ({'warm' if all(r['warm'] for r in runs) else 'some cold'} service)")
    head = (f"{'':40}{'wall s':>8}{'CPU s':>8}{'ffmpeg':>8}{'orch.':>7}{'(cloud)':>8}{'(workers)':>10}{'wall x':>8}{'CPU x':>7}"
            f"{'playable':>9}{'chunks':>7}")
    for res in results:
        ref, d = res["reference"], res["duration"]
        rounds = f"; median of {res['rounds']} rounds" if res["rounds"] > 1 else ""
        print(f"\n{res['input']} ({d:.0f} s, ladder {', '.join(ref['renditions'])} + audio + poster + sprites{rounds})")
        print(head)
        print(f"{'reference (1 ffmpeg, decode once)':40}{ref['wall']:8.1f}{ref['cpu']:8.1f}{ref['cpu']:8.1f}"
              f"{0:7.1f}{0:8.1f}{0:10.1f}{1:8.2f}{1:7.2f}{'':>9}{'':>7}")
        for r in res["runs"]:
            label = (f"pipeline, {r['workers']} worker{'s' if r['workers'] > 1 else ''}{'' if r['warm'] else ', cold'} "
                     f"({r['status']})")
            playable = f"{r['playable']:.1f}" if r["playable"] is not None else "-"
            print(f"{label:40}{r['wall']:8.1f}{r['cpu']:8.1f}{r['ffmpeg_cpu']:8.1f}{r['cpu'] - r['ffmpeg_cpu']:7.1f}"
                  f"{r['local_cloud_cpu']:8.1f}{r['worker_cpu']:10.1f}{r['wall_x']:8.2f}{r['cpu_x']:7.2f}{playable:>9}{r['chunks']:7d}")
        for r in res["runs"]:  # where the time to playable went (the job's own timestamps)
            print(f"  {r['workers']} worker(s): {breakdown_line(r.get('breakdown') or {})}")
            print(f"  {r['workers']} worker(s): " + (
                f"state on disk: {r['state_bytes'] / 1e6:.1f} MB written for the job in {r['snapshots']:.0f} "
                f"snapshots; local cloud {r['local_cloud_cpu']:.1f} CPU-s" if r.get("durable") else
                f"state in memory only (--memory); local cloud {r['local_cloud_cpu']:.1f} CPU-s"))
        by_chunks = sorted(res["runs"], key=lambda r: r["chunks"])
        if len(by_chunks) > 1 and by_chunks[-1]["chunks"] > by_chunks[0]["chunks"]:
            a, b = by_chunks[0], by_chunks[-1]
            extra = (b["chunk_cpu"] - a["chunk_cpu"]) / (b["chunks"] - a["chunks"])
            orch = (b["cpu"] - b["ffmpeg_cpu"]) / max(1, b["chunks"])
            print(f"per added chunk: {extra:+.1f} ffmpeg CPU-s (preroll + lookahead tail + seek); orchestration "
                  f"{orch:.1f} CPU-s per chunk task (all orchestration / chunks)")
    projection(results)
    playable_projection(results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    ap.add_argument("--ladder", default=None, help="rung heights, e.g. 1080,720,480,360,240 (default)")
    ap.add_argument("--cold", action="store_true", help="start each run's service from zero tasks, environments cold")
    ap.add_argument("--repeat", type=int, default=1, help="rounds per input (medians reported)")
    ap.add_argument("--memory", action="store_true",
                    help="keep the emulator's state in memory only (default: a data directory, as vodpipe up)")
    args = ap.parse_args(argv)
    paths = [Path(p) for p in args.inputs] or [make_default_input(), make_long_input()]
    results = []
    for path in paths:
        info = parse_probe(ffmpeg.probe(str(path)))
        print(f"input: {path} {info.display_width}x{info.display_height} {info.frame_rate:.2f} fps "
              f"{info.duration:.1f} s, {path.stat().st_size} bytes; {os.cpu_count()} cores", flush=True)
        counts = [int(w) for w in args.workers.split(",")]
        rounds: list[tuple[dict, list[dict]]] = []
        for _ in range(args.repeat):
            ref = run_reference(path, args.ladder)
            print(f"  reference: {ref['wall']:.1f} s wall, {ref['cpu']:.1f} CPU-s", flush=True)
            runs = []
            for workers in counts:
                run = run_pipeline(path, workers, args.ladder, warm=not args.cold, durable=not args.memory)
                run.update(wall_x=run["wall"] / ref["wall"], cpu_x=run["cpu"] / ref["cpu"])
                print(f"  pipeline, {workers} worker(s): {run['status']}, {run['wall']:.1f} s wall, "
                      f"{run['cpu']:.1f} CPU-s ({run['wall_x']:.3f}x, {run['cpu_x']:.3f}x)", flush=True)
                runs.append(run)
            rounds.append((ref, runs))
        refs = [ref for ref, _ in rounds]
        reference = {**refs[0], "wall": statistics.median(r["wall"] for r in refs),
                     "cpu": statistics.median(r["cpu"] for r in refs)}
        results.append({"input": path.name, "duration": info.duration, "rounds": args.repeat, "reference": reference,
                        "runs": [median_run([runs[i] for _, runs in rounds]) for i in range(len(counts))],
                        "all_runs": [r for _, runs in rounds for r in runs]})
    report(results)
    return 0 if all(r["status"] == "complete" for res in results for r in res["all_runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
