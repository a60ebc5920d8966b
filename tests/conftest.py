"""Shared fixtures: the real test media in ../shared/media and ffprobe of them."""
from __future__ import annotations

import csv
import json
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import pytest

from chalicelib.config import ClientSettings

ROOT = Path(__file__).resolve().parents[1]
#: The real test media: ../shared/media beside the project (CI's layout), or VODPIPE_MEDIA_DIR.
MEDIA = Path(ClientSettings.from_env().media_dir or ROOT.parent / "shared" / "media").resolve()


#: Markers by folder: a module is marked by where it sits, so none can forget its marker. The fast
#: set is everything else: ``-m "not media and not e2e and not browser"`` (``make test-fast``).
#: media: runs ffmpeg, ffprobe or PyAV on real media; e2e: through the local cloud; browser: the
#: console in chromium against the local cloud (so end to end too).
FOLDER_MARKERS = {"media": ("media",), "e2e": ("e2e",), "browser": ("browser", "e2e")}
TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:  # not under tests/
            continue
        for name in FOLDER_MARKERS.get(folder, ()):
            item.add_marker(name)


@lru_cache(maxsize=None)
def manifest() -> dict[str, dict]:
    """MANIFEST.tsv rows by file name."""
    with open(MEDIA / "MANIFEST.tsv", newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def media(name: str) -> Path:
    path = MEDIA / name
    assert path.is_file(), f"test media {path} is missing (shared/media must sit beside the project)"
    return path


@lru_cache(maxsize=None)
def ffprobe_json(name: str) -> dict:
    """ffprobe -show_format -show_streams of a test clip (what ingest sees)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                          str(media(name))], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def wait_for(predicate, timeout: float, what, interval: float = 0.3):
    """``predicate()``'s first truthy value, polled every ``interval`` seconds; AssertionError
    naming ``what`` (a string, or a callable giving one at the timeout, to show the last state
    seen) after ``timeout`` seconds. The one way tests wait for a condition."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


def looped_clip(directory: Path, name: str, loops: int) -> Path:
    """``name`` from the test media played ``loops + 1`` times (stream copy) into ``directory``."""
    path = directory / f"{Path(name).stem}x{loops + 1}{Path(name).suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", str(loops), "-i", str(media(name)), "-c", "copy",
                    str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def media_dir() -> Path:
    assert MEDIA.is_dir(), f"{MEDIA} missing"
    return MEDIA


def one_rendition(src, base: Path, rendition, duration: float, start: float = 0.0):
    """(ffmpeg arguments, output directory) encoding ``rendition`` alone from ``start`` to the
    end of ``src``: a chunk with a one-rung ladder, as the chunk task runs it (one file per
    GOP, ``gop_<n>.ts``, numbered on the absolute grid; a preroll before ``start``)."""
    from chalicelib.domain import ffmpeg_args
    out = Path(base) / rendition.name
    out.mkdir(parents=True, exist_ok=True)
    return ffmpeg_args.chunk_args(str(src), str(base), [rendition], start, duration, True, quality_metrics=()), out


def segments_of_run(folder: Path, first_segment: int = 0, end_segment: int | None = None,
                    lead: float = 0.0) -> dict[int, bytes]:
    """The segments a chunk run made in ``folder`` (one rendition), as the worker joins them:
    GOP files grouped by the segment their first frame falls in (after a ``lead`` s first
    segment, when the job has one), those outside ``[first_segment, end_segment)`` dropped.
    Reads the packets, not the run's playlist."""
    from chalicelib.domain import ffmpeg_args
    from chalicelib.domain.mpegts import video_pts
    groups: dict[int, list[bytes]] = {}
    for gop in sorted(Path(folder).glob("gop_*.ts")):
        data = gop.read_bytes()
        index = ffmpeg_args.segment_of(ffmpeg_args.source_time(min(video_pts(data))), ffmpeg_args.SEGMENT_SECONDS, lead)
        if index >= first_segment and (end_segment is None or index < end_segment):
            groups.setdefault(index, []).append(data)
    return {i: b"".join(parts) for i, parts in sorted(groups.items())}
