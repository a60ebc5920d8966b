"""Chunk boundaries are invisible: a chunked encode against a single run of the same clip,
checked from the media (packet timestamps, keyframe flags, decoded pixels), not from our
playlists."""
import json
import math
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain.chunks import plan_chunks
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.domain.thumbnails import poster_in, poster_window, tiles_in
from chalicelib.tools.ffmpeg import FfmpegProcess, check
from tests.conftest import looped_clip, segments_of_run

#: The short first segment of the "led" runs (s): the template's FirstChunkSeconds.
LEAD = 0.5


@pytest.fixture(scope="module")
def encodes(tmp_path_factory):
    """flower.mp4 (CC0, 29.97 fps) looped to 60.4 s, encoded to 360p + 240p once as one run and
    once as three chunks run side by side, as chunk tasks do; and both again for a job with a
    0.5 s first segment (its IDR grid at 0, 0.5, 2.5 ... s): one run, and a 0.5 s first chunk
    followed by three."""
    base = tmp_path_factory.mktemp("chunked")
    src = looped_clip(base, "flower.mp4", 11)
    info = parse_probe(json.loads(subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                                                  "-show_streams", str(src)], capture_output=True, text=True,
                                                 check=True).stdout))
    p = plan(info, (360, 240))
    runs = {"single": plan_chunks(info.duration, 1, ffmpeg_args.SEGMENT_SECONDS),
            "chunked": plan_chunks(info.duration, 3, ffmpeg_args.SEGMENT_SECONDS, min_seconds=6),
            "led-single": plan_chunks(info.duration, 1, ffmpeg_args.SEGMENT_SECONDS),
            "led": plan_chunks(info.duration, 3, ffmpeg_args.SEGMENT_SECONDS, min_seconds=6, first_seconds=LEAD)}
    assert len(runs["chunked"]) == 3 and [c.end for c in runs["led"]][0] == LEAD and len(runs["led"]) == 4

    def encode(kind_chunk):
        kind, c = kind_chunk
        out = base / kind / c.name
        for r in p.videos:
            (out / r.name).mkdir(parents=True)
        last = c.index == len(runs[kind]) - 1
        tiles = tiles_in(p.thumbnails, c.index, c.start, c.end, last)
        poster = poster_in(p.thumbnails, c.start, c.start, c.end, last, info.frame_rate)
        phase = ffmpeg_args.grid_phase(LEAD) if kind.startswith("led") else 0.0
        res = FfmpegProcess().run(ffmpeg_args.chunk_args(str(src), str(out), p.videos, c.start, c.end, last,
                                               tiles=tiles, quality_metrics=("psnr", "ssim"), frame_rate=info.frame_rate,
                                               poster=poster, phase=phase), c.seconds,
                                  measure_quality=True)
        check(res, c.name)
        return res

    jobs = [(k, c) for k, chunks in runs.items() for c in chunks]
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip([(k, c.name) for k, c in jobs], pool.map(encode, jobs)))
    return base, src, p, runs, results, info


def joined(base, kind, chunks, rendition):
    """The rendition's segments from every chunk in order, as the worker joins and keeps them
    (the preroll and the lookahead tail left out)."""
    segments = {}
    lead = LEAD if kind.startswith("led") else 0.0
    for c in chunks:
        end = None if c is chunks[-1] else ffmpeg_args.segment_of(c.end, ffmpeg_args.SEGMENT_SECONDS, lead)
        segments.update(segments_of_run(base / kind / c.name / rendition, c.first_segment, end, lead))
    target = base / f"{kind}-{rendition}.ts"
    target.write_bytes(b"".join(segments[i] for i in sorted(segments)))
    return sorted(segments), target


