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
