"""What a player sees of a job: one media playlist per rendition, the multivariant playlist
and the thumbnails track, built from what the tasks recorded (pure: no I/O).

A presentation covers the longest run of finished chunks from the start (the *prefix*) that
every audio rendition has reached (one ``EXT-X-MEDIA`` group, the default track first; an audio
task publishes its segments as it makes them, ``audio_prefix``), and needs every text
rendition (WebVTT subtitles, ``captions``; one group). While chunks are still missing it is
an EVENT presentation (RFC 8216 §4.3.3.5: players can start at once and the playlists only
grow by appended segments); once every chunk and the audio are in, EXT-X-ENDLIST closes it
(§4.3.3.4). A job whose presentation was never published before it was whole gets
PLAYLIST-TYPE VOD; one that was keeps EVENT, because §6.2.1 lets a server only append to a
published EVENT playlist.

EXTINF of a segment is the next segment's first PTS minus its own when both are in the same
chunk, and the end of its last frame for a chunk's last segment (docs/hls-output.md: from the media's
timestamps, never the muxer's estimate), so a published line never changes when the next
chunk arrives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from .chunks import contiguous_prefix
from .ffmpeg_args import PLAYLIST_NAME, SEGMENT_PATTERN, SEGMENT_SECONDS, source_time
from .ladder import ThumbnailPlan
from .playlist import extinf_from_timing, master_playlist, measure_segments, measured_frame_rate, media_playlist
from .thumbnails import TileRun, sprite_vtt

MASTER_NAME = "master.m3u8"
THUMBNAILS_TRACK = "thumbnails/thumbnails.vtt"
#: A text rendition's WebVTT segments (``services/text_task.py`` writes them).
TEXT_SEGMENT_PATTERN = "seg_%05d.vtt"


@dataclass(frozen=True)
class Presentation:
    """A publishable presentation.

    ``chunks`` chunks of ``chunks_total`` are in it, covering ``[0, seconds)`` of the source;
    ``complete`` when it is whole (ENDLIST); ``playlist_type`` ``EVENT`` or ``VOD``;
    ``files`` maps a key under the job's output prefix to the text to write there (media
    playlists first, the multivariant playlist last); ``variants`` the measured stats of each
    video rendition (bits/s, seconds, bytes, frames/s, dB)."""

    chunks: int
    chunks_total: int
    seconds: float
    complete: bool
    playlist_type: str
    files: dict[str, str] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def state(self) -> tuple[int, bool, str]:
        """What a publisher compares to know whether what it wrote is still current."""
        return self.chunks, self.complete, self.playlist_type


def _weighted_quality(chunks: Sequence[Mapping], rendition: str, metric: str) -> float | None:
    """Frame-weighted mean of one chunk-measured quality ``metric`` of ``rendition``."""
    values = [(float(q[metric]), int(q["frames"])) for c in chunks
              for q in [(c.get("quality") or {}).get(rendition) or {}] if q.get(metric) is not None]
    total = sum(n for _, n in values)
    return round(sum(v * n for v, n in values) / total, 4) if total else None


def rendition_entries(chunks: Sequence[Mapping], rendition: str) -> tuple[list[tuple[str, float]], list[dict]]:
    """(uri, EXTINF) of every checkpointed segment of ``rendition`` in ``chunks`` (in order),
    and the checkpoint records. Raises ValueError when a chunk's segments do not continue
    the previous chunk's numbering (a chunk is not finished, or a checkpoint is missing)."""
    entries: list[tuple[str, float]] = []
    records: list[dict] = []
    for chunk in chunks:
        segs = list((chunk.get("segs") or {}).get(rendition) or [])
        if not segs:
            raise ValueError(f"{chunk.get('name')} has no segment of {rendition}")
        indexes = [int(s["index"]) for s in segs]
        if indexes != list(range(len(records), len(records) + len(segs))):
            raise ValueError(f"{chunk.get('name')}/{rendition}: segments {indexes[:3]}... do not continue at {len(records)}")
        durations = extinf_from_timing([float(s["start"]) for s in segs], float(segs[-1]["end"]))
        entries += [(SEGMENT_PATTERN % i, d) for i, d in zip(indexes, durations)]
        records += segs
    return entries, records


