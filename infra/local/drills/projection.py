"""What ``make bench`` projects from its measurements for AWS: the latency of a long upload on
N Fargate tasks and the cost per video-minute (``projection``), and the time to playable and
watchable of 1 min, 5 min and 1 h uploads on N warm tasks (``playable_projection``)."""
from __future__ import annotations

import math

from chalicelib.config import Settings
from chalicelib.domain.chunks import chunk_count, plan_chunks


#: Fargate on-demand, us-east-1, per vCPU-hour (USD; AWS Fargate pricing page, Linux/x86).
FARGATE_VCPU_HOUR = 0.04048


def schedule(durations: list[tuple[str, float]], tasks: int) -> dict[str, float]:
    """When each of ``durations`` [(name, wall s)] ends, taken in order by ``tasks`` workers
    (each takes the next when it is free, as workers take from the task queues)."""
    free, done = [0.0] * tasks, {}
    for name, seconds in durations:
        worker = min(range(tasks), key=lambda i: free[i])
        free[worker] += seconds
        done[name] = free[worker]
    return done


def playable_projection(results: list[dict], grid: float = 6.0) -> None:
    """Time to playable and watchable for 1 min, 5 min and 1 h 1080p uploads on N warm 2-vCPU
    tasks (AWS): the measured path to the first task, plus a schedule of the job's tasks
    (audio and chunk 0 first, the first queue; chunks from ``plan_chunks`` with the default
    first chunk, ``Settings.first_chunk_seconds``) at the measured speeds, the audio's segments published as they are made
    (``presentation.audio_prefix``); watchable as ``presentation.watchable_from``."""
    runs = [r for res in results for r in res["runs"] if r["status"] == "complete" and r.get("first_chunk_wall")]
    if not runs:
        return
    run = max(runs, key=lambda r: r["workers"])
    longest = max(results, key=lambda r: r["duration"])
    one = min(longest["runs"], key=lambda r: r["workers"])
    speed = longest["duration"] / one["processing"]  # media s per wall s of one 2-vCPU task
    audio_speed = longest["duration"] / max(one.get("audio_wall") or 1.0, 0.1)
    path = sum(run["breakdown"].get(k) or 0.0 for k in ("to_ingest", "ingest", "to_first_task"))
    print(f"\ntime to playable / watchable on AWS (warm 2-vCPU tasks; measured here: {path:.1f} s to the first task, "
          f"first chunk {run['first_chunk_wall']:.1f} s, {speed:.2f}x real time per task, audio {audio_speed:.0f}x)")
    for duration in (60.0, 300.0, 3600.0):
        line = []
        for tasks in (2, 10, 100):
            chunks = plan_chunks(duration, tasks, grid, first_seconds=Settings.first_chunk_seconds)
            work = [("audio", duration / audio_speed),
                    *((f"c{c.index}", run["first_chunk_wall"] if c.index == 0 else c.seconds / speed) for c in chunks)]
            ends = schedule(work, tasks)
            audio_start = ends["audio"] - duration / audio_speed

            def audio_reaches(media: float) -> float:  # a segment is recorded once the next one is made
                return audio_start + min(duration, (math.ceil(media / grid - 1e-9) + 1) * grid) / audio_speed

            published, covered, watchable = 0.0, 0.0, 0.0
            for c in chunks:
                audio = ends["audio"] if c.index == len(chunks) - 1 else audio_reaches(c.end)
                published = max(published, audio, ends[f"c{c.index}"])
                watchable = max(watchable, published - covered)
                covered = c.end
            playable = path + max(audio_reaches(chunks[0].end) if len(chunks) > 1 else ends["audio"], ends["c0"])
            line.append(f"{tasks} tasks: {playable:.0f} s / {path + watchable:.0f} s")
        print(f"  {duration / 60:g} min: " + "; ".join(line))


def projection(results: list[dict], hours: float = 2.0) -> None:
    """Latency of a ``hours`` 1080p upload on 1, 10 and 100 Fargate tasks of 2 vCPU (this
    machine's size), from the longest input's measured speed; cost per video-minute."""
    longest = max(results, key=lambda r: r["duration"])
    one = min(longest["runs"], key=lambda r: r["workers"])
    if one["status"] != "complete":
        return
    cpu_per_media_second = one["cpu"] / longest["duration"]
    speed = longest["duration"] / one["processing"]  # media seconds per wall second, one 2-vCPU task
    duration = hours * 3600
    print(f"\nprojection for a {hours:g} h 1080p upload (measured: {speed:.2f}x real time per 2-vCPU task, "
          f"{cpu_per_media_second:.2f} CPU-s per media second)")
    for tasks in (1, 10, 100):
        n = chunk_count(duration, tasks)
        rounds = math.ceil(n / tasks)
        latency = rounds * (duration / n) / speed
        print(f"  {tasks:>3} tasks: {n:>3} chunks, {rounds} round(s): ~{latency / 60:.1f} min")
    vcpu_seconds = cpu_per_media_second * 60
    print(f"cost: {vcpu_seconds:.0f} vCPU-s per video-minute = ${vcpu_seconds / 3600 * FARGATE_VCPU_HOUR:.4f} "
          f"of Fargate vCPU (memory extra)")
