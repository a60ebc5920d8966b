"""Rate control report: capped CRF (the default) against one-pass ABR (the previous default) on
the test corpus, per rendition: bytes, and the encoder's own PSNR (Y, dB) and SSIM (Y).

    python -m infra.local.drills.ratecontrol [CLIP ...]

Without CLIP it uses every decodable clip of the shared test media (``VODPIPE_MEDIA_DIR``, else
``shared/media`` beside the checkout; its MANIFEST.tsv) plus the
benchmark's 60 s 1080p clip. Each clip is encoded once per mode with the chunk recipe
(``chunk_args``, one chunk, the default ladder), in the same run, on this machine. Not a test:
it prints the table the README quotes.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

from chalicelib.config import ClientSettings
from chalicelib.domain import ffmpeg_args
from chalicelib.domain.ladder import plan
from chalicelib.domain.media import parse_probe
from chalicelib.tools import ffmpeg

#: The test media: ``VODPIPE_MEDIA_DIR``, else the shared media folder beside the checkout.
MEDIA = Path(ClientSettings.from_env().media_dir or Path(__file__).resolve().parents[4] / "shared" / "media")


def corpus() -> list[Path]:
    """The corpus clips whose decode check passed (MANIFEST.tsv ``decode_check`` without errors)."""
    with open(MEDIA / "MANIFEST.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [MEDIA / r["file"] for r in rows if r["decode_check"].endswith("errors=0") and not r["file"].startswith("broken")]


def encode(path: Path, rate_control: str) -> dict[str, dict]:
    """``{rendition: {"bytes", "psnr_y", "ssim_y", "bitrate" (bit/s)}}`` of one mode."""
    info = parse_probe(ffmpeg.probe(str(path)))
    ladder = plan(info).videos
    out = Path(tempfile.mkdtemp(prefix="vodpipe-rc-"))
    try:
        for r in ladder:
            (out / r.name).mkdir()
        args = ffmpeg_args.chunk_args(str(path), str(out), ladder, 0.0, info.duration, True, rate_control=rate_control,
                            quality_metrics=("psnr", "ssim"), frame_rate=info.frame_rate or 30.0)
        res = ffmpeg.FfmpegProcess().run(args, info.duration, measure_quality=True)
        ffmpeg.check(res, f"{rate_control} {path.name}")
        result = {}
        for r, quality in zip(ladder, res.encoder_quality):
            size = sum(f.stat().st_size for f in (out / r.name).glob("*.ts"))
            result[r.name] = {"bytes": size, "bitrate": int(size * 8 / max(info.duration, 1e-3)), **quality}
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="*")
    args = ap.parse_args(argv)
    clips = [Path(c) for c in args.clips] or corpus()
    if not args.clips:
        from infra.local.drills.bench import make_default_input
        clips.append(make_default_input())
    totals = {"abr": [0, 0.0, 0.0, 0], "crf": [0, 0.0, 0.0, 0]}
    print(f"{'clip':44}{'rendition':>10}{'ABR bytes':>12}{'CRF bytes':>12}{'bytes x':>8}"
          f"{'ABR dB':>8}{'CRF dB':>8}{'ABR SSIM':>10}{'CRF SSIM':>10}")
    for clip in clips:
        abr, crf = encode(clip, "abr"), encode(clip, "crf")
        for name in abr:
            a, c = abr[name], crf[name]
            print(f"{clip.name[:43]:44}{name:>10}{a['bytes']:>12}{c['bytes']:>12}{c['bytes'] / max(a['bytes'], 1):8.2f}"
                  f"{a.get('psnr_y', 0):8.2f}{c.get('psnr_y', 0):8.2f}{a.get('ssim_y', 0):10.4f}{c.get('ssim_y', 0):10.4f}")
            for mode, m in (("abr", a), ("crf", c)):
                totals[mode][0] += m["bytes"]
                totals[mode][1] += m.get("psnr_y", 0)
                totals[mode][2] += m.get("ssim_y", 0)
                totals[mode][3] += 1
    a, c = totals["abr"], totals["crf"]
    print(f"\nall renditions ({a[3]}): bytes CRF/ABR {c[0] / max(a[0], 1):.2f} ({c[0]} / {a[0]}); "
          f"mean Y-PSNR ABR {a[1] / max(a[3], 1):.2f} dB, CRF {c[1] / max(c[3], 1):.2f} dB; "
          f"mean SSIM ABR {a[2] / max(a[3], 1):.4f}, CRF {c[2] / max(c[3], 1):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
