"""What the picture conversions cost: the one-command reference ladder
(``ffmpeg_args.reference_ladder_args``: one decode, every rendition, poster and sprites) on the
bench's 60 s 1080p30 clip as SDR, as HLG (HEVC Main10 BT.2020, made from it) and as 1080i25
(interlaced from it), each with the job's conversions (``conversions.plan_picture``: what the
pipeline runs inside every chunk's decode) and without them (the chain before: scale only).

    python -m infra.local.drills.pictures [--seconds 60] [--repeat 1]

Prints CPU-s and wall s per run and the conversions' overhead against the same source without
them and against the SDR clip. Not a test: measured, not asserted (docs/pictures.md quotes it).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
from pathlib import Path


from infra.local.drills.bench import make_default_input, run_reference
from infra.local.sample import cache_dir


def make_variant(kind: str, seconds: int) -> Path:
    """The bench clip's first ``seconds`` as ``sdr`` (stream copy), ``hlg`` (BT.2020 HLG,
    HEVC Main10, x265 ultrafast) or ``interlaced`` (1080i25 TFF H.264), cached."""
    target = cache_dir() / f"bench_{kind}_{seconds}s.mp4"
    if target.exists():
        return target
    src = str(make_default_input())
    tmp = target.with_suffix(".part.mp4")
    if kind == "sdr":
        video = ["-c", "copy"]
    elif kind == "hlg":
        video = ["-vf", "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv,zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt2020,"
                        "zscale=t=arib-std-b67:m=bt2020nc:r=limited,format=yuv420p10le",
                 "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                 "colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc:log-level=error", "-tag:v", "hvc1",
                 "-c:a", "copy"]
    elif kind == "interlaced":
        video = ["-vf", "fps=50,interlace=scan=tff:lowpass=0", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                 "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-c:a", "copy"]
    else:
        raise ValueError(f"unknown variant {kind!r}")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-t", str(seconds), *video, "-movflags", "+faststart",
                    str(tmp)], check=True)
    tmp.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=1, help="rounds (medians reported)")
    args = parser.parse_args(argv)
    rows = {}
    for kind in ("sdr", "hlg", "interlaced"):
        path = make_variant(kind, args.seconds)
        for converted in (False, True):
            runs = [run_reference(path, None, converted) for _ in range(args.repeat)]
            rows[(kind, converted)] = {"wall": statistics.median(r["wall"] for r in runs),
                                       "cpu": statistics.median(r["cpu"] for r in runs),
                                       "conversions": runs[0]["conversions"]}
            row = rows[(kind, converted)]
            print(f"{kind:10s} {'with' if converted else 'without':7s} conversions: {row['wall']:6.1f} s wall "
                  f"{row['cpu']:7.1f} CPU-s  {'; '.join(row['conversions'])}", flush=True)
    sdr = rows[("sdr", True)]["cpu"]
    print(f"\n== picture conversions, {args.seconds} s of 1080p, reference ladder (5 rungs, poster, sprites) ==")
    for kind in ("hlg", "interlaced"):
        plain, done = rows[(kind, False)]["cpu"], rows[(kind, True)]["cpu"]
        print(f"{kind:10s}: {done:.1f} CPU-s with conversions, {plain:.1f} without (+{100 * (done / plain - 1):.0f} %), "
              f"{done / sdr:.2f}x the SDR clip ({sdr:.1f} CPU-s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
