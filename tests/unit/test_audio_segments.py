"""The audio task's segment uploader (``services/audio_segments.py``) against fakes of the
object store and the job store: segments go up in order as they appear, only those whose
successor exists are recorded (their EXTINF is final), the job is published until it is,
nothing moves for a canceled job, and the last sweep retries a failed upload."""
import threading
from types import SimpleNamespace

import pytest

from chalicelib.services import audio_segments, checkpoints
from chalicelib.services.audio_segments import AudioSegments


class Objects:
    def __init__(self, failures: int = 0):
        self.uploaded: list[str] = []
        self.failures = failures

    def upload_file(self, local, bucket, key):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("S3 said no")
        self.uploaded.append(key)
        with open(local, "rb") as fh:
            return len(fh.read())


class Store:
    def __init__(self):
        self.records: list[tuple[float, list[float]]] = []

    def record_partial_output(self, job_id, name, covered, extinf, **_):
        self.records.append((covered, list(extinf)))
        return True


@pytest.fixture
def made(tmp_path, monkeypatch):
    """A folder where segments appear as ffmpeg would rename them into place; each file's text
    is its span (first PTS, end: 6 s of audio from PTS 1.0 on)."""
    monkeypatch.setattr(audio_segments, "audio_span", lambda data: tuple(float(x) for x in data.split()))

    def write(index: int) -> None:
        start = 1.0 + 6 * index
        (tmp_path / f"seg_{index:05d}.ts").write_text(f"{start} {start + 6.0}")
    return write


def uploader(tmp_path, objects=None, publish=None, canceled=None):
    ctx = SimpleNamespace(objects=objects or Objects(), store=Store(), settings=SimpleNamespace(output_bucket="out"))
    return AudioSegments(ctx, "job", "audio", str(tmp_path), "job", "audio", publish, canceled)


def test_segments_go_up_in_order_and_only_final_extinf_is_recorded(tmp_path, made):
    published = []
    up = uploader(tmp_path, publish=lambda: published.append(1) or len(published) >= 2)
    made(0)
    made(2)  # not before segment 1 exists
    assert up.sweep() == 1 and up.ctx.store.records == [] and published == []  # one segment: no EXTINF yet
    made(1)
    assert up.sweep() == 2
    assert up.ctx.objects.uploaded == ["job/audio/seg_00000.ts", "job/audio/seg_00001.ts", "job/audio/seg_00002.ts"]
    assert up.ctx.store.records == [(12.0, [6.0, 6.0])]  # the last one waits for its successor
    assert published == [1] and not up.published
    up._last_publish = float("-inf")  # a second later, the publisher is tried again: now it publishes
    up.sweep()
    assert published == [1, 1] and up.published
    # the task's end: the rest is uploaded, nothing more recorded (its completion records all)
    made(3)
    up.finish()
    assert up.ctx.objects.uploaded[-1] == "job/audio/seg_00003.ts" and len(up.ctx.store.records) == 1
    assert up.files == [f"seg_{i:05d}.ts" for i in range(4)] and up.spans[-1] == (19.0, 25.0)


def test_nothing_moves_for_a_canceled_job(tmp_path, made):
    canceled = threading.Event()
    canceled.set()
    up = uploader(tmp_path, canceled=canceled)
    made(0)
    made(1)
    assert up.sweep() == 0 and up.ctx.objects.uploaded == [] and up.ctx.store.records == []


def test_the_last_sweep_retries_a_failed_upload(tmp_path, made, monkeypatch):
    monkeypatch.setattr(checkpoints.time, "sleep", lambda s: None)
    up = uploader(tmp_path, objects=Objects(failures=2))
    made(0)
    up.finish()
    assert up.ctx.objects.uploaded == ["job/audio/seg_00000.ts"]
    with pytest.raises(ConnectionError):
        uploader(tmp_path, objects=Objects(failures=9)).finish()


def test_a_segment_without_audio_fails_the_task_at_once(tmp_path, monkeypatch):
    """ffmpeg exits 0 and leaves an empty segment when nothing decodes: NO_DECODABLE_AUDIO,
    not a transient error retried until the dead-letter queue."""
    from chalicelib.domain.errors import PermanentError
    slept = []
    monkeypatch.setattr(checkpoints.time, "sleep", slept.append)
    (tmp_path / "seg_00000.ts").write_bytes(b"")
    with pytest.raises(PermanentError) as err:
        uploader(tmp_path).finish()
    assert err.value.code == "NO_DECODABLE_AUDIO" and slept == []

