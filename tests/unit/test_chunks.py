"""Chunk planning and the presentation built from chunk checkpoints (pure domain, no I/O)."""
import m3u8
import pytest

from chalicelib.domain import chunks
from chalicelib.domain.errors import PermanentError
from chalicelib.domain.chunks import (audio_niceness, check_video_start, chunk_count, contiguous_prefix, encode_niceness,
                                      first_seconds_for, growth_spans, lead_for, plan_chunks, GROWTH_SPEED)
from chalicelib.domain.ffmpeg_args import segment_of
from chalicelib.domain.presentation import build

LADDER = [{"name": "360p", "width": 640, "height": 360, "video_bitrate": 800_000},
          {"name": "240p", "width": 426, "height": 240, "video_bitrate": 400_000}]


def test_chunks_follow_parallelism_on_the_segment_grid_within_bounds():
    # GIVEN a minute of video and two workers WHEN planned with 30 s chunks THEN two of them
    assert [(c.start, c.end, c.first_segment) for c in plan_chunks(60.0, 2, 6, 30)] == [(0, 30, 0), (30, 60, 5)]
    # AND with the default minimum (60 s) one: a second chunk would cost more than it saves
    assert [(c.start, c.end) for c in plan_chunks(60.0, 2, 6)] == [(0, 60)]
    assert [(c.start, c.end) for c in plan_chunks(150.0, 2, 6)] == [(0, 72), (72, 150)]
    # a 5-minute upload on 8 tasks: 8 chunks of 37.5 s on the 6 s grid
    chunks = plan_chunks(300.0, 8, 6, 30)
    assert all(c.start % 6 == 0 for c in chunks) and chunks[-1].end == 300.0
    assert len(chunks) == 8 and {c.seconds for c in chunks} == {36.0, 42.0}
    # never under the minimum, never over the maximum, one chunk for a short clip
    assert chunk_count(60.0, 100, 30) == 2 and chunk_count(60.0, 100) == 1 and chunk_count(7200.0, 1) == 12
    assert chunk_count(7200.0, 100) == 100
    assert [(c.start, c.end) for c in plan_chunks(5.3, 4, 6)] == [(0, 5.3)]
    assert [(c.start, c.end) for c in plan_chunks(61.0, 2, 6, 30)] == [(0, 30), (30, 61.0)]
    assert [c.name for c in plan_chunks(61.0, 2, 6, 30)] == ["chunk-000", "chunk-001"]
    with pytest.raises(ValueError):
        plan_chunks(0, 2, 6)


def test_contiguous_prefix():
    assert contiguous_prefix({0, 1, 3}, 4) == 2 and contiguous_prefix({1, 2}, 3) == 0 and contiguous_prefix({0, 1}, 2) == 2


def _seg(index, start, frames=180, fps=30.0, size=100_000):
    return {"index": index, "bytes": size, "frames": frames, "start": start + 1.0,
            "last_frame": start + 1.0 + (frames - 1) / fps, "end": start + 1.0 + frames / fps}


def _chunk(index, start, end, status, segments):
    segs = {r["name"]: [_seg(i, t) for i, t in segments] for r in LADDER}
    return {"name": f"chunk-{index:03d}", "kind": "chunk", "index": index, "start": start, "end": end,
            "status": status, "segs": segs, "codecs": {"360p": "avc1.64001e", "240p": "avc1.640015"},
            "quality": {"360p": {"psnr_y": 40.0, "ssim_y": 0.98, "frames": 360}}}


AUDIO = {"name": "audio", "kind": "audio", "status": "complete", "extinf": [6.0, 6.0, 6.0, 6.0, 0.5],
         "codecs": "mp4a.40.2", "channels": 2, "peak_bandwidth": 130_000, "average_bandwidth": 128_000}


