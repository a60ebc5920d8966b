"""FFmpeg arguments of a job's sound and text outputs (pure: argument lists, no I/O): the audio
rendition on the video's clock (``AUDIO_TIMELINE``), the loudness measuring pass, a subtitle
track to SubRip, and the progressive MP4/M4A remuxed from the segments (docs/hls-output.md,
docs/sound.md, docs/text.md)."""
from __future__ import annotations

from .ffmpeg_args import AUDIO_TIMELINE, OUTPUT_TS_BASE, SEGMENT_SECONDS, confined_input, hls_output, read_limit
from .ladder import AudioRendition


def audio_args(input_url: str, out_dir: str, a: AudioRendition, duration: float | None = None,
               segment_seconds: int = SEGMENT_SECONDS, audio_filter: str | None = None) -> list[str]:
    """Arguments that encode the source's audio stream ``a.track`` once, as the AAC-LC audio
    rendition ``a`` (reading at most ``read_limit(duration)`` seconds when ``duration`` is
    given), through ``audio_filter`` when given (loudness normalization,
    ``loudness.loudnorm``: its 192 kHz output is resampled to the rendition's rate).

    Timeline: the video's: source time t plays at output PTS t + ``OUTPUT_TS_BASE`` whatever the
    source's audio does (``AUDIO_TIMELINE``); the first packet is the AAC priming frame, 1024
    samples earlier. RFC 8216 §3 ties renditions together by timestamps only."""
    chain = f"{AUDIO_TIMELINE},{audio_filter},aresample={a.sample_rate}" if audio_filter else AUDIO_TIMELINE
    return [*confined_input(input_url, 0.0, read_limit(duration) if duration else None), "-map", f"0:a:{a.track}",
            "-vn", "-sn", "-dn", "-af", chain, "-c:a", "aac", "-b:a", str(a.bitrate), "-ac", str(a.channels),
            "-ar", str(a.sample_rate), "-output_ts_offset", f"{OUTPUT_TS_BASE:.6f}", "-muxdelay", "0",
            *hls_output(out_dir, segment_seconds)]


def subtitle_args(input_url: str, track: int, out_path: str, max_bytes: int) -> list[str]:
    """Arguments that convert the source's text subtitle stream ``track`` (``0:s:<track>``:
    mov_text, subrip, ass ...) to one SubRip file at ``out_path`` (FFmpeg's SRT writer turns
    styling into ``<i> <b> <u> <font>``; ``webvtt.parse_srt`` escapes the rest), at most
    ``max_bytes`` bytes (``-fs``)."""
    return [*confined_input(input_url), "-map", f"0:s:{track}", "-c:s", "srt", "-fs", str(int(max_bytes)),
            "-f", "srt", out_path]


def loudness_args(input_url: str, a: AudioRendition, audio_filter: str, duration: float | None = None) -> list[str]:
    """Arguments of a measuring pass: the source's audio stream ``a.track`` through
    ``audio_filter`` (``loudness.loudnorm`` without measurements) to nothing; the report is in
    the run's log."""
    return [*confined_input(input_url, 0.0, read_limit(duration) if duration else None), "-map", f"0:a:{a.track}",
            "-vn", "-sn", "-dn", "-af", f"{AUDIO_TIMELINE},{audio_filter}", "-f", "null", "-"]


def progressive_args(video_ts: str | None, audio_ts: str | None, out_path: str) -> list[str]:
    """Arguments that remux a rendition's joined HLS segments (MPEG-TS files: the video, the
    audio, or both) into one progressive MP4/M4A with the ``moov`` box first (``faststart``:
    playback starts before the download ends). No re-encode: ``-c copy``; AAC moves from ADTS
    framing to MP4's (``aac_adtstoasc``). The segments' own timestamps are kept (``-copyts``)
    less ``OUTPUT_TS_BASE``: the file's time is the source's, the audio stays where it was
    against the picture (FFmpeg would otherwise start each input at 0 on its own), and the AAC
    priming frame before 0 becomes an edit list (ISO/IEC 14496-12 §8.6.6). Raises ValueError
    without any input."""
    inputs = [p for p in (video_ts, audio_ts) if p]
    if not inputs:
        raise ValueError("a progressive file needs a video or an audio input")
    args: list[str] = ["-y", "-copyts"]
    for path in inputs:
        args += confined_input(path)
    for i in range(len(inputs)):
        args += ["-map", f"{i}:{'v' if inputs[i] == video_ts else 'a'}:0"]
    args += ["-c", "copy", "-dn", "-sn"]
    if audio_ts:
        args += ["-bsf:a", "aac_adtstoasc"]
    return [*args, "-output_ts_offset", f"{-OUTPUT_TS_BASE:.6f}", "-movflags", "+faststart", out_path]
