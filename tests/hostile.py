"""Hostile uploads and the traps that prove they reached nothing.

* ``Listener``: an HTTP server on 127.0.0.1 that records every request path. Crafted files
  name URLs under ``/internal/`` on it; any request there is a leak.
* ``FifoTrap``: a named pipe; crafted files name it as a local path. Opening it for reading
  (what FFmpeg's ``file`` protocol would do) unblocks the trap's writer: a deterministic
  witness that a local file was opened, without relying on access times.
* ``crafted_files``: one file per kind of input that opens other resources (HLS playlist,
  the same under a video name, DASH manifest, ffconcat script, SDP session, a single image).
"""
from __future__ import annotations

import http.server
import os
import subprocess
import threading
from pathlib import Path

from tests.conftest import media


class Listener:
    """Records request paths; serves ``files`` (name -> bytes) under ``/upload/<name>``."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.files: dict[str, bytes] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.requests.append(self.path)
                path = self.path.split("?", 1)[0]
                name = path.split("/upload/", 1)[1] if path.startswith("/upload/") else None
                body = outer.files.get(name or "")
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Listener":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def leaks(self) -> list[str]:
        """Requests that did not fetch an upload itself."""
        return [p for p in self.requests if not p.startswith("/upload/")]


class FifoTrap:
    """A named pipe at ``path``; ``opened`` is set once anything opens it for reading."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "secret.ts"  # a media extension, so FFmpeg's HLS demuxer would open it
        os.mkfifo(self.path)
        self.opened = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        with open(self.path, "wb"):  # blocks until a reader opens the pipe
            if not self._closing:
                self.opened.set()

    def close(self) -> None:
        """Release the writer thread (open the read end ourselves)."""
        self._closing = True
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread.join(timeout=5)
        os.close(fd)


def crafted_files(listener_url: str, fifo: Path, workdir: Path) -> dict[str, bytes]:
    """name -> bytes of every crafted input. Each names ``listener_url/internal/...`` and/or
    the FIFO; the expected outcome for all is ``UNSUPPORTED_FORMAT`` with nothing opened."""
    internal = f"{listener_url}/internal"
    head = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n"
    playlist = f"{head}{internal}/secret.ts\n#EXT-X-ENDLIST\n".encode()
    local = f"{head}file:{fifo}\n#EXT-X-ENDLIST\n".encode()
    dash = (f'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            f'mediaPresentationDuration="PT2S" minBufferTime="PT1S" '
            f'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period><AdaptationSet mimeType="video/mp4">'
            f'<Representation id="1" bandwidth="100000" codecs="avc1.64001f" width="320" height="240">'
            f'<BaseURL>{internal}/dash.mp4</BaseURL><SegmentBase indexRange="0-100"/></Representation>'
            f'</AdaptationSet></Period></MPD>\n').encode()
    concat = f"ffconcat version 1.0\nfile '{internal}/concat.mp4'\nfile '{fifo}'\n".encode()
    port = listener_url.rsplit(":", 1)[1]
    sdp = (f"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=hostile\nc=IN IP4 127.0.0.1\nt=0 0\n"
           f"m=video {port} RTP/AVP 96\na=rtpmap:96 H264/90000\n").encode()
    image = workdir / "still.jpg"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(media("flower.mp4")), "-frames:v", "1", str(image)],
                   check=True)
    return {"evil.m3u8": playlist, "playlist-as-video.mp4": playlist, "local-file.m3u8": local, "manifest.mpd": dash,
            "script.ffconcat": concat, "session.sdp": sdp, "still-image.mp4": image.read_bytes()}


# --- huge work from small files (issue 22) -------------------------------------------------
def huge_still(path: Path, width: int, height: int) -> Path:
    """A valid one-frame MJPEG AVI of ``width`` x ``height`` grey pixels in about
    width x height / 256 bytes (16000 x 16000: 1 MB), built without encoding a picture: a
    baseline grey JPEG whose Huffman tables hold one symbol each (DC difference 0, end of
    block), so every 8x8 block is the two bits ``00``, in an AVI written here (FFmpeg's
    muxers refuse sizes its own limit refuses). Decoding it allocates the whole picture
    (16000 x 16000: 256 MB); FFmpeg's ``av_image_check_size`` refuses sides past ~16,000."""
    import struct

    def segment(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload

    def chunk(fourcc: bytes, payload: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)

    def riff_list(kind: bytes, fourcc: bytes, payload: bytes) -> bytes:
        return kind + struct.pack("<I", len(payload) + 4) + fourcc + payload

    blocks = -(-width // 8) * -(-height // 8)
    jpeg = (b"\xff\xd8" + segment(0xDB, b"\x00" + b"\x01" * 64)
            + segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
            + segment(0xC4, b"\x00\x01" + b"\x00" * 15 + b"\x00") + segment(0xC4, b"\x10\x01" + b"\x00" * 15 + b"\x00")
            + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x00" * -(-2 * blocks // 8) + b"\xff\xd9")
    avih = struct.pack("<10I4I", 1_000_000, 0, 0, 0x10, 1, 0, 1, len(jpeg), width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sI2H8I4h", b"vids", b"MJPG", 0, 0, 0, 0, 1, 1, 0, 1, len(jpeg), 0xFFFFFFFF, 0,
                       0, 0, min(width, 32767), min(height, 32767))
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", (width * height * 3) % 2**32, 0, 0, 0, 0)
    header = riff_list(b"LIST", b"hdrl", chunk(b"avih", avih)
                       + riff_list(b"LIST", b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movi = riff_list(b"LIST", b"movi", chunk(b"00dc", jpeg))
    index = chunk(b"idx1", struct.pack("<4sIII", b"00dc", 0x10, 4, len(jpeg)))
    path.write_bytes(riff_list(b"RIFF", b"AVI ", header + movi + index))
    return path


def size_change_clip(path: Path, first: str = "320x240", then: str = "640x480", seconds: float = 2.0) -> Path:
    """An MPEG-TS file whose H.264 video changes picture size mid-stream: ``seconds`` of
    ``first`` then ``seconds`` of ``then`` (two encodes joined byte for byte; the second's
    timestamps follow the first's). Probes as ``first``, like any such file."""
    parts = []
    for i, size in enumerate((first, then)):
        part = path.with_name(f"{path.stem}-{i}.ts")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={size}:rate=30:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                        "-g", "30", "-output_ts_offset", str(i * seconds), "-f", "mpegts", str(part)], check=True)
        parts.append(part)
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    for p in parts:
        p.unlink()
    return path
