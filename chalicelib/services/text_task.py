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

from botocore.exceptions import ClientError

from chalicelib.domain import captions, ffmpeg_args, jobs, webvtt
from chalicelib.domain import track_args
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
    many), ``vtt`` (the whole file's key), ``total_bytes``, and ``problem`` when a source
    track's text could not be read (the rendition is then published empty: a bad subtitle
    track never fails the job). Raises ``PermanentError`` (``INVALID_CAPTIONS`` for cues that
    would write more than ``captions.MAX_SEGMENT_BYTES`` of segments, ``CAPTIONS_NOT_FOUND`` for a
    stored copy that is gone), what ``runner.ffmpeg`` raises, and AWS errors."""
    ctx = runner.ctx
    spec = msg["spec"]
    duration = float(msg["duration"])
    segment_seconds = int(msg.get("segment_duration") or ffmpeg_args.SEGMENT_SECONDS)
    spent, problem = (0.0, 0.0), None
    if spec.get("track") is not None:
        label = f"subtitle track {int(spec['track'])} of the source"
        path = os.path.join(out_dir, "source.srt")
        res = runner.ffmpeg(track_args.subtitle_args(url, int(spec["track"]), path, captions.MAX_CAPTION_BYTES),
                            duration, on_progress, "subtitle track", url)
        spent = (res.seconds, res.cpu_seconds)
        with open(path, "rb") as fh:
            data = fh.read(captions.MAX_CAPTION_BYTES + 1)
        try:
            cues = webvtt.parse_captions(data, label) if data.strip() else []  # an empty track: no cues
        except PermanentError as e:
            cues, problem = [], e.message
    else:
        label = str(spec.get("label"))
        cues = webvtt.parse_captions(stored_copy(ctx, spec), label)
    durations = webvtt.segment_durations(duration, segment_seconds)
    if webvtt.segments_size(cues, durations) > captions.MAX_SEGMENT_BYTES:
        raise PermanentError("INVALID_CAPTIONS", f"{label}: its cues, repeated in every segment they span, would "
                                                 f"take more than {captions.MAX_SEGMENT_BYTES} bytes of segments")
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
             "transcode_seconds": round(spent[0], 2), "cpu_seconds": round(spent[1], 2),
             **({"problem": problem} if problem else {})}, spent)


def stored_copy(ctx, spec: dict[str, Any]) -> bytes:
    """The caption file ingest checked and stored (``caption_import``), at its version. Raises
    ``PermanentError`` (``CAPTIONS_NOT_FOUND``) when it is gone or unreadable to us (S3 answers
    403 for a missing key to a role without ``s3:ListBucket``), ``INVALID_CAPTIONS`` when larger
    than a stored copy may be."""
    where = captions.parse_s3_uri(str(spec.get("source") or ""))
    gone = PermanentError("CAPTIONS_NOT_FOUND", f"the checked copy of {spec.get('label')} is gone")
    if not where:
        raise gone
    try:
        data = ctx.objects.get_small(where[0], where[1], captions.MAX_STORED_BYTES, spec.get("source_version"))
    except ValueError:
        raise PermanentError("INVALID_CAPTIONS", f"the checked copy of {spec.get('label')} is larger than "
                                                 f"{captions.MAX_STORED_BYTES} bytes") from None
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("AccessDenied", "NoSuchKey", "NoSuchVersion", "404", "403"):
            raise gone from None
        raise
    if data is None:
        raise gone
    return data
