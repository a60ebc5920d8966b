"""Shared fixtures: the real test media in ../shared/media and ffprobe of them."""
from __future__ import annotations

import csv
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The real test media: ../shared/media beside the project (CI's layout), or VODPIPE_MEDIA_DIR.
MEDIA = Path(os.environ.get("VODPIPE_MEDIA_DIR") or ROOT.parent / "shared" / "media").resolve()


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