def packets(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,flags",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["packets"]


def frame_psnr(encoded, src, rendition) -> list[float]:
    """Luma PSNR (dB) of every frame of ``encoded`` against the source scaled the same way."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(encoded), "-i", str(src), "-lavfi",
                          f"[1:v]scale={rendition.width}:{rendition.height}:flags=bicubic,setsar=1,format=yuv420p,"
                          "setpts=PTS-STARTPTS[ref];[0:v]setpts=PTS-STARTPTS[enc];[enc][ref]psnr=stats_file=-",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stdout
    return [float(ln.split("psnr_y:")[1].split()[0]) for ln in out.splitlines() if "psnr_y:" in ln]


def test_chunked_output_equals_a_single_run_frame_for_frame(encodes):
    base, src, p, runs, _, _ = encodes
    source_frames = int(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
                                        "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(src)],
                                       capture_output=True, text=True, check=True).stdout)
    for r in p.videos:
        names_single, single = joined(base, "single", runs["single"], r.name)
        names_chunked, chunked = joined(base, "chunked", runs["chunked"], r.name)
        assert names_chunked == names_single == list(range(11)), "whole segments, numbered across chunks"
        a, b = packets(single), packets(chunked)
        assert len(b) == len(a) == source_frames, "no frame duplicated or lost at a boundary"
        assert sorted(int(x["pts"]) for x in b) == sorted(int(x["pts"]) for x in a), "same timestamps"
        idr = [int(x["pts"]) for x in b if "K" in x["flags"]]
        assert idr == [int(x["pts"]) for x in a if "K" in x["flags"]], "same IDR list"
        assert all(abs((k - idr[0]) / 90000 - round((k - idr[0]) / 90000 / 2) * 2) < 0.05 for k in idr)


#: Largest mean luma PSNR difference (dB) allowed over the 60 frames around a boundary. The
#: frames before a boundary are identical to the single run's (the chunk encodes a lookahead
#: tail past its end); after it, the next chunk's rate control was warmed by a preroll (x264's look-ahead window).
BOUNDARY_PSNR_TOLERANCE = 0.1


def test_quality_around_each_boundary_matches_the_single_run(encodes):
    base, src, p, runs, _, _ = encodes
    measured = []
    for r in p.videos:
        single = frame_psnr(joined(base, "single", runs["single"], r.name)[1], src, r)
        chunked = frame_psnr(joined(base, "chunked", runs["chunked"], r.name)[1], src, r)
        assert len(single) == len(chunked)
        times = sorted(int(x["pts"]) / 90000 - ffmpeg_args.OUTPUT_TS_BASE for x in packets(joined(base, "single", runs["single"], r.name)[1]))
        for c in runs["chunked"][1:]:
            first = sum(t < c.start for t in times)  # index of the chunk's first frame
            around = range(first - 30, first + 30)  # +-1 s of the boundary
            a = sum(single[i] for i in around) / len(around)
            b = sum(chunked[i] for i in around) / len(around)
            before = [round(chunked[i] - single[i], 3) for i in range(first - 30, first)]
            assert before == [0.0] * 30, (r.name, c.start, "frames before a boundary match the single run")
            measured.append((r.name, c.start, round(b - a, 3)))
    print(f"\nPSNR chunked - single, +-1 s around each boundary (dB): {measured}")
    assert all(abs(d) <= BOUNDARY_PSNR_TOLERANCE for _, _, d in measured), measured


def test_a_half_second_first_chunk_is_as_invisible(encodes):
    """With a 0.5 s first segment the IDR grid starts at its end; a 0.5 s first chunk (its next
    chunk's preroll cut to the 0.5 s before it) and three more give the frames, timestamps and
    IDRs of one run on that grid, and the same quality around every boundary."""
    base, src, p, runs, _, _ = encodes
    measured = []
    for r in p.videos:
        names_single, single = joined(base, "led-single", runs["led-single"], r.name)
        names_chunked, chunked = joined(base, "led", runs["led"], r.name)
        assert names_chunked == names_single == list(range(11)), "a 0.5 s segment, then 6 s ones"
        a, b = packets(single), packets(chunked)
        assert len(b) == len(a) and sorted(int(x["pts"]) for x in b) == sorted(int(x["pts"]) for x in a)
        idr = sorted(int(x["pts"]) for x in b if "K" in x["flags"])
        assert idr == sorted(int(x["pts"]) for x in a if "K" in x["flags"]), "same IDR list"
        seconds = [(k - idr[0]) / 90000 for k in idr]
        assert seconds[0] == 0 and all(abs(t - LEAD - round((t - LEAD) / 2) * 2) < 0.05 for t in seconds[1:]), seconds
        psnr_single, psnr_chunked = frame_psnr(single, src, r), frame_psnr(chunked, src, r)
        times = sorted(int(x["pts"]) / 90000 - ffmpeg_args.OUTPUT_TS_BASE for x in a)
        for c in runs["led"][1:]:
            first = sum(t < c.start for t in times)
            around = range(max(0, first - 30), first + 30)
            measured.append((r.name, c.start, round(sum(psnr_chunked[i] - psnr_single[i] for i in around) / len(around), 3)))
            assert [round(psnr_chunked[i] - psnr_single[i], 3) for i in range(max(0, first - 15), first)] == \
                [0.0] * (first - max(0, first - 15)), (r.name, c.start, "frames before a boundary match the single run")
    print(f"\nPSNR chunked - single with a 0.5 s lead, +-1 s around each boundary (dB): {measured}")
    assert all(abs(d) <= BOUNDARY_PSNR_TOLERANCE for _, _, d in measured), measured


def test_each_chunk_reports_its_encoders_quality_and_its_tiles(encodes):
    base, _, p, runs, results, _ = encodes
    for c in runs["chunked"]:
        quality = results[("chunked", c.name)].encoder_quality
        assert len(quality) == len(p.videos)
        assert all(30 < q["psnr_y"] < 60 and 0.9 < q["ssim_y"] <= 1 for q in quality)
        tiles = tiles_in(p.thumbnails, c.index, c.start, c.end, c.index == len(runs["chunked"]) - 1)
        sheet = base / "chunked" / c.name / tiles.file_name
        size = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0",
                               str(sheet)], capture_output=True, text=True, check=True).stdout.strip()
        assert size == f"{tiles.columns * tiles.width},{tiles.rows * tiles.height}"


def luma(path, width, height, extra_input=(), vf=""):
    """Decoded 8-bit luma plane of one picture (an image, or the frame ``extra_input`` selects)."""
    chain = f"{vf + ',' if vf else ''}scale={width}:{height},format=gray"
    return subprocess.run(["ffmpeg", "-v", "error", *extra_input, "-i", str(path), "-vf", chain, "-frames:v", "1",
                           "-f", "rawvideo", "-"], capture_output=True, check=True).stdout


def test_the_poster_comes_from_the_chunk_decode_as_a_seek_would_pick_it(encodes):
    base, src, p, runs, _, info = encodes
    t = p.thumbnails
    # GIVEN the chunked encode WHEN the first chunk holds poster_time THEN only it wrote a poster
    posters = [c.name for c in runs["chunked"] if (base / "chunked" / c.name / "poster.jpg").exists()]
    assert posters == ["chunk-000"]
    poster = base / "chunked" / "chunk-000" / "poster.jpg"
    size = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0",
                           str(poster)], capture_output=True, text=True, check=True).stdout.strip()
    assert size == f"{t.poster_width},{t.poster_height}"
    # AND its pixels are the frame a seek to poster_time + ffmpeg's thumbnail filter picks
    frames = poster_window(info.frame_rate)
    picked = luma(src, t.poster_width, t.poster_height, ("-ss", f"{t.poster_time:.3f}"), f"thumbnail={frames}")
    ours = luma(poster, t.poster_width, t.poster_height)
    mse = sum((a - b) ** 2 for a, b in zip(ours, picked)) / len(ours)
    psnr = 10 * math.log10(255 ** 2 / max(mse, 1e-9))
    assert psnr > 30, f"poster differs from the seek's pick: {psnr:.1f} dB"
    # (and not the frame before or after the window: a different frame of flower scores far lower)
    other = luma(src, t.poster_width, t.poster_height, ("-ss", f"{t.poster_time + 3:.3f}"))
    mse_other = sum((a - b) ** 2 for a, b in zip(ours, other)) / len(ours)
    print(f"\nposter against the seek's pick: {psnr:.1f} dB; MSE {mse:.1f}, against a frame 3 s later {mse_other:.1f}")
    assert mse_other > 4 * max(mse, 1.0)
