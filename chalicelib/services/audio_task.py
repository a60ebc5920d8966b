"""Audio task: one audio stream of the source encoded once for the whole file, as one AAC-LC
audio rendition (docs/chunking-and-resume.md: audio encoded per chunk glitches at every
boundary), loudness-normalized in two passes when the job asks (``domain.loudness``)."""
from __future__ import annotations

import os
from typing import Any, Callable

from chalicelib.domain import chunks, ffmpeg_args, loudness, sound
from chalicelib.domain import track_args
from chalicelib.domain import jobs
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.ladder import AudioRendition
from chalicelib.domain.playlist import aac_codec_string, extinf_from_timing, measure_segments, media_playlist
from chalicelib.tools import ffmpeg

from .audio_segments import AudioSegments
from .encode_runtime import EncodeRuntime

#: Below this integrated loudness (LUFS) a track is digital silence or close to it: not
#: normalized (a gain of 50 dB would only raise the noise floor). BS.1770's absolute gate is -70.
SILENCE_LUFS = -70.0


def encode_audio(runner: EncodeRuntime, url: str, out_dir: str, job_id: str, msg: dict[str, Any],
                 on_progress: Callable[[float], None],
                 publish: Callable[[], bool] | None = None) -> tuple[dict, tuple[float, float]]:
    """Encode the audio rendition, upload its segments as ffmpeg finishes them
    (``audio_segments.AudioSegments``: ``publish()`` is called as they are recorded, so the
    job is playable once its first chunk and the audio's first seconds are in; with the spec's
    ``yield_after`` (later chunks follow) its encoding run yields the CPU to the first chunk's,
    ``chunks.audio_niceness``; a loudness measurement before it does not) and return (stats, (ffmpeg seconds, CPU seconds)). Stats: ``extinf`` (seconds per segment, from the segments' own packets:
    the muxer's estimate is off, e.g. by 4 AAC frames on an MP2 source, docs/hls-output.md), the
    measured bandwidths (bits/s), ``codecs`` (RFC 6381), ``channels``; with a loudness target,
    ``loudness_in``/``loudness_out`` {integrated_lufs, range_lu, true_peak_dbtp} and
    ``normalization`` (``linear``, ``dynamic``, or ``none: silent``). The presentation
    publisher writes its playlist. Raises what ``runner.ffmpeg`` raises (``PermanentError``
    for a source ffmpeg cannot read, ``TransientError``, or what interrupted the run) and AWS
    errors of the upload."""
    ctx = runner.ctx
    spec = msg["spec"]
    a = AudioRendition(**{k: spec[k] for k in AudioRendition.__dataclass_fields__ if k in spec})  # older messages: fewer
    duration = float(msg["duration"])
    segment_seconds = int(msg.get("segment_duration") or ffmpeg_args.SEGMENT_SECONDS)
    levels: dict[str, Any] = {}
    audio_filter = None
    spent = (0.0, 0.0)
    # when later chunks follow, the first chunk's encoders come first (chunks.audio_niceness);
    # a loudness measurement, which must read the whole track before the first segment, does not
    niceness = chunks.audio_niceness(bool(spec.get("yield_after")))
    if a.loudness is not None:  # measure first (BS.1770-4), then normalize with the measurements
        target, ceiling = float(a.loudness), float(a.true_peak or sound.TRUE_PEAK_CEILING) - sound.CODEC_MARGIN
        probe_run = runner.ffmpeg(track_args.loudness_args(url, a, loudness.loudnorm(target, ceiling), duration),
                                  duration, lambda pct: on_progress(pct / 3), "loudness measurement", url,
                                  info_log=True)  # no segment before it ends: at full priority
        spent = (probe_run.seconds, probe_run.cpu_seconds)
        source_level = loudness.measured(probe_run.stderr)
        levels["loudness_in"] = source_level.to_dict()
        if source_level.integrated > SILENCE_LUFS:
            audio_filter = loudness.loudnorm(target, ceiling, source_level)
        else:
            levels["normalization"] = "none: silent"
    segments = AudioSegments(ctx, job_id, msg["task"], out_dir, jobs.output_prefix(msg), a.name, publish,
                             runner.canceled)
    segments.start()
    res = None
    try:
        res = runner.ffmpeg(track_args.audio_args(url, out_dir, a, duration, segment_seconds, audio_filter), duration,
                            on_progress if not levels else (lambda pct: on_progress(33 + pct * 2 / 3)),
                            "audio rendition", url, info_log=bool(audio_filter), niceness=niceness)
    finally:
        if res is None:  # failed or interrupted: nothing more is uploaded
            segments.stop()
        else:
            segments.finish()
    runner.raise_if_interrupted(job_id, msg["task"])  # canceled after ffmpeg ended: uploads stopped
    if audio_filter:
        out_level, mode = loudness.normalized(res.stderr)
        levels.update(loudness_out=out_level.to_dict(), normalization=mode, loudness_target=a.loudness)
    files, spans = segments.files, segments.spans
    if not files:
        raise PermanentError("NO_DECODABLE_AUDIO", "no audio could be decoded")
    extinf = extinf_from_timing([start for start, _ in spans], spans[-1][1])
    stats = measure_segments(media_playlist(list(zip(files, extinf))), segments.sizes).to_dict()
    probe = next(x for x in ffmpeg.probe(os.path.join(out_dir, files[0]))["streams"] if x.get("codec_type") == "audio")
    seconds, cpu = res.seconds + spent[0], res.cpu_seconds + spent[1]
    stats.update(extinf=extinf, codecs=aac_codec_string(probe.get("profile")), channels=a.channels,
                 transcode_seconds=round(seconds, 2), cpu_seconds=round(cpu, 2), **levels)
    return stats, (seconds, cpu)
