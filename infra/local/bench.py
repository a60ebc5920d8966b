"""Benchmark: the pipeline against one hand-written ffmpeg command making the same ladder.

    python -m infra.local.bench [INPUT] [--workers N] [--ffmpeg-threads T] [--ladder 1080,720,...]

Without INPUT it builds a 60 s 1080p30 H.264/AAC clip from the Big Buck Bunny sample (looped and
scaled; cached under ~/.cache/vodpipe). Both runs happen on this machine in this process:

* pipeline: the local cloud (moto, ingest function, N worker processes), wall time from the
  upload to ``complete``; CPU seconds of everything it ran (this process's threads plus all
  worker processes and their ffmpeg children) and the ffmpeg part alone (as the tasks report it);
* reference: ``chalicelib.domain.ffmpeg_args.reference_ladder_args``, one ffmpeg that decodes
  once and splits to every rendition, same encoder settings, audio once.

Prints a table of wall seconds, CPU seconds and the pipeline/reference ratios. Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.domain import ffmpeg_args as A
from chalicelib.tools import ffmpeg

from .cloud import LocalCloud
from .sample import cache_dir, sample_clip


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


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_pipeline(path: Path, workers: int, threads: int, ladder: str | None) -> dict:
    env = {"VODPIPE_FFMPEG_THREADS": str(threads), "VODPIPE_POLL_WAIT_SECONDS": "1"}
    if ladder:
        env["VODPIPE_LADDER"] = ladder
    cpu0, self0 = _children_cpu(), _self_cpu()
    with tempfile.TemporaryDirectory() as state, \
            LocalCloud(port=0, api_port=0, workers=workers, env=env, state_dir=state) as cloud:
        s3 = cloud.client("s3")
        t0 = time.monotonic()
        s3.upload_file(str(path), cloud.stack.refs["IngestBucket"], path.name)
        job = None
        while True:
            with urllib.request.urlopen(cloud.api_url + "/jobs?limit=1") as r:
                listing = json.load(r)["jobs"]
            if listing:
                with urllib.request.urlopen(cloud.api_url + f"/jobs/{listing[0]['job_id']}") as r:
                    job = json.load(r)
                if job["status"] in ("complete", "failed"):
                    break
            time.sleep(0.25)
        wall = time.monotonic() - t0
    # the workers have exited now: their CPU (and their ffmpeg children's) is in RUSAGE_CHILDREN
    ffmpeg_cpu = sum(float(r.get("cpu_seconds") or 0) for r in job["renditions"])
    return {"status": job["status"], "wall": wall, "cpu": _children_cpu() - cpu0 + _self_cpu() - self0,
            "ffmpeg_cpu": ffmpeg_cpu, "renditions": [r["name"] for r in job["renditions"]], "job": job}


def run_reference(path: Path, ladder: str | None) -> dict:
    info = parse_probe(ffmpeg.probe(str(path)))
    rungs = tuple(int(x) for x in ladder.split(",")) if ladder else (1080, 720, 480, 360, 240)
    p = plan(info, rungs)
    out = Path(tempfile.mkdtemp(prefix="vodpipe-bench-"))
    try:
        for r in [*p.videos, *([p.audio] if p.audio else [])]:
            (out / r.name).mkdir()
        res = ffmpeg.FfmpegProcess().run(A.reference_ladder_args(str(path), str(out), p), info.duration)
        ffmpeg.check(res, "reference ladder")
        return {"wall": res.seconds, "cpu": res.cpu_seconds, "renditions": [r.name for r in p.videos]}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", nargs="?")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--ffmpeg-threads", type=int, default=0, help="x264 threads per worker ffmpeg (0 = auto)")
    ap.add_argument("--ladder", default=None, help="rung heights, e.g. 1080,720,480,360,240 (default)")
    args = ap.parse_args(argv)
    path = Path(args.input) if args.input else make_default_input()
    info = parse_probe(ffmpeg.probe(str(path)))
    print(f"input: {path} {info.display_width}x{info.display_height} {info.frame_rate:.2f} fps "
          f"{info.duration:.1f} s, {path.stat().st_size} bytes; {os.cpu_count()} cores")
    ref = run_reference(path, args.ladder)
    pipe = run_pipeline(path, args.workers, args.ffmpeg_threads, args.ladder)
    print(f"ladder: {', '.join(ref['renditions'])} + audio + thumbnails (pipeline)")
    print(f"{'':34}{'wall s':>9}{'CPU s':>9}{'x realtime':>12}")
    print(f"{'reference (1 ffmpeg, split)':34}{ref['wall']:9.1f}{ref['cpu']:9.1f}{info.duration / ref['wall']:12.2f}")
    label = f"pipeline ({args.workers} workers, threads={args.ffmpeg_threads or 'auto'})"
    print(f"{label:34}{pipe['wall']:9.1f}{pipe['cpu']:9.1f}{info.duration / pipe['wall']:12.2f}")
    print(f"{'  of which ffmpeg in tasks':34}{'':9}{pipe['ffmpeg_cpu']:9.1f}")
    print(f"ratio pipeline/reference: wall {pipe['wall'] / ref['wall']:.2f}x, CPU {pipe['cpu'] / ref['cpu']:.2f}x "
          f"(job {pipe['status']})")
    return 0 if pipe["status"] == "complete" else 1


if __name__ == "__main__":
    raise SystemExit(main())
