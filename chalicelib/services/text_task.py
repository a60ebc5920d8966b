"""Text task: one subtitle rendition (``captions.TextRendition``) written as segmented WebVTT
(RFC 8216 §3.5) on the job's segment grid, and as one whole ``.vtt`` beside the MP4s
(``mp4/<rendition>.vtt``).

A source subtitle stream is converted to WebVTT by ffmpeg (text formats only:
``captions.TEXT_CODECS``); a caption file is the checked copy ingest stored
(``caption_import``). Each segment starts with ``X-TIMESTAMP-MAP=MPEGTS:<source time 0 on the
video's 90 kHz clock>,LOCAL:00:00:00.000``: the video runs put source time t at MPEG-TS time
t + ``ffmpeg_args.OUTPUT_TS_BASE`` (``-output_ts_offset``), so cues show with the frames they
were timed against.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from chalicelib.domain import captions, ffmpeg_args, jobs, webvtt
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.presentation import TEXT_SEGMENT_PATTERN as SEGMENT_PATTERN

from .encode_runtime import EncodeRuntime

#: MPEG-TS time (90 kHz) of source time 0 in every video and audio rendition.
MPEGTS_AT_ZERO = round(ffmpeg_args.OUTPUT_TS_BASE * 90_000)


def whole_file_key(prefix: str, name: str) -> str:
    """Key of a text rendition's whole WebVTT file, beside the MP4 downloads."""
    return jobs.output_key(prefix, "mp4", f"{name}.vtt")


def make_text(runner: EncodeRuntime, url: str, out_dir: str, job_id: str, msg: dict[str, Any],
              on_progress: Callable[[float], None]) -> tuple[dict, tuple[float, float]]:
    """Write the text rendition of ``msg`` (a ``text`` task message) and return (stats,
    (ffmpeg seconds, CPU seconds)). Stats: ``extinf`` (seconds per segment), ``cues`` (how
    many), ``vtt`` (the whole file's key), ``total_bytes``. Raises ``PermanentError``
    (``INVALID_CAPTIONS`` for text that is not WebVTT after conversion, ``CAPTIONS_NOT_FOUND``
    for a stored copy that is gone), what ``runner.ffmpeg`` raises, and AWS errors."""
    ctx = runner.ctx
    spec = msg["spec"]
    duration = float(msg["duration"])
    segment_seconds = int(msg.get("segment_duration") or ffmpeg_args.SEGMENT_SECONDS)
    spent = (0.0, 0.0)
    if spec.get("track") is not None:
        path = os.path.join(out_dir, "source.vtt")
        res = runner.ffmpeg(ffmpeg_args.subtitle_args(url, int(spec["track"]), path, duration), duration,
                            on_progress, "subtitle track", url)
        spent = (res.seconds, res.cpu_seconds)
        label = f"subtitle track {int(spec['track'])} of the source"
        with open(path, "rb") as fh:
            data = fh.read(captions.MAX_CAPTION_BYTES + 1)
        if len(data) > captions.MAX_CAPTION_BYTES:
            raise PermanentError("INVALID_CAPTIONS", f"{label} holds more than {captions.MAX_CAPTION_BYTES} bytes of text")
        cues = webvtt.parse_captions(data, label) if data.strip() else []
    else:
        where = captions.parse_s3_uri(str(spec["source"]))
        data = ctx.objects.get_small(where[0], where[1], captions.MAX_CAPTION_BYTES * 2) if where else None
        if data is None:
            raise PermanentError("CAPTIONS_NOT_FOUND", f"the checked copy of {spec.get('label')} is gone")
        cues = webvtt.parse_captions(data, str(spec.get("label")))
    durations = webvtt.segment_durations(duration, segment_seconds)
    files = []
    for index, text in enumerate(webvtt.segments(cues, durations, MPEGTS_AT_ZERO)):
        path = os.path.join(out_dir, SEGMENT_PATTERN % index)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        files.append((path, jobs.output_key(jobs.output_prefix(msg), spec["name"], SEGMENT_PATTERN % index)))
    whole = os.path.join(out_dir, "whole.vtt")
    with open(whole, "w", encoding="utf-8") as fh:
        fh.write(webvtt.document(cues))
    vtt_key = whole_file_key(jobs.output_prefix(msg), spec["name"])
    total = ctx.objects.upload_files([*files, (whole, vtt_key)], ctx.settings.output_bucket)
    on_progress(100.0)
    return ({"extinf": [round(d, 6) for d in durations], "cues": len(cues), "vtt": vtt_key, "total_bytes": total,
             "transcode_seconds": round(spent[0], 2), "cpu_seconds": round(spent[1], 2)}, spent)
