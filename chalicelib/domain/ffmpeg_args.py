"""ffmpeg argument building for every task kind. Pure: returns argument lists, runs nothing.

HLS contract (DESIGN §4, Apple HLS authoring spec §1.x "Video" / §3 "Media segmentation",
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
from typing import Sequence

from .confinement import input_options
from .ladder import AudioRendition, Plan, ThumbnailPlan, VideoRendition

GOP_SECONDS = 2
SEGMENT_SECONDS = 6
SEGMENT_PATTERN = "seg_%05d.ts"
PLAYLIST_NAME = "index.m3u8"
#: Output timestamps of every video run are source time (relative to the source's start_time)
#: plus this many seconds (``-output_ts_offset start+1`` with ``-muxdelay 0``): positive DTS
#: even with B-frames, and the same timeline for every run of a rendition.
OUTPUT_TS_BASE = 1.0
#: How much longer than planned a run may read its input (seconds, and fraction of the
#: planned duration): ``-t`` caps an input that claims one duration and holds far more.
READ_MARGIN_SECONDS = 2.0
READ_MARGIN_FRACTION = 0.05


def source_time(output_pts: float) -> float:
    """Source time (s, from the source's start) of an output timestamp of a video run."""
    return output_pts - OUTPUT_TS_BASE


def resume_point(last_frame_output_pts: float) -> float:
    """Where a resumed run seeks (source seconds, DESIGN §9): the segment boundary after the
    last frame already in a checkpointed segment. Segments are cut on forced IDRs, and IDRs
    are forced at the first frame at or after each multiple of ``GOP_SECONDS``, so the
    boundary is the first grid point after that frame; FFmpeg's accurate seek keeps exactly
    the frames at or after it. Measured timestamps, not the muxer's EXTINF (DESIGN §10)."""
    last = round(source_time(last_frame_output_pts), 4)
    return float((math.floor(last / GOP_SECONDS) + 1) * GOP_SECONDS)


def run_time_limit(media_seconds: float, min_speed: float, floor_seconds: float) -> float:
    """Wall-clock bound (s) of one ffmpeg run over ``media_seconds`` of the source: what the
    slowest acceptable encode (``min_speed`` x real time) needs, never under
    ``floor_seconds``. A run past it is killed (``RunTimeout``)."""
    return round(max(floor_seconds, media_seconds / max(min_speed, 1e-6)), 1)


def read_limit(seconds: float) -> float:
    """The ``-t`` input cap for a run planned to cover ``seconds`` of the source."""
    return round(seconds * (1 + READ_MARGIN_FRACTION) + READ_MARGIN_SECONDS, 3)


def confined_input(url: str, seek: float = 0.0, limit: float | None = None) -> list[str]:
    """``-i url`` with the input's confinement (protocol and demuxer allow-lists, see
    ``chalicelib.domain.confinement``), an optional seek (s) and read cap (s)."""
    args = input_options(url)
    if seek > 0:
        args += ["-ss", f"{seek:.6f}"]
    if limit:
        args += ["-t", f"{limit:.3f}"]
    return [*args, "-i", url]


def _hls_output(out_dir: str) -> list[str]:
    return [
        "-f", "hls",
        "-hls_time", str(SEGMENT_SECONDS),
        "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments+temp_file",
        "-hls_segment_type", "mpegts",
        "-hls_segment_filename", f"{out_dir}/{SEGMENT_PATTERN}",
        f"{out_dir}/{PLAYLIST_NAME}",
    ]


def video_filter(r: VideoRendition) -> str:
    """The ``-vf`` chain: scale to the rendition's displayed size (ffmpeg has already applied
    the rotation: autorotate is on), square pixels, optional frame-rate cap, 8-bit 4:2:0."""
    chain = [f"scale={r.width}:{r.height}:flags=bicubic", "setsar=1"]
    if r.frame_rate:
        chain.append(f"fps={r.frame_rate:g}")
    chain.append("format=yuv420p")
    return ",".join(chain)


def x264_options(r: VideoRendition, preset: str = "veryfast", threads: int = 0, stream: str = "v") -> list[str]:
    """Encoder options for one H.264 rendition (capped VBR: ``-b``/``-maxrate``/``-bufsize``
    in bits/s and bits). Keyframes are forced by time every ``GOP_SECONDS`` as IDRs;
    ``-g`` is set far above that so x264 never adds a keyframe of its own between them."""
    s = stream
    opts = [
        f"-c:{s}", "libx264", f"-preset:{s}", preset, f"-profile:{s}", "high",
        f"-b:{s}", str(r.video_bitrate), f"-maxrate:{s}", str(r.max_bitrate), f"-bufsize:{s}", str(r.buffer_size),
        f"-force_key_frames:{s}", f"expr:gte(t,n_forced*{GOP_SECONDS})",
        f"-forced-idr:{s}", "1", f"-sc_threshold:{s}", "0", f"-g:{s}", "1000", f"-keyint_min:{s}", "1",
    ]
    if threads:
        opts += [f"-threads:{s}", str(threads)]
    return opts


def keyframe_times(start: float, duration: float) -> list[float]:
    """IDR instants for a run that starts at ``start`` seconds of the source, relative to the
    run's first frame: the run's first frame, then every absolute multiple of ``GOP_SECONDS``
    after ``start`` and before ``duration`` (all seconds). Relative to the run, so a resumed
    run puts its IDRs on the same absolute grid as an uninterrupted one (DESIGN §9)."""
    times = [0.0]
    k = int(start // GOP_SECONDS) + 1
    while k * GOP_SECONDS < duration:
        t = round(k * GOP_SECONDS - start, 6)
        if t > 0.001:
            times.append(t)
        k += 1
    return times


def video_args(input_url: str, out_dir: str, r: VideoRendition, preset: str = "veryfast", threads: int = 0,
               start: float = 0.0, start_number: int = 0, duration: float | None = None) -> list[str]:
    """Arguments that transcode the first video stream of ``input_url`` to one HLS video-only
    rendition in ``out_dir`` (``index.m3u8`` + ``seg_00000.ts`` ...).

    ``start`` (seconds, a segment boundary of an earlier run) and ``start_number`` (index of the
    first segment) resume a rendition (DESIGN §9): the input is seeked to ``start``, output
    timestamps are offset so they continue the earlier segments (``-output_ts_offset start+1``,
    the same +1 for every run), frames pass through unchanged (no duplicates) and IDRs are
    forced at an explicit list on the absolute 2 s grid (``duration`` seconds needed for it).
    The playlist is an EVENT playlist listing whole segments only (``temp_file``); the worker
    writes the final VOD playlist from its checkpoints.
    """
    if duration is None:
        keyframes = f"expr:gte(t,n_forced*{GOP_SECONDS})"
    else:
        keyframes = ",".join(f"{t:g}" for t in keyframe_times(start, duration))
    opts = x264_options(r, preset, threads)
    i = opts.index("-force_key_frames:v")
    opts[i + 1] = keyframes
    limit = read_limit(duration - start) if duration is not None else None
    return [*confined_input(input_url, start, limit), "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", video_filter(r),
            "-fps_mode:v", "passthrough", "-enc_time_base:v", "-1", *opts,
            "-output_ts_offset", f"{start + OUTPUT_TS_BASE:.6f}", "-muxdelay", "0",
            "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "event",
            "-hls_flags", "independent_segments+temp_file", "-hls_segment_type", "mpegts",
            "-start_number", str(start_number),
            "-hls_segment_filename", f"{out_dir}/{SEGMENT_PATTERN}", f"{out_dir}/{PLAYLIST_NAME}"]


def audio_args(input_url: str, out_dir: str, a: AudioRendition, duration: float | None = None) -> list[str]:
    """Arguments that encode the first audio stream once, as the AAC-LC audio rendition
    (reading at most ``read_limit(duration)`` seconds when ``duration`` is given)."""
    return [*confined_input(input_url, 0.0, read_limit(duration) if duration else None), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-c:a", "aac", "-b:a", str(a.bitrate), "-ac", str(a.channels), "-ar", str(a.sample_rate),
            *_hls_output(out_dir)]


def poster_args(input_url: str, out_path: str, t: ThumbnailPlan, fps: float) -> list[str]:
    """Arguments for the poster: seek to ``poster_time``, let the ``thumbnail`` filter pick the
    most representative of the next ~2 s of frames (it avoids black and transition frames)."""
    window = max(2, min(100, int(round((fps or 25) * 2))))
    return [*confined_input(input_url, t.poster_time, 10.0), "-map", "0:v:0", "-an",
            "-vf", f"thumbnail={window},scale={t.poster_width}:{t.poster_height},setsar=1",
            "-frames:v", "1", "-q:v", "3", out_path]


def sprite_args(input_url: str, out_path: str, t: ThumbnailPlan, duration: float | None = None) -> list[str]:
    """Arguments for the sprite sheet: the first frame, then one every ``interval`` seconds
    (``select`` on the time since the last pick, so even a clip shorter than one interval
    gets its tile), ``columns`` x ``rows`` grid (``tile`` flushes a partly filled grid at end
    of input)."""
    pick = f"select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{t.interval:g})'"
    return [*confined_input(input_url, 0.0, read_limit(duration) if duration else None), "-map", "0:v:0", "-an",
            "-vf", f"{pick},scale={t.width}:{t.height},setsar=1,tile={t.columns}x{t.rows}",
            "-fps_mode", "passthrough", "-frames:v", "1", "-q:v", "4", out_path]


def reference_ladder_args(input_url: str, out_dir: str, plan: Plan, preset: str = "veryfast") -> list[str]:
    """One hand-written ffmpeg command that makes the same ladder as the pipeline (decode
    once, ``split`` to one scaler per rendition, audio once). The benchmark's baseline."""
    videos: Sequence[VideoRendition] = plan.videos
    labels = [f"v{i}" for i in range(len(videos))]
    graph = f"[0:v:0]split={len(videos)}" + "".join(f"[s{i}]" for i in range(len(videos)))
    graph += "".join(f";[s{i}]{video_filter(r)}[{labels[i]}]" for i, r in enumerate(videos))
    args = [*confined_input(input_url), "-filter_complex", graph]
    for i, r in enumerate(videos):
        args += ["-map", f"[{labels[i]}]", *x264_options(r, preset, 0, f"v:0"), "-an",
                 *_hls_output(f"{out_dir}/{r.name}")]
        # per-output options apply to the next output only
    if plan.audio:
        a = plan.audio
        args += ["-map", "0:a:0", "-vn", "-c:a", "aac", "-b:a", str(a.bitrate), "-ac", str(a.channels),
                 "-ar", str(a.sample_rate), *_hls_output(f"{out_dir}/audio")]
    return args
