"""Resuming a rendition in the middle (docs/chunking-and-resume.md): a run killed after two segments, then a run
started at the end of the last whole segment, gives the same segments, frames, timestamps and
IDRs as one uninterrupted run. Real ffmpeg on a real clip (flower.mp4 looped to 20 s)."""
import json
import os
import shutil
import subprocess

import m3u8
import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.domain.mpegts import segment_timing, video_pts
from chalicelib.domain.playlist import extinf_from_timing, media_playlist
from tests.conftest import media, one_rendition, wait_for


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "flower20.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "3", "-i", str(media("flower.mp4")), "-c", "copy",
                    str(path)], check=True)
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams",
                                       str(path)], capture_output=True, text=True, check=True).stdout)
    return path, parse_probe(probe)


def run(src, info, out, start=0.0, first=0, kill_after=None):
    r = plan(info, (360,)).videos[0]
    args, out = one_rendition(src, out, r, info.duration, start)
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", *args])
    playlist = os.path.join(out, ffmpeg_args.PLAYLIST_NAME)
    if kill_after:
        try:
            wait_for(lambda: os.path.exists(playlist) and len(m3u8.load(playlist).segments) >= kill_after, 60,
                     f"{kill_after} segments listed in {playlist}", interval=0.02)
        finally:
            proc.kill()
    proc.wait()
    return m3u8.load(playlist).segments


def packets(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,flags",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["packets"]


def extinf(folder, segments):
    timings = [segment_timing(video_pts((folder / s.uri).read_bytes()), 1 / 30) for s in segments]
    return extinf_from_timing([t.start for t in timings], timings[-1].end)


def concat(folder, names, target):
    with open(target, "wb") as fh:
        for n in names:
            fh.write((folder / n).read_bytes())
    return target


def test_killed_and_resumed_run_equals_an_uninterrupted_run(clip, tmp_path):
    src, info = clip
    full_dir, resumed_dir = tmp_path / "full" / "360p", tmp_path / "resumed" / "360p"
    full = run(src, info, tmp_path / "full")  # writes into full/360p/
    assert len(full) >= 4
    part = run(src, info, tmp_path / "resumed", kill_after=2)
    kept = part[:2]
    for f in os.listdir(resumed_dir):  # what a crash leaves: only listed segments count
        if f not in {s.uri for s in kept}:
            os.remove(resumed_dir / f)
    # resume just after the last frame of the last whole segment, as the worker does
    last = segment_timing(video_pts((resumed_dir / kept[-1].uri).read_bytes()), 1 / 30)
    start = ffmpeg_args.resume_point(last.last_frame)
    # the resumed run writes into a fresh folder (the worker's new attempt) and re-encodes a
    # preroll (the end of the GOP before the resume point), which the worker drops
    rerun_dir = tmp_path / "rerun" / "360p"
    rerun = run(src, info, tmp_path / "rerun", start=start, first=len(kept))
    preroll = [s for s in rerun if s.uri < ffmpeg_args.GOP_PATTERN % len(kept)]
    preroll_pts = video_pts((rerun_dir / preroll[0].uri).read_bytes()) if len(preroll) == 1 else []
    assert preroll_pts and max(preroll_pts) < start + ffmpeg_args.OUTPUT_TS_BASE, "one preroll GOP, before the resume point"
    rest = [s for s in rerun if s.uri >= ffmpeg_args.GOP_PATTERN % len(kept)]
    for s in rest:  # what the worker uploads next to the checkpointed segments
        shutil.copy(rerun_dir / s.uri, resumed_dir / s.uri)
    resumed = [*kept, *rest]
    assert rest[0].uri == ffmpeg_args.GOP_PATTERN % 2
    assert [s.uri for s in resumed] == [s.uri for s in full]
    assert extinf(resumed_dir, resumed) == extinf(full_dir, full)
    a = packets(concat(full_dir, [s.uri for s in full], tmp_path / "a.ts"))
    b = packets(concat(resumed_dir, [s.uri for s in resumed], tmp_path / "b.ts"))
    assert len(a) == len(b), "same number of frames"
    assert sorted(p["pts"] for p in a) == sorted(p["pts"] for p in b), "continuous, identical timestamps"
    assert [p["pts"] for p in a if "K" in p["flags"]] == [p["pts"] for p in b if "K" in p["flags"]], "same IDRs"
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "b.ts"), "-f", "null", "-"],
                         capture_output=True, text=True)
    assert dec.returncode == 0 and not dec.stderr.strip()
    # the VOD playlist the worker writes from its checkpoints
    pl = m3u8.loads(media_playlist(list(zip([s.uri for s in resumed], extinf(resumed_dir, resumed))),
                                   target=ffmpeg_args.SEGMENT_SECONDS))
    assert pl.playlist_type == "vod" and pl.is_endlist and pl.target_duration == 6
