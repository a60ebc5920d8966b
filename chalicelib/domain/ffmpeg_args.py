"""ffmpeg argument building for every task kind. Pure: returns argument lists, runs nothing.

HLS contract (docs/hls-output.md, Apple HLS authoring spec §1.x "Video" / §3 "Media segmentation",
RFC 8216 §4.3.3): an IDR frame every ``GOP_SECONDS`` (forced by time, so the same instants in
every rendition, scene-cut keyframes off), ``SEGMENT_SECONDS`` target segment duration (a
multiple of the GOP, so segments cut exactly on aligned IDRs), VOD playlist with
``EXT-X-INDEPENDENT-SEGMENTS``; H.264 High profile 8-bit 4:2:0 (what every HLS player
decodes); audio AAC-LC in its own rendition.

Arguments start after the binary name; ``chalicelib.tools.ffmpeg`` adds the binary, ``-progress``
and logging flags.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .confinement import input_options
from .conversions import PicturePlan, jpeg_scale_options, prefix_filters, scale_options, signal_options
from .frame_size import frame_size_guard
from .ladder import Plan, VideoRendition
from .thumbnails import POSTER_WINDOW_SECONDS, PosterRun, TileRun, poster_window

GOP_SECONDS = 2
SEGMENT_SECONDS = 6
SEGMENT_PATTERN = "seg_%05d.ts"
#: A chunk run writes one file per GOP (docs/chunking-and-resume.md); the worker joins them into segments.
GOP_PATTERN = "gop_%05d.ts"
PLAYLIST_NAME = "index.m3u8"
#: Output timestamps of every video run are source time (relative to the source's start_time)
#: plus this many seconds (``-output_ts_offset start+1`` with ``-muxdelay 0``): positive DTS
#: even with B-frames, and the same timeline for every run of a rendition.
OUTPUT_TS_BASE = 1.0
#: The audio's timeline follows the source's audio timestamps (docs/hls-output.md, lip sync):
#: silence before a late start (``first_pts=0``), a gap filled or an overlap dropped past 10 ms
#: (joined recordings), a slow drift stretched at most 50 samples/s (~0.1 %, inaudible).
#: Lip sync is detectable from +45/-125 ms (ITU-R BT.1359-1).
AUDIO_TIMELINE = "aresample=async=50:min_hard_comp=0.01:first_pts=0"
#: ``-itsoffset`` of a run that does not seek. Without a seek FFmpeg 5.1 moves the origin of an
#: input whose format has timestamp discontinuities (MPEG-TS) to the first timestamp of the
#: streams the run reads ("Correcting start time", ffmpeg.c), so a run that reads only a
#: picture starting 1 s after the sound put that picture at 0: a second early against the
#: audio, and a first chunk's frames again in the next chunk (measured on a 1 s late MPEG-TS
#: picture: first frame at PTS 1.000 instead of 2.001). Any input offset turns that correction
#: off; one microsecond rounds away in every stream time base of 90 kHz or coarser.
SOURCE_ORIGIN_NUDGE = "0.000001"
#: How much longer than planned a run may read its input (seconds, and fraction of the
#: planned duration): ``-t`` caps an input that claims one duration and holds far more.
READ_MARGIN_SECONDS = 2.0
READ_MARGIN_FRACTION = 0.05


def source_time(output_pts: float) -> float:
    """Source time (s, from the source's start) of an output timestamp of a video run."""
    return output_pts - OUTPUT_TS_BASE


def grid_phase(lead: float) -> float:
    """Where a job's IDR grid starts (s, 0 <= phase < ``GOP_SECONDS``): IDRs are forced at the
    first frame and at every ``phase + k * GOP_SECONDS``. 0 without a short first segment, and
    for one of whole GOPs; ``lead`` modulo ``GOP_SECONDS`` otherwise (a 1 s first segment:
    IDRs at 0, 1, 3, 5 ... s), so every later segment, ``lead + k * segment_seconds``, starts
    on an IDR (``chunks.lead_for``)."""
    return round(math.fmod(max(lead, 0.0), GOP_SECONDS), 6)


def resume_point(last_frame_output_pts: float, phase: float = 0.0) -> float:
    """Where a resumed run seeks (source seconds, docs/chunking-and-resume.md): the segment boundary after the
    last frame already in a checkpointed segment. Segments are cut on forced IDRs, and IDRs
    are forced at the first frame at or after each point of the job's grid (``phase`` +
    multiples of ``GOP_SECONDS``, ``grid_phase``), so the boundary is the first grid point
    after that frame; FFmpeg's accurate seek keeps exactly the frames at or after it. Measured
    timestamps, not the muxer's EXTINF (docs/hls-output.md)."""
    last = round(source_time(last_frame_output_pts), 4)
    return round((math.floor((last - phase) / GOP_SECONDS) + 1) * GOP_SECONDS + phase, 6)


def run_time_limit(media_seconds: float, min_speed: float, floor_seconds: float) -> float:
    """Wall-clock bound (s) of one ffmpeg run over ``media_seconds`` of the source: what the
    slowest acceptable encode (``min_speed`` x real time) needs, never under
    ``floor_seconds``. A run past it is killed (``RunTimeout``)."""
    return round(max(floor_seconds, media_seconds / max(min_speed, 1e-6)), 1)


def task_media_seconds(msg: Mapping[str, Any]) -> float:
    """Seconds of the source a task message covers: its span for a chunk (to the probed
    duration for the last one), the whole probed ``duration`` otherwise."""
    duration = float(msg.get("duration") or 0)
    spec = msg.get("spec") or {}
    if msg.get("kind") == "chunk":
        return max(0.0, (duration if spec.get("last") else float(spec["end"])) - float(spec["start"]))
    return duration


def read_limit(seconds: float) -> float:
    """The ``-t`` input cap for a run planned to cover ``seconds`` of the source."""
    return round(seconds * (1 + READ_MARGIN_FRACTION) + READ_MARGIN_SECONDS, 3)


def confined_input(url: str, seek: float = 0.0, limit: float | None = None, max_pixels: int | None = None,
                   autorotate: bool = True) -> list[str]:
    """``-i url`` with the input's confinement (protocol and demuxer allow-lists, see
    ``chalicelib.domain.confinement``), an optional seek (s) and read cap (s), and an optional
    cap on the pixels of a decoded picture (the decoders' ``max_pixels``: a larger frame is
    refused before it is allocated, "Picture size WxH exceeds specified max pixel count").
    ``autorotate=False``: frames as coded (the graph orients them, ``conversions``). Every
    run's timeline starts at the file's start, whichever of its streams it reads
    (``SOURCE_ORIGIN_NUDGE``)."""
    args = input_options(url)
    if not autorotate:
        args += ["-autorotate", "0"]
    if max_pixels:
        args += ["-max_pixels", str(int(max_pixels))]
    if seek > 0:
        args += ["-ss", f"{seek:.6f}"]
    else:
        args += ["-itsoffset", SOURCE_ORIGIN_NUDGE]
    if limit:
        args += ["-t", f"{limit:.3f}"]
    return [*args, "-i", url]


def hls_output(out_dir: str, segment_seconds: int = SEGMENT_SECONDS) -> list[str]:
    return [
        "-f", "hls",
        "-hls_time", str(segment_seconds),
        "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments+temp_file",
        "-hls_segment_type", "mpegts",
        "-hls_segment_filename", f"{out_dir}/{SEGMENT_PATTERN}",
        f"{out_dir}/{PLAYLIST_NAME}",
    ]


def video_filter(r: VideoRendition, picture: PicturePlan | None = None) -> str:
    """A rendition's chain after the split: scale to its displayed size, square pixels, 8-bit
    4:2:0. With a ``picture`` plan the frames arrive oriented, deinterlaced and at the output
    rate (``conversions.prefix_filters``), and the scaler finishes the colour to limited-range
    BT.709 (``conversions.scale_options``); without one (task messages of older ingests)
    ffmpeg's autorotate has oriented them and the rendition's frame-rate cap is applied here."""
    chain = [f"scale={r.width}:{r.height}:flags=bicubic{scale_options(picture)}", "setsar=1"]
    if r.frame_rate and picture is None:
        chain.append(f"fps={r.frame_rate:g}")
    chain.append("format=yuv420p")
    return ",".join(chain)


def picture_head(picture: PicturePlan | None, start: float = 0.0) -> str:
    """``conversions.prefix_filters`` joined for a graph of a run timed from ``start`` seconds
    of the source, with a trailing comma (or "")."""
    return "".join(f"{f}," for f in prefix_filters(picture, start)) if picture else ""


def jpeg_filter(width: int, height: int, picture: PicturePlan | None) -> str:
    """Scale a poster or sprite tile to ``width`` x ``height`` full-range BT.601 JPEG pixels."""
    return f"scale={width}:{height}{jpeg_scale_options(picture)},setsar=1" + (",format=yuvj420p" if picture else "")


#: Quality target of capped CRF (x264 ``-crf``) by rung short side (pixels): the first row
#: whose size the rung reaches. Smaller pictures get a slightly lower CRF (higher quality):
#: each of their pixels covers more of the screen.
CRF_BY_SHORT_SIDE: tuple[tuple[int, int], ...] = ((720, 23), (480, 22), (0, 21))
#: Rate-control modes: ``crf`` (capped CRF, the default) and ``abr`` (one-pass average bitrate
#: with a 1.5x peak cap: the pipeline's rate control before chunking, kept for comparisons).
RATE_CONTROLS = ("crf", "abr")


def crf_for(r: VideoRendition) -> int:
    """The CRF quality target of a rendition (``CRF_BY_SHORT_SIDE``)."""
    short = min(r.width, r.height)
    return next(q for side, q in CRF_BY_SHORT_SIDE if short >= side)


def x264_options(r: VideoRendition, preset: str = "veryfast", threads: int = 0, stream: str = "v",
                 rate_control: str = "crf") -> list[str]:
    """Encoder options for one H.264 rendition.

    ``crf``: capped CRF: the rendition's quality target (``crf_for``) with the VBV capped at
    the rung's bitrate (``-maxrate`` = ``video_bitrate`` bits/s, ``-bufsize`` = ``buffer_size``
    bits), so simple content spends fewer bits and complex content never more than the rung
    allows. ``abr``: average ``video_bitrate`` with peaks to ``max_bitrate``. Keyframes are
    forced by time every ``GOP_SECONDS`` as IDRs; ``-g`` is set far above that so x264 never
    adds a keyframe of its own between them. Closed captions the decoder finds in the source
    (CEA-608/708) are not written (``-a53cc 0``: the playlists say ``CLOSED-CAPTIONS=NONE``).
    Raises ValueError for an unknown ``rate_control``."""
    s = stream
    if rate_control == "crf":
        rate = [f"-crf:{s}", str(crf_for(r)), f"-maxrate:{s}", str(r.video_bitrate), f"-bufsize:{s}", str(r.buffer_size)]
    elif rate_control == "abr":
        rate = [f"-b:{s}", str(r.video_bitrate), f"-maxrate:{s}", str(r.max_bitrate), f"-bufsize:{s}", str(r.buffer_size)]
    else:
        raise ValueError(f"unknown rate control {rate_control!r} (one of {', '.join(RATE_CONTROLS)})")
    opts = [
        f"-c:{s}", "libx264", f"-preset:{s}", preset, f"-profile:{s}", "high", *rate,
        f"-force_key_frames:{s}", f"expr:gte(t,n_forced*{GOP_SECONDS})",
        f"-forced-idr:{s}", "1", f"-sc_threshold:{s}", "0", f"-g:{s}", "1000", f"-keyint_min:{s}", "1",
        f"-a53cc:{s}", "0",  # CEA-608/708 of the source is not carried: CLOSED-CAPTIONS=NONE (docs/text.md)
    ]
    if threads:
        opts += [f"-threads:{s}", str(threads)]
    return opts


def keyframe_times(start: float, duration: float, phase: float = 0.0) -> list[float]:
    """IDR instants for a run that starts at ``start`` seconds of the source, relative to the
    run's first frame: the run's first frame, then every point of the job's grid
    (``phase + k * GOP_SECONDS``, ``grid_phase``) after ``start`` and before ``duration`` (all
    seconds). Relative to the run, so a resumed run puts its IDRs on the same absolute grid as
    an uninterrupted one (docs/chunking-and-resume.md)."""
    times = [0.0]
    k = math.floor((start - phase) / GOP_SECONDS) + 1
    while k * GOP_SECONDS + phase < duration:
        t = round(k * GOP_SECONDS + phase - start, 6)
        if t > 0.001:
            times.append(t)
        k += 1
    return times


def keyframe_list(start: float, end: float, phase: float = 0.0) -> str:
    """``-force_key_frames`` value for a run over ``[start, end)`` source seconds: the
    ``keyframe_times`` list, relative to the run's first frame (docs/chunking-and-resume.md)."""
    return ",".join(f"{t:g}" for t in keyframe_times(start, end, phase))


#: x264's view past a frame: ``rc-lookahead`` (10 at veryfast) plus B-frames, in frames.
LOOKAHEAD_FRAMES = 16


def lookahead_tail(frame_rate: float) -> float:
    """Seconds a chunk encodes past its end so its last frames are rate-controlled as in a
    single run: ``LOOKAHEAD_FRAMES`` at ``frame_rate`` frames/s (30 when unknown), at least
    0.25 s."""
    return round(max(0.25, LOOKAHEAD_FRAMES / (frame_rate or 30.0)), 3)


def tile_select(first_tile_time: float, interval: float) -> str:
    """``select`` expression that keeps, for each tile time ``first_tile_time + k * interval``
    (seconds on the run's timeline), the first frame at or after it (``selected_n`` counts
    the tiles taken so far)."""
    return f"select='gte(t\\,{first_tile_time:.6f}+{interval:g}*selected_n)'"


def preroll(start: float, frame_rate: float = 30.0) -> float:
    """Seconds a run starting at ``start`` (a segment boundary) encodes before it and drops:
    x264's view past a frame (``lookahead_tail``), so the frames at the boundary are
    rate-controlled knowing the frames before them, as in a single run; none at the source's
    start. Measured on the chunked-encode test (capped CRF, ``flower.mp4``, +-1 s around each
    boundary against one run): no preroll -0.09 to -0.16 dB, this window within 0.005 dB, a
    whole 2 s GOP within 0.011 dB for four times the extra work. Never before the source's
    start (a run after a 0.5 s first segment starts at 0)."""
    return min(lookahead_tail(frame_rate), round(start, 6)) if start > 0 else 0.0


def segment_of(source_seconds: float, segment_seconds: int = SEGMENT_SECONDS, lead: float = 0.0) -> int:
    """Index of the ``segment_seconds`` segment a GOP starting at ``source_seconds`` belongs to
    (IDRs are at the first frame at or after each grid point, so a GOP starts within a frame
    after it). ``lead`` > 0 (under ``segment_seconds``; the IDR grid follows it, ``grid_phase``): the first segment is only
    ``[0, lead)`` and the grid continues from ``lead`` (a short first segment, allowed by RFC
    8216 §4.3.3.1: EXTINF at most the target duration; ``chunks.plan_chunks``)."""
    if lead > 0:
        if source_seconds < lead - 1e-9:
            return 0
        return 1 + int(math.floor((source_seconds - lead) / segment_seconds + 1e-9))
    return int(math.floor(source_seconds / segment_seconds + 1e-9))


def chunk_args(input_url: str, out_dir: str, renditions: Sequence[VideoRendition], start: float, end: float,
               last: bool, preset: str = "veryfast", threads: int = 0,
               rate_control: str = "crf", tiles: "TileRun | None" = None,
               quality_metrics: Sequence[str] = ("psnr",), frame_rate: float = 30.0, poster: PosterRun | None = None,
               frame_size: tuple[int, int] | None = None, max_pixels: int | None = None,
               picture: PicturePlan | None = None, phase: float = 0.0) -> list[str]:
    """Arguments that decode ``[start, end)`` seconds of the source's first video stream once
    and encode it to every rendition (``split`` -> scale -> x264), each as one MPEG-TS file
    per GOP in ``out_dir/<name>/`` (``gop_<n>.ts``, numbered from the run's first GOP,
    listed in ``index.m3u8`` once whole); the worker joins GOPs into segments by their
    timestamps (``segment_of``) and drops the GOPs outside the chunk.

    The recipe that makes runs join invisibly (docs/chunking-and-resume.md): an accurate input seek to
    ``start`` (a segment boundary) minus a ``preroll`` (x264's look-ahead window) that warms its rate control,
    ``trim`` in the filter graph (not ``-t``; omitted for the
    ``last`` chunk, which runs to the end of the stream) at ``end`` plus a short tail
    (``lookahead_tail``) so x264 encodes the chunk's last frames knowing the frames after
    them, as a single run would (without it they lose up to 1.8 dB); the tail starts on an IDR
    at ``end`` and lands in the next chunk's first segment, which the worker drops; frames passed
    through unchanged (``-fps_mode passthrough -enc_time_base -1``: no duplicates), IDRs forced
    at an explicit list on the job's absolute grid (``phase``: ``grid_phase``), and output timestamps offset to
    source time + ``OUTPUT_TS_BASE`` so every run of every chunk shares one timeline. The HLS
    muxer writes an EVENT playlist listing whole segments only (``temp_file``); the worker
    uploads and checkpoints each one and writes the real media playlists itself.

    ``tiles``: one more branch of the same decode picks the sprite-sheet tiles whose times
    fall in the chunk and writes them as one sheet (``TileRun``), so thumbnails never decode
    the source again. ``poster``: one more branch picks the poster from the frames of its
    window (``PosterRun``) and writes ``out_dir/<file_name>`` atomically (a temporary file,
    then a rename), so the worker can publish it while the chunk encodes. ``rate_control``: see ``x264_options``. ``threads``: x264 threads per
    rendition (0 = x264's choice). ``quality_metrics``: what each encoder computes of its output
    against its input, ``psnr`` and/or ``ssim`` (read with
    ``chalicelib.tools.ffmpeg.encoder_quality``; see ``job_settings.QUALITY_METRICS``).
    ``frame_size``: the probed size of the frames the graph receives (``frame_size.frame_size_of``): any
    other size fails the run (``frame_size.frame_size_guard``; the worker fails the task
    ``FRAME_SIZE_CHANGED``). ``max_pixels``: the decoders' cap on a picture (``confined_input``).
    ``picture``: the job's ``conversions.PicturePlan``: its filters run once, on the decode,
    before the split (deinterlacing, orientation, tone mapping), autorotate is off, and every
    output is signalled BT.709 limited range (``conversions.BT709_SIGNAL``).
    """
    tail = 0.0 if last else lookahead_tail(frame_rate)
    start = round(start - preroll(start, frame_rate), 6)
    length = end - start
    branches = len(renditions) + (1 if tiles else 0) + (1 if poster else 0)
    guard = f"{frame_size_guard(*frame_size)}," if frame_size else ""
    head = ("[0:v:0]" + guard + ("" if last else f"trim=end={length + tail:.6f},") + picture_head(picture, start)
            + f"split={branches}")
    graph = head + "".join(f"[s{i}]" for i in range(branches))
    graph += "".join(f";[s{i}]{video_filter(r, picture)}[v{i}]" for i, r in enumerate(renditions))
    if tiles:  # (the tail's frames are past the chunk's last tile time)
        graph += (f";[s{len(renditions)}]{tile_select(tiles.first_time - start, tiles.interval)},"
                  f"{jpeg_filter(tiles.width, tiles.height, picture)},tile={tiles.columns}x{tiles.rows}[tiles]")
    if poster:
        graph += (f";[s{branches - 1}]trim=start={max(0.0, poster.time - start):.6f}:duration={POSTER_WINDOW_SECONDS:g},"
                  f"thumbnail={poster.frames},{jpeg_filter(poster.width, poster.height, picture)}[poster]")
    limit = read_limit(length + tail)
    args = [*confined_input(input_url, start, limit, max_pixels, autorotate=picture is None), "-filter_complex", graph]
    keyframes = keyframe_list(start, end + tail, phase)
    for i, r in enumerate(renditions):
        opts = x264_options(r, preset, threads, "v:0", rate_control)
        opts[opts.index("-force_key_frames:v:0") + 1] = keyframes
        if "psnr" in quality_metrics:
            opts += ["-flags:v:0", "+psnr"]
        if "ssim" in quality_metrics:
            opts += ["-ssim:v:0", "1"]
        if picture:
            opts += signal_options("v:0")
        args += ["-map", f"[v{i}]", "-an", "-sn", "-dn", "-fps_mode:v:0", "passthrough", "-enc_time_base:v:0", "-1",
                 *opts, "-output_ts_offset", f"{start + OUTPUT_TS_BASE:.6f}", "-muxdelay", "0",
                 "-f", "hls", "-hls_time", "0.1", "-hls_playlist_type", "event",
                 "-hls_flags", "independent_segments+temp_file", "-hls_segment_type", "mpegts",
                 "-start_number", str(math.floor(start / GOP_SECONDS + 1e-9)),
                 "-hls_segment_filename", f"{out_dir}/{r.name}/{GOP_PATTERN}", f"{out_dir}/{r.name}/{PLAYLIST_NAME}"]
    if tiles:
        args += ["-map", "[tiles]", "-fps_mode:v:0", "passthrough", "-frames:v:0", "1", "-q:v:0", "4",
                 f"{out_dir}/{tiles.file_name}"]
    if poster:
        args += ["-map", "[poster]", "-fps_mode:v:0", "passthrough", "-frames:v:0", "1", "-q:v:0", "3",
                 "-atomic_writing", "1", f"{out_dir}/{poster.file_name}"]
    return args








def reference_ladder_args(input_url: str, out_dir: str, plan: Plan, preset: str = "veryfast",
                          rate_control: str = "crf", frame_rate: float = 25.0,
                          picture: PicturePlan | None = None) -> list[str]:
    """One hand-written ffmpeg command that makes what the pipeline makes: the whole video
    ladder (decode once, ``split`` to one scaler + x264 per rendition, same encoder
    settings), the audio rendition once, the poster (``thumbnail`` over ~2 s from
    ``poster_time``, a window of ``frame_rate`` x 2 frames) and the sprite sheet, all from one decode. The benchmark's baseline:
    the physical limit of one machine for this output. ``picture``: the job's conversions, as
    in ``chunk_args``."""
    videos: Sequence[VideoRendition] = plan.videos
    t = plan.thumbnails
    n = len(videos) + 2
    graph = f"[0:v:0]{picture_head(picture)}split={n}" + "".join(f"[s{i}]" for i in range(n))
    graph += "".join(f";[s{i}]{video_filter(r, picture)}[v{i}]" for i, r in enumerate(videos))
    graph += (f";[s{len(videos)}]{tile_select(0.0, t.interval)},{jpeg_filter(t.width, t.height, picture)},"
              f"tile={t.columns}x{t.rows}[tiles]")
    graph += (f";[s{len(videos) + 1}]trim=start={t.poster_time:.3f}:duration={POSTER_WINDOW_SECONDS:g},"
              f"thumbnail={poster_window(frame_rate)},"
              f"{jpeg_filter(t.poster_width, t.poster_height, picture)}[poster]")
    args = [*confined_input(input_url, autorotate=picture is None), "-filter_complex", graph]
    for i, r in enumerate(videos):  # per-output options apply to the next output only
        args += ["-map", f"[v{i}]", *x264_options(r, preset, 0, "v:0", rate_control), "-an",
                 *(signal_options("v:0") if picture else []), *hls_output(f"{out_dir}/{r.name}")]
    args += ["-map", "[tiles]", "-frames:v:0", "1", "-q:v:0", "4", f"{out_dir}/sprite.jpg",
             "-map", "[poster]", "-frames:v:0", "1", "-q:v:0", "3", f"{out_dir}/poster.jpg"]
    if plan.audio:
        a = plan.audio
        args += ["-map", f"0:a:{a.track}", "-vn", "-af", AUDIO_TIMELINE, "-c:a", "aac", "-b:a", str(a.bitrate),
                 "-ac", str(a.channels), "-ar", str(a.sample_rate), *hls_output(f"{out_dir}/audio")]
    return args