def test_an_event_presentation_of_the_prefix_only_grows_then_ends():
    # GIVEN chunk 0 done, chunk 1 running, chunk 2 done
    c0 = _chunk(0, 0, 12, "complete", [(0, 0.0), (1, 6.0)])
    c1 = _chunk(1, 12, 24, "processing", [(2, 12.0)])
    c2 = _chunk(2, 24, 24.5, "complete", [(4, 24.0)])
    c2["segs"] = {r["name"]: [_seg(4, 24.0, frames=15)] for r in LADDER}
    # WHEN built THEN only chunk 0 is shown, as EVENT without ENDLIST, audio cut to it
    early = build(LADDER, [c0, c1, c2, AUDIO], 24.5, was_event=False)
    assert early.chunks == 1 and early.playlist_type == "EVENT" and not early.complete and early.seconds == 12
    media = m3u8.loads(early.files["360p/index.m3u8"])
    assert media.playlist_type == "event" and not media.is_endlist
    assert [s.uri for s in media.segments] == ["seg_00000.ts", "seg_00001.ts"]
    assert len(m3u8.loads(early.files["audio/index.m3u8"]).segments) == 2
    master = m3u8.loads(early.files["master.m3u8"])
    assert [p.uri for p in master.playlists] == ["360p/index.m3u8", "240p/index.m3u8"]
    # nothing without the audio, nothing without chunk 0
    assert build(LADDER, [c0, c1, {**AUDIO, "status": "processing"}], 24.5, False) is None
    assert build(LADDER, [{**c0, "status": "processing"}, c1, c2, AUDIO], 24.5, False) is None
    # WHEN every chunk is done THEN the same lines plus the rest, and ENDLIST; the type stays EVENT
    c1 = _chunk(1, 12, 24, "complete", [(2, 12.0), (3, 18.0)])
    whole = build(LADDER, [c0, c1, c2, AUDIO], 24.5, was_event=True)
    assert whole.complete and whole.playlist_type == "EVENT" and whole.state == (3, True, "EVENT")
    text = whole.files["360p/index.m3u8"]
    assert text.startswith(early.files["360p/index.m3u8"]) and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert len(m3u8.loads(whole.files["audio/index.m3u8"]).segments) == 5
    assert whole.variants["360p"]["psnr_y"] == 40.0 and whole.variants["360p"]["segments"] == 5
    # a job never shown early is plain VOD
    assert build(LADDER, [c0, c1, c2, AUDIO], 24.5, was_event=False).playlist_type == "VOD"


def test_the_audios_first_segments_make_the_first_chunk_playable_before_the_audio_task_ends():
    # GIVEN chunk 0 (0-12 s) done and an audio task still encoding, its segments recorded so far
    c0 = _chunk(0, 0, 12, "complete", [(0, 0.0), (1, 6.0)])
    c1 = _chunk(1, 12, 24, "processing", [(2, 12.0)])
    c2 = _chunk(2, 24, 24.5, "complete", [(4, 24.0)])
    c2["segs"] = {r["name"]: [_seg(4, 24.0, frames=15)] for r in LADDER}
    running = {**AUDIO, "status": "processing", "extinf": [6.0, 6.0], "covered": 12.0}
    # WHEN its segments reach the chunk's end THEN the chunk is published with them
    early = build(LADDER, [c0, c1, c2, running], 24.5, was_event=False)
    assert early.chunks == 1 and early.playlist_type == "EVENT" and not early.complete
    assert [s.duration for s in m3u8.loads(early.files["audio/index.m3u8"]).segments] == [6.0, 6.0]
    # short of it, nothing; and a second audio track that has recorded nothing holds it back too
    assert build(LADDER, [c0, c1, c2, {**running, "extinf": [6.0], "covered": 6.0}], 24.5, False) is None
    assert build(LADDER, [c0, c1, c2, running, {**AUDIO, "name": "audio_1", "status": "processing"}],
                 24.5, False) is None
    # WHEN every chunk is done but the audio is not THEN never the whole presentation: the last
    # chunk waits for the audio's end (only the finished task knows it)
    c1 = _chunk(1, 12, 24, "complete", [(2, 12.0), (3, 18.0)])
    most = build(LADDER, [c0, c1, c2, {**running, "extinf": [6.0] * 4, "covered": 24.0}], 24.5, False)
    assert most.chunks == 2 and not most.complete and most.seconds == 24
    assert len(m3u8.loads(most.files["audio/index.m3u8"]).segments) == 4
    assert m3u8.loads(most.files["360p/index.m3u8"]).segments[-1].uri == "seg_00003.ts"
    assert build(LADDER, [c0, c1, c2, AUDIO], 24.5, was_event=True).complete


