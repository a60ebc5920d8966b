"""Audio task: the source's first audio stream encoded once for the whole file, as the
AAC-LC audio rendition (docs/chunking-and-resume.md: audio encoded per chunk glitches at every boundary)."""
from __future__ import annotations

import os
from typing import Any, Callable

from chalicelib.domain import ffmpeg_args
from chalicelib.domain import jobs
from chalicelib.domain.ladder import AudioRendition
from chalicelib.domain.mpegts import audio_span
from chalicelib.domain.playlist import aac_codec_string, extinf_from_timing, measure_segments, media_playlist
from chalicelib.tools import ffmpeg

from .encode_runtime import EncodeRuntime


def encode_audio(runner: EncodeRuntime, url: str, out_dir: str, job_id: str, msg: dict[str, Any],
                 on_progress: Callable[[float], None]) -> tuple[dict, tuple[float, float]]:
    """Encode the audio rendition, upload its segments and return (stats, (ffmpeg seconds,
    CPU seconds)). Stats: ``extinf`` (seconds per segment, from the segments' own packets:
    the muxer's estimate is off, e.g. by 4 AAC frames on an MP2 source, docs/hls-output.md), the
    measured bandwidths (bits/s), ``codecs`` (RFC 6381), ``channels``. The presentation
    publisher writes its playlist. Raises what ``runner.ffmpeg`` raises (``PermanentError``
    for a source ffmpeg cannot read, ``TransientError``, or what interrupted the run) and AWS
    errors of the upload."""
    ctx = runner.ctx
    spec = msg["spec"]
    a = AudioRendition(**{k: spec[k] for k in AudioRendition.__dataclass_fields__})
    duration = float(msg["duration"])
    segment_seconds = int(msg.get("segment_duration") or ffmpeg_args.SEGMENT_SECONDS)
    res = runner.ffmpeg(ffmpeg_args.audio_args(url, out_dir, a, duration, segment_seconds), duration, on_progress,
                        "audio rendition", url)
    files = sorted(f for f in os.listdir(out_dir) if f.endswith(".ts"))
    spans = []
    for f in files:
        with open(os.path.join(out_dir, f), "rb") as fh:
            spans.append(audio_span(fh.read()))
    extinf = extinf_from_timing([start for start, _ in spans], spans[-1][1])
    sizes = {f: os.path.getsize(os.path.join(out_dir, f)) for f in files}
    stats = measure_segments(media_playlist(list(zip(files, extinf))), sizes).to_dict()
    ctx.objects.upload_files([(os.path.join(out_dir, f), jobs.output_key(jobs.output_prefix(msg), a.name, f)) for f in files],
                             ctx.settings.output_bucket)
    probe = next(x for x in ffmpeg.probe(os.path.join(out_dir, files[0]))["streams"] if x.get("codec_type") == "audio")
    stats.update(extinf=extinf, codecs=aac_codec_string(probe.get("profile")), channels=a.channels,
                 transcode_seconds=round(res.seconds, 2), cpu_seconds=round(res.cpu_seconds, 2))
    return stats, (res.seconds, res.cpu_seconds)
