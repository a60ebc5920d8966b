"""The work a job asks for, estimated at ingest from the probe and the plan, before any task
exists, and the deployment's bound on it (``TOO_MUCH_WORK``). Pure.

Why: a few megabytes can describe hours of 8K 60 fps black frames. The file's size says
nothing about the work; the picture size, frame rate and duration do, so the estimate is built
from them:

* ``output_pixels``: sum over the video renditions of width x height x frames (frames =
  duration x the rendition's frame rate: the source's, capped by ``max_frame_rate``);
* ``frames``: the frames encoded, summed over the renditions;
* ``decoded_pixels``: the source's coded width x height x its own frames (every chunk decodes
  its span once, at the source's full size and rate, whatever the ladder keeps);
* ``audio_seconds``: the duration times the number of audio renditions;
* ``converted_pixels``: the pixels the picture conversions compute in floating point (tone
  mapping, gamut conversion, dithering: ``conversions.PicturePlan``), at the top rendition's
  size and output rate; deinterlacing's extra frames are already in ``output_pixels``.

``vcpu_seconds`` weighs them with rates measured on the 2-core development machine (Debian's
ffmpeg 5.1, x264 ``veryfast``; one CPU-second there is taken as one Fargate vCPU-second, as
the README's cost figures do):

* ``DECODE_VCPU_S_PER_PIXEL``: decoding the bench's 1080p30 H.264 clip (CRF 18, the one
  ``make bench`` builds; 30 s of it here): 9.25 CPU-s for 30 s (median of 3) = 0.308 CPU-s per
  media second / (1920 x 1080 x 30 pixels/s) = 4.96e-9 CPU-s per decoded pixel;
* ``AUDIO_VCPU_S_PER_SECOND``: decoding its AAC and encoding the 128 kbit/s stereo rendition:
  1.26 CPU-s for 30 s = 0.042 CPU-s per media second;
* ``ENCODE_VCPU_S_PER_PIXEL``: the rest of the README's bench figure, 1.96 CPU-s per media
  second for the whole 5-rung 1080p30 ladder (pipeline, 1 worker, 5-minute clip: ffmpeg,
  audio, poster, sprites and orchestration), once decode and audio are taken out, over the
  ladder's 3,737,760 output pixels per frame x 30 fps: (1.96 - 0.308 - 0.042) / 112,132,800
  = 1.436e-8 vCPU-s per output pixel (scaling, x264 and everything per output picture).

* ``CONVERT_VCPU_S_PER_PIXEL``: ``make bench-pictures`` (``infra/local/drills/pictures.py``):
  the reference ladder on the bench's 60 s clip as HLG took 231.0 CPU-s with tone mapping and
  161.2 without: 69.8 CPU-s / (1920 x 1080 x 1800 frames) = 1.87e-8 CPU-s per converted pixel,
  more than the whole 5-rung encode of that frame (0.054 CPU-s).

Check: a minute of 1080p30 with audio estimates 117.6 vCPU-s (the README measured 118).
``usd`` is ``vcpu_seconds`` at Fargate's us-east-1 on-demand ``FARGATE_USD_PER_VCPU_HOUR``
(memory, S3 and requests extra). What the estimate leaves out: each chunk's preroll and
lookahead tail (about 1 s of media per chunk), thumbnails beyond the bench's, and how much
cheaper simple pictures encode (a black frame costs far less than the rate says: the bound
is on what the file *asks for*).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from .errors import PermanentError
from .ladder import VideoRendition
from .media import MediaInfo

#: vCPU-seconds per pixel the encoders produce (all renditions; see the module docstring)
ENCODE_VCPU_S_PER_PIXEL = 1.436e-8
#: vCPU-seconds per source pixel decoded
DECODE_VCPU_S_PER_PIXEL = 4.96e-9
#: vCPU-seconds per pixel of the picture conversions in floating point (tone mapping)
CONVERT_VCPU_S_PER_PIXEL = 1.87e-8
#: vCPU-seconds per second of audio encoded
AUDIO_VCPU_S_PER_SECOND = 0.042
#: Fargate, us-east-1, on demand, per vCPU-hour (USD; memory is billed apart)
FARGATE_USD_PER_VCPU_HOUR = 0.04048
#: The default of ``MaxJobVcpuSeconds`` (vCPU-s): 27.8 vCPU-hours, $1.12 of Fargate vCPU.
#: It passes every 1080p60 upload the duration limit allows (6 h: 83,800 vCPU-s; 2 h:
#: 27,900), 4K60 up to about 4.9 h (2 h: 41,000), and refuses 8K 60 fps past about 2.1 h
#: (6 h: 282,800). With ``max_resolution`` 2160p (7 rungs, 15.7 M output pixels a frame) a
#: minute of 4K30 estimates 483 vCPU-s and of 4K60 963: passed up to about 3.4 h and 1.7 h.
DEFAULT_MAX_JOB_VCPU_SECONDS = 100_000.0


@dataclass(frozen=True)
class WorkEstimate:
    """What a job asks for (see the module docstring): pixels and frames are counts,
    ``audio_seconds`` and ``vcpu_seconds`` seconds, ``usd`` US dollars."""

    output_pixels: int
    frames: int
    decoded_pixels: int
    audio_seconds: float
    vcpu_seconds: float
    usd: float
    converted_pixels: int = 0

    def to_dict(self) -> dict:
        """Plain dict for the job item and resource (``work``)."""
        return asdict(self)


def estimate(info: MediaInfo, videos: Iterable[VideoRendition], has_audio: bool | int, max_frame_rate: float = 60.0,
             converted: tuple[int, int] | None = None) -> WorkEstimate:
    """The work of encoding ``info`` to the planned ``videos`` and ``has_audio`` audio
    renditions (a count; True is one); ``converted``: the (width, height) pixels at which the picture conversions
    run in floating point (``conversions.PicturePlan.size`` when it tone maps or converts), at
    the first (top) rendition's rate. A source whose frame rate is unknown (0) counts at
    ``max_frame_rate``, the most the encoders would keep."""
    duration = max(0.0, float(info.duration))
    source_fps = info.frame_rate if info.frame_rate > 0 else max_frame_rate
    output_pixels = frames = converted_pixels = 0
    for index, r in enumerate(videos):
        fps = r.frame_rate or min(source_fps, max_frame_rate)
        n = round(duration * fps)
        frames += n
        output_pixels += r.width * r.height * n
        if index == 0 and converted:
            converted_pixels = converted[0] * converted[1] * n
    decoded_pixels = info.width * info.height * round(duration * source_fps)
    audio_seconds = duration * int(has_audio)
    vcpu = (output_pixels * ENCODE_VCPU_S_PER_PIXEL + decoded_pixels * DECODE_VCPU_S_PER_PIXEL
            + audio_seconds * AUDIO_VCPU_S_PER_SECOND + converted_pixels * CONVERT_VCPU_S_PER_PIXEL)
    return WorkEstimate(output_pixels=output_pixels, frames=frames, decoded_pixels=decoded_pixels,
                        audio_seconds=round(audio_seconds, 3), vcpu_seconds=round(vcpu, 1),
                        usd=round(vcpu / 3600 * FARGATE_USD_PER_VCPU_HOUR, 6), converted_pixels=converted_pixels)


def check_work(work: WorkEstimate, limit_vcpu_seconds: float) -> None:
    """Refuse a job whose estimate is above the deployment's ``limit_vcpu_seconds``
    (``MaxJobVcpuSeconds``). Raises ``PermanentError`` ``TOO_MUCH_WORK`` with the numbers."""
    if work.vcpu_seconds <= limit_vcpu_seconds:
        return
    raise PermanentError("TOO_MUCH_WORK", (
        f"the job would need about {_amount(work.vcpu_seconds)} vCPU-seconds (${work.usd:,.{2 if work.usd >= 1 else 4}f} "
        f"of Fargate vCPU): {work.output_pixels:.3g} output pixels in {work.frames:,} frames, "
        f"{work.decoded_pixels:.3g} decoded pixels, {_amount(work.audio_seconds)} s of audio; this deployment's limit "
        f"is {_amount(limit_vcpu_seconds)} vCPU-seconds a job (MaxJobVcpuSeconds)"))


def _amount(value: float) -> str:
    """``value`` with thousands separators, one decimal below 100 (``282,833``, ``3.3``)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.{0 if value == int(value) else 1}f}"