def test_a_gap_in_checkpoints_is_refused():
    c0 = _chunk(0, 0, 12, "complete", [(0, 0.0), (1, 6.0)])
    c1 = _chunk(1, 12, 24, "complete", [(3, 18.0)])
    with pytest.raises(ValueError):
        build(LADDER, [c0, c1], 24.0, False)


def test_a_short_first_chunk_then_the_usual_plan():
    """The first chunk is one short first segment (2 s, one GOP, in a 6 s grid); the rest is cut
    as without it, on the grid continued from 2 s, numbering segments on."""
    chunks = plan_chunks(300.0, 2, 6, 60, 600, first_seconds=2)
    assert [(c.start, c.end, c.first_segment) for c in chunks] == [(0.0, 2.0, 0), (2.0, 152.0, 1), (152.0, 300.0, 26)]
    assert [c.index for c in chunks] == [0, 1, 2]
    assert all(segment_of(c.start, 6, lead_for(300.0, 2, 6)) == c.first_segment for c in chunks)
    assert [(c.start, c.end) for c in plan_chunks(60.7, 2, 2, 60, 600, first_seconds=2)] == [(0.0, 2.0), (2.0, 60.7)]
    # a first chunk of whole segments when asked for a segment or more
    assert [(c.start, c.end) for c in plan_chunks(60.7, 2, 6, 60, 600, first_seconds=6)] == [(0.0, 6.0), (6.0, 60.7)]
    # no whole segment after it: one chunk on the plain grid, as before
    assert [(c.start, c.end) for c in plan_chunks(7.9, 2, 6, 60, 600, first_seconds=2)] == [(0.0, 7.9)]
    assert lead_for(7.9, 2, 6) == 0.0 and lead_for(8.0, 2, 6) == 2.0 and lead_for(60, 2, 2) == 0.0
    assert plan_chunks(60.7, 2, 6, 60, 600, first_seconds=0) == plan_chunks(60.7, 2, 6, 60, 600)


def test_the_default_first_chunk_is_half_a_second():
    """``FirstChunkSeconds`` 0.5 (the template's default): a 0.5 s first segment, not rounded up
    to a GOP; the IDR grid follows it (``ffmpeg_args.grid_phase``). Never under 0.5 s."""
    chunks = plan_chunks(60.0, 2, 6, 60, 600, first_seconds=0.5)
    assert [(c.start, c.end, c.first_segment) for c in chunks] == [(0.0, 0.5, 0), (0.5, 60.0, 1)]
    assert lead_for(60.0, 0.5, 6) == 0.5 and lead_for(60.0, 0.1, 6) == 0.5 and lead_for(60.0, 1.25, 6) == 1.25
    assert lead_for(6.4, 0.5, 6) == 0.0  # no whole segment after it
    assert [segment_of(t, 6, 0.5) for t in (0.0, 0.467, 0.5, 6.49, 6.5, 12.5)] == [0, 0, 1, 1, 2, 3]


def test_a_first_chunk_always_holds_a_frame():
    """A picture that starts after the 0.5 s first segment (a late camera, a capture joined
    mid-GOP): the first chunk reaches 0.5 s past its first decodable frame."""
    assert first_seconds_for(0.5, 0.0) == 0.5 and first_seconds_for(0.5, 0.03) == 0.53
    assert first_seconds_for(0.5, 1.0) == 1.5 and first_seconds_for(0.0, 1.0) == 0.0
    assert plan_chunks(60.0, 2, 6, 60, 600, first_seconds=first_seconds_for(0.5, 1.0))[0].end == 1.5


def test_a_picture_a_whole_segment_late_is_refused_with_its_reason():
    check_video_start(5.9, 6)  # within the first segment: kept
    with pytest.raises(PermanentError) as err:
        check_video_start(7.0, 6)
    assert err.value.code == "LATE_VIDEO_START" and "7.00 s" in str(err.value)


def test_the_audio_yields_only_when_later_chunks_follow():
    assert audio_niceness(True) == encode_niceness(1) == 10 and audio_niceness(False) == encode_niceness(0) == 0


