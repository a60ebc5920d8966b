"""Input confinement: hostile uploads reach nothing but their own bytes.

GIVEN crafted inputs that name URLs on a listener on 127.0.0.1 and a named pipe (HLS
playlist, the same under a video name, DASH manifest, ffconcat script, SDP session, an image)
WHEN every tool that opens an upload reads them over HTTP, as it reads a presigned URL
THEN each is refused as UNSUPPORTED_FORMAT naming the detected format, no request reaches
the listener outside the upload itself, and the pipe is never opened. (The protocol
whitelist and redaction rules alone: tests/unit/test_confinement_rules.py.)"""
import subprocess

import pytest

from chalicelib.domain import ffmpeg_args
from chalicelib.domain import track_args
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.thumbnails import poster_in, tiles_in
from chalicelib.domain.ladder import AudioRendition, ThumbnailPlan, VideoRendition
from chalicelib.tools import ffmpeg
from tests.hostile import FifoTrap, Listener, crafted_files

KINDS = {"evil.m3u8": "hls", "local-file.m3u8": "hls", "playlist-as-video.mp4": "hls", "manifest.mpd": "dash", "script.ffconcat": "concat",
         "session.sdp": "sdp", "still-image.mp4": "jpeg_pipe"}


@pytest.fixture(scope="module")
def traps(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    fifo = FifoTrap(work)
    with Listener() as listener:
        listener.files.update(crafted_files(listener.url, fifo.path, work))
        yield listener, fifo
    fifo.close()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_probe_refuses_and_names_the_format(traps, name):
    listener, fifo = traps
    with pytest.raises(PermanentError) as err:
        ffmpeg.probe(f"{listener.url}/upload/{name}")
    assert err.value.code == "UNSUPPORTED_FORMAT"
    assert f"detected format: {KINDS[name]}" in err.value.message
    assert "127.0.0.1" not in err.value.message and "fifo" not in err.value.message
    assert listener.leaks == [] and not fifo.opened.is_set()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_ffmpeg_run_refuses_too(traps, name, tmp_path):
    """The worker's runs are confined on their own (a source swapped after the probe)."""
    listener, fifo = traps
    url = f"{listener.url}/upload/{name}"
    rendition = VideoRendition(name="240p", width=426, height=240, video_bitrate=400_000, max_bitrate=600_000,
                               buffer_size=800_000, frame_rate=None)
    thumbs = ThumbnailPlan(name="thumbnails", interval=5, count=1, columns=1, rows=1, width=160, height=90,
                           poster_time=0.0, poster_width=320, poster_height=180)
    tiles = tiles_in(thumbs, 0, 0.0, 2.0, True)
    poster = poster_in(thumbs, 0.0, 0.0, 2.0, True, 25)
    runs = [ffmpeg_args.chunk_args(url, str(tmp_path), [rendition], 0.0, 2.0, True, tiles=tiles, poster=poster),
            track_args.audio_args(url, str(tmp_path), AudioRendition(name="audio", bitrate=128_000, channels=2,
                                                             sample_rate=48_000))]
    for args in runs:
        result = ffmpeg.FfmpegProcess().run(args, 2.0, timeout=60)
        with pytest.raises(PermanentError) as err:
            ffmpeg.check(result, "run", url)
        assert err.value.code == "UNSUPPORTED_FORMAT"
    assert not ffmpeg.first_video_frame_decodes(url)
    assert listener.leaks == [] and not fifo.opened.is_set()


def test_a_real_video_over_http_still_probes(traps, media_dir):
    listener, _ = traps
    listener.files["flower.mp4"] = (media_dir / "flower.mp4").read_bytes()
    info = ffmpeg.probe(f"{listener.url}/upload/flower.mp4")
    assert info["format"]["format_name"].startswith("mov") and ffmpeg.first_video_frame_decodes(
        f"{listener.url}/upload/flower.mp4")


def test_the_traps_themselves_work(traps, tmp_path):
    """Without confinement the same files do reach the listener and open the pipe: these
    tests can fail."""
    listener, _ = traps
    before = len(listener.leaks)
    subprocess.run(["ffprobe", "-v", "quiet", f"{listener.url}/upload/evil.m3u8"], timeout=30)
    assert len(listener.leaks) > before
    listener.requests[:] = [p for p in listener.requests if p.startswith("/upload/")]
    fifo = FifoTrap(tmp_path)
    playlist = tmp_path / "local.m3u8"
    playlist.write_bytes(crafted_files(listener.url, fifo.path, tmp_path)["local-file.m3u8"])
    probe = subprocess.Popen(["ffprobe", "-v", "quiet", str(playlist)])
    try:
        assert fifo.opened.wait(20), "an unconfined ffprobe opens the local file the playlist names"
    finally:
        probe.kill()
        probe.wait()
        fifo.close()
