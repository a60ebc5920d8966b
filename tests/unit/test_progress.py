from chalicelib.domain.progress import ProgressParser, Throttle, job_progress


def feed(parser, text):
    return [p for p in (parser.feed(line) for line in text.strip().splitlines()) if p is not None]


def test_parser_reports_percent_per_block_and_100_at_end():
    p = ProgressParser(duration=10.0)
    out = feed(p, """
frame=10
out_time_us=2500000
speed=2.5x
progress=continue
out_time_us=N/A
progress=continue
out_time_us=1000000
progress=continue
out_time_us=9999000
progress=end
""")
    assert out == [25.0, 25.0, 25.0, 100.0]  # N/A ignored, never backwards
    assert p.speed == 2.5 and p.finished


def test_parser_caps_below_100_until_end():
    p = ProgressParser(duration=1.0)
    assert feed(p, "out_time_us=5000000\nprogress=continue") == [99.9]


def test_throttle_writes_every_10_points_or_5_seconds():
    t = Throttle(min_step=10, min_interval=5)
    assert t.should_write(1, now=0)       # first value
    assert not t.should_write(5, now=1)   # small step, little time
    assert t.should_write(11.5, now=2)    # >= 10 points
    assert not t.should_write(12, now=3)
    assert t.should_write(13, now=7.6)    # >= 5 s since last write
    assert not t.should_write(12, now=20) # never backwards
    assert t.should_write(100, now=20.1)  # the end always


def test_job_progress_weights_renditions_by_pixels():
    tasks = [{"kind": "video", "width": 1920, "height": 1080, "progress": 50, "status": "processing"},
             {"kind": "video", "width": 640, "height": 360, "status": "complete"},
             {"kind": "audio", "progress": 0, "status": "queued"}]
    p = job_progress(tasks)
    # 1080p dominates: half done there and the 360p complete -> a bit over 50 %
    assert 50 < p < 60
    assert job_progress([]) == 0.0
