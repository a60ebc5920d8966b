"""``vodpipe submit`` options map onto the one settings schema."""
from chalicelib.domain.job_settings import parse
from infra.local.cli.main import main, settings_from_args


def args_of(argv):
    import argparse
    captured = {}

    def grab(args):
        captured["args"] = args
        return 0
    from infra.local.cli import main as cli
    original = cli.cmd_submit
    cli.cmd_submit = grab
    try:
        main(["submit", *argv])
    finally:
        cli.cmd_submit = original
    assert isinstance(captured["args"], argparse.Namespace)
    return captured["args"]


def test_submit_options_make_a_valid_settings_document():
    doc = settings_from_args(args_of(["clip.mp4", "--ladder", "720:3000k,480:1500k", "--mp4", "720p", "--priority",
                                      "high", "--segment-duration", "4", "--prefix", "shows/ep1", "--meta", "title=Ep 1",
                                      "--source-after", "archive", "--audio"]))
    settings = parse(doc)
    assert [r.name for r in settings.ladder] == ["720p", "480p"] and settings.outputs.mp4 == ("720p",)
    assert (settings.priority, settings.segment_duration, settings.output_prefix, settings.source_after) == (
        "high", 4, "shows/ep1", "archive")
    assert settings.metadata == {"title": "Ep 1"} and settings.outputs.audio


def test_no_options_mean_the_defaults():
    assert settings_from_args(args_of(["clip.mp4"])) == {}


def test_caption_options_name_local_files_in_the_ingest_bucket(tmp_path):
    from infra.local.cli.client import caption_uploads
    srt = tmp_path / "ep1.fr.SRT"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nBonjour\n")
    doc = settings_from_args(args_of(["ep1.mp4", "--caption", f"fr={srt}", "--caption",
                                      "en:captions=https://example.com/a/en.vtt?sig=x=y"]))
    uploads = caption_uploads(doc, "ingest-bucket", "shows/ep1.mp4")
    assert uploads == [(srt, "shows/ep1.mp4.0.fr.srt")]
    settings = parse(doc)
    assert [(c.source, c.language, c.kind) for c in settings.captions] == [
        ("s3://ingest-bucket/shows/ep1.mp4.0.fr.srt", "fr", "subtitles"),
        ("https://example.com/a/en.vtt?sig=x=y", "en", "captions")]
    import pytest
    with pytest.raises(ValueError, match="no such caption file"):
        caption_uploads({"captions": [{"source": str(tmp_path / "missing.srt"), "language": "fr"}]}, "b", "k")
    with pytest.raises(ValueError, match="LANG"):
        settings_from_args(args_of(["ep1.mp4", "--caption", "ep1.fr.srt"]))