def test_chunks_grow_on_tasks_that_would_be_idle():
    """Many tasks: the head of the chunk after the first is cut into chunks of 6, 6, 12, 18 ...
    s, each encoded (at GROWTH_SPEED) before a viewer who started a segment's encoding time
    after the first publication reaches it; the plan's other chunks are unchanged (growth never
    lengthens a chunk); never without a spare task; never over the cost budget."""
    plain = plan_chunks(300.0, 1, 6, 60, 600, first_seconds=0.5)
    for duration, tasks in ((300.0, 10), (192.0, 8), (121.0, 4), (3600.0, 100), (60.0, 10), (7200.0, 100)):
        grown = plan_chunks(duration, tasks, 6, 60, 600, first_seconds=0.5)
        usual = plan_chunks(duration - 0.5, tasks, 6, 60, 600)  # the rest as it was cut before growth
        assert grown[0].end == 0.5 and grown[-1].end == duration and all(b.start == a.end for a, b in zip(grown, grown[1:]))
        assert all(segment_of(c.start, 6, 0.5) == c.first_segment for c in grown)
        assert len(grown) <= tasks + 1
        assert max(c.seconds for c in grown) <= max(c.seconds for c in usual) + 1e-6, (duration, tasks)
    five = plan_chunks(300.0, 10, 6, 60, 600, first_seconds=0.5)
    assert [c.seconds for c in five] == [0.5, 6, 6, 12, 18, 30, 78, 72, 77.5]  # the 72 s chunk's head, cut
    viewer = 6 / GROWTH_SPEED  # starts a segment's encoding time after the first chunk
    assert all(c.seconds / GROWTH_SPEED <= viewer + c.start for c in five[1:5]), "each ready before it is watched"
    assert [(c.start, c.end) for c in plan_chunks(300.0, 2, 6, 60, 600, first_seconds=0.5)] == \
        [(0.0, 0.5), (0.5, 150.5), (150.5, 300.0)]  # no idle task: no growth
    assert len(plain) == 2  # one task: the first chunk and the rest
    assert [c.seconds for c in plan_chunks(60.0, 10, 6, 60, 600, first_seconds=0.5)] == [0.5, 6, 53.5]  # its budget
    assert growth_spans(0.5, 360.5, 0, 3600.0, 6) == []  # ten tasks are all busy with an hour
    assert [b - a for a, b in growth_spans(0.5, 60.5, 40, 3600.0, 6)] == [6, 6, 12, 18]  # a segment left


def test_segments_follow_the_short_first_segment():
    assert [segment_of(t, 6, 2.0) for t in (0.0, 1.98, 2.0, 4.0, 6.0, 7.99, 8.0, 14.0)] == [0, 0, 1, 1, 1, 1, 2, 3]
    assert [segment_of(t, 6) for t in (0.0, 5.99, 6.0)] == [0, 0, 1]


def test_watchable_is_when_no_later_publication_catches_the_viewer():
    from chalicelib.domain.presentation import watchable_from
    pubs = [{"seconds": 6.0, "at": "2026-12-02T10:00:05.000Z"},    # playable at 5 s
            {"seconds": 150.0, "at": "2026-12-02T10:01:30.000Z"},  # needed at T + 6
            {"seconds": 300.0, "at": "2026-12-02T10:02:00.000Z"}]  # needed at T + 150
    # T = max(5, 90 - 6, 120 - 150) s after 10:00:00: playback from 10:01:24 never stalls
    assert watchable_from(pubs, 300.0) == ("2026-12-02T10:01:24.000Z", 79.0)
    assert watchable_from(pubs[:2], 300.0) is None  # not whole yet: the answer can still move
    assert watchable_from(pubs[2:], 300.0) == ("2026-12-02T10:02:00.000Z", 0.0)  # published whole at once


def test_a_later_chunk_yields_the_cpu_to_the_first_one():
    assert chunks.encode_niceness(0) == 0
    assert [chunks.encode_niceness(i) for i in (1, 2, 40)] == [chunks.LATER_CHUNK_NICENESS] * 3
    assert 0 < chunks.LATER_CHUNK_NICENESS <= 19
