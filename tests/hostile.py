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