def _in(base: str | None, folder: str, entries: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """``entries`` with absolute URIs under ``base/folder/`` when ``base`` is given."""
    return [(f"{base}/{folder}/{uri}", d) for uri, d in entries] if base else entries


def _variant(name: str, spec: Mapping, chunks: Sequence[Mapping], playlist_type: str, complete: bool,
             segment_seconds: int, base: str | None) -> tuple[str, dict]:
    entries, records = rendition_entries(chunks, name)
    entries = _in(base, name, entries)
    text = media_playlist(entries, playlist_type, complete, segment_seconds)
    sizes = {uri: int(r["bytes"]) for (uri, _), r in zip(entries, records)}
    stats = measure_segments(text, sizes).to_dict()
    stats.update(name=name, width=int(spec["width"]), height=int(spec["height"]),
                 video_bitrate=int(spec["video_bitrate"]),
                 frames=sum(int(r["frames"]) for r in records),
                 frame_rate=measured_frame_rate([int(r["frames"]) for r in records], [d for _, d in entries]),
                 codecs=(chunks[0].get("codecs") or {}).get(name) or "avc1.640028",
                 psnr_y=_weighted_quality(chunks, name, "psnr_y"),
                 ssim_y=_weighted_quality(chunks, name, "ssim_y"),
                 transcode_seconds=round(sum(float(c.get("transcode_seconds") or 0) for c in chunks), 2),
                 cpu_seconds=round(sum(float(c.get("cpu_seconds") or 0) for c in chunks), 2))
    return text, stats


def _audio(audio: Mapping, seconds: float, playlist_type: str, complete: bool, segment_seconds: int,
           base: str | None) -> tuple[str, dict]:
    durations = [float(d) for d in audio["extinf"]]
    keep, at = [], 0.0
    for i, d in enumerate(durations):
        if not complete and at >= seconds - 1e-3:
            break
        keep.append((SEGMENT_PATTERN % i, d))
        at += d
    text = media_playlist(_in(base, audio["name"], keep), playlist_type, complete, segment_seconds)
    return text, {"name": audio["name"], "codecs": audio.get("codecs") or "mp4a.40.2",
                  "channels": int(audio.get("channels") or 2),
                  "peak_bandwidth": int(audio.get("peak_bandwidth") or 0),
                  "average_bandwidth": int(audio.get("average_bandwidth") or 0),
                  "label": audio.get("label") or "default", "language": audio.get("language"),
                  "default": bool(audio.get("default", True)), "describes_video": bool(audio.get("describes_video")),
                  "uri": f"{base + '/' if base else ''}{audio['name']}/{PLAYLIST_NAME}"}


def _text(text: Mapping, seconds: float, playlist_type: str, complete: bool, segment_seconds: int,
          base: str | None) -> tuple[str, dict]:
    """A text rendition's media playlist (its WebVTT segments up to ``seconds``) and its
    ``EXT-X-MEDIA`` entry."""
    keep, at = [], 0.0
    for i, d in enumerate(float(d) for d in text.get("extinf") or []):
        if not complete and at >= seconds - 1e-3:
            break
        keep.append((TEXT_SEGMENT_PATTERN % i, d))
        at += d
    playlist = media_playlist(_in(base, text["name"], keep), playlist_type, complete, segment_seconds)
    return playlist, {"name": text["name"], "label": text.get("label") or text["name"], "language": text.get("language"),
                      "default": bool(text.get("default")), "forced": bool(text.get("forced")),
                      "hearing_impaired": bool(text.get("hearing_impaired")),
                      "uri": f"{base + '/' if base else ''}{text['name']}/{PLAYLIST_NAME}"}


def build(ladder: Sequence[Mapping], tasks: Sequence[Mapping], duration: float, was_event: bool,
          thumbnails: ThumbnailPlan | None = None, segment_seconds: int = SEGMENT_SECONDS,
          absolute_base: str | None = None) -> Presentation | None:
    """The presentation the finished tasks allow, or None when nothing is playable yet.

    ``ladder``: the job's video renditions (``name``, ``width``, ``height``,
    ``video_bitrate``); ``tasks``: the job's task items (chunk tasks with ``index``, ``end``,
    ``status``, ``segs`` {rendition: checkpoints}, ``codecs``, ``quality``, ``tiles``; the
    audio tasks with ``extinf``, their stats and ``label``/``language``/``default``, and while
    running the ``covered`` source seconds their recorded ``extinf`` reaches; the text
    tasks with ``extinf``, ``label``, ``language``, ``default``, ``forced``,
    ``hearing_impaired``); ``duration`` seconds of the source;
    ``was_event``: an EVENT presentation of this job was already published;
    ``segment_seconds`` the job's segment duration (EXT-X-TARGETDURATION); ``absolute_base``:
    write every URI absolute under this URL (the job's output prefix as served, e.g. the
    ``roku-hls`` preset), relative URIs otherwise (RFC 8216 §4.1 resolves them against the
    playlist's own URI).
    """
    chunks = sorted((t for t in tasks if t.get("kind") == "chunk"), key=lambda t: int(t["index"]))
    done = {int(t["index"]) for t in chunks if t.get("status") == "complete"}
    prefix = contiguous_prefix(done, len(chunks))
    audios = sorted((t for t in tasks if t.get("kind") == "audio"), key=lambda t: (not t.get("default", True), t["name"]))
    texts = sorted((t for t in tasks if t.get("kind") == "text"), key=lambda t: t["name"])
    if not all(t.get("status") == "complete" for t in texts):
        return None
    prefix = min(prefix, audio_prefix(audios, chunks, prefix))
    if prefix == 0:
        return None
    complete = prefix == len(chunks)
    ready = chunks[:prefix]
    seconds = duration if complete else float(ready[-1]["end"])
    playlist_type = "EVENT" if (was_event or not complete) else "VOD"
    files: dict[str, str] = {}
    variants: dict[str, dict] = {}
    for spec in ladder:
        text, stats = _variant(spec["name"], spec, ready, playlist_type, complete, segment_seconds, absolute_base)
        files[f"{spec['name']}/{PLAYLIST_NAME}"] = text
        variants[spec["name"]] = stats
    audio_entries = []
    for audio in audios:
        text, entry = _audio(audio, seconds, playlist_type, complete, segment_seconds, absolute_base)
        files[f"{audio['name']}/{PLAYLIST_NAME}"] = text
        audio_entries.append(entry)
    text_entries = []
    for text in sorted(texts, key=lambda t: int(t["name"].rpartition("_")[2]) if "_" in t["name"] else 0):
        playlist, entry = _text(text, seconds, playlist_type, complete, segment_seconds, absolute_base)
        files[f"{text['name']}/{PLAYLIST_NAME}"] = playlist
        text_entries.append(entry)
    if thumbnails is not None:
        runs = [TileRun(**c["tiles"]) for c in ready if c.get("tiles")]
        if runs:
            files[THUMBNAILS_TRACK] = sprite_vtt(thumbnails, seconds, runs)
    files[MASTER_NAME] = master_playlist(
        [{**v, "uri": f"{absolute_base + '/' if absolute_base else ''}{name}/{PLAYLIST_NAME}"}
         for name, v in variants.items()], audio_entries, text_entries)
    return Presentation(chunks=prefix, chunks_total=len(chunks), seconds=round(seconds, 3), complete=complete,
                        playlist_type=playlist_type, files=files, variants=variants)


#: How far short of a chunk's end an audio rendition may stop and still count as reaching it
#: (s): audio segments end on AAC frame boundaries (1024 samples: 21-64 ms from 48 to 16 kHz),
#: so one on the video's grid can stop a fraction of a frame before it.
AUDIO_REACH_TOLERANCE = 0.05


def audio_prefix(audios: Sequence[Mapping], chunks: Sequence[Mapping], prefix: int) -> int:
    """How many of the first ``prefix`` chunks (sorted by index) every audio rendition covers:
    all of them once each audio task is complete; else the chunks that end (``end`` s) at or
    before the source seconds each running audio task has published (``covered``, recorded
    with its segments' ``extinf`` by ``services/audio_segments.py``), never the last chunk
    (the audio's end is known only when its task is). So the first seconds of a long audio
    track make the job playable as early as its first chunk does."""
    if all(a.get("status") == "complete" for a in audios):
        return prefix
    covered = min(float(a.get("covered") or 0) if a.get("status") != "complete" else float("inf") for a in audios)
    reach = 0
    while reach < min(prefix, len(chunks) - 1) and float(chunks[reach]["end"]) <= covered + AUDIO_REACH_TOLERANCE:
        reach += 1
    return reach


def chunk_end_seconds(segs: Sequence[Mapping]) -> float:
    """Source seconds up to which a rendition's checkpoints of one chunk reach (the end of
    the last frame), or 0.0 without checkpoints."""
    return source_time(float(segs[-1]["end"])) if segs else 0.0


def watchable_from(publications: Sequence[Mapping], duration: float) -> tuple[str, float] | None:
    """The earliest moment from which playback runs to the end without stalling, from the
    published presentations (``{"seconds": media seconds published, "at": ISO time}`` each,
    as ``finalize.publish`` records them): a viewer starting at T needs media second m at
    T + m, and media beyond what publication i-1 covered exists from publication i's time, so
    T = max over i of (at_i - seconds_{i-1}) (seconds_{-1} = 0). Returns (the ISO time, the
    seconds it lies after the first publication), or None unless the last publication covers
    ``duration`` (s) (before that the answer can still move)."""
    steps = sorted(((float(p["seconds"]), datetime.fromisoformat(str(p["at"]).replace("Z", "+00:00")))
                    for p in publications), key=lambda step: (step[1], step[0]))
    if not steps or max(seconds for seconds, _ in steps) < duration - 0.01:
        return None
    start, covered = steps[0][1], 0.0
    for seconds, at in steps:
        start = max(start, at - timedelta(seconds=covered))
        covered = max(covered, seconds)
    return (start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            round((start - steps[0][1]).total_seconds(), 3))
