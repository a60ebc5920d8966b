"""Real-world variants of the corpus clips, made with ffmpeg inside the tests (docs/pictures.md):
HLG and PQ (HDR10) versions of an SDR clip, interlaced 1080i25 from a 1080p50 clip (flagged,
and combed but flagged progressive), full range, 10-bit, 120 fps, and a Dolby Vision profile 5
record. Each function writes into ``folder`` and returns the path.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy

from tests.conftest import media

#: SDR BT.709 -> linear light -> BT.2020 primaries; the HDR transfer is appended.
TO_BT2020_LINEAR = "zscale=tin=smpte170m:pin=smpte170m:min=smpte170m:t=linear:npl=100,format=gbrpf32le,zscale=p=bt2020"


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; raise with its stderr on failure."""
    done = subprocess.run(["ffmpeg", "-v", "error", "-y", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


#: The PQ variant's HDR10 metadata: MaxCLL (cd/m²), and a 4000 cd/m² mastering display.
PQ_MAX_CLL = 4000


def hdr(folder: Path, transfer: str, seconds: float = 2.0, source: str = "flower.mp4") -> Path:
    """An HEVC Main10 BT.2020 clip with ``transfer`` ``arib-std-b67`` (HLG) or ``smpte2084`` (PQ,
    with HDR10 mastering display and MaxCLL ``PQ_MAX_CLL`` / MaxFALL 400 SEI) made from an SDR
    clip."""
    pq = transfer == "smpte2084"
    params = (f"colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc:range=limited:log-level=error"
              + (":hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
                 f"L({PQ_MAX_CLL * 10000},50):max-cll={PQ_MAX_CLL},400" if pq else ""))
    out = folder / f"{'pq' if pq else 'hlg'}.mp4"
    ffmpeg("-i", str(media(source)), "-t", f"{seconds:g}", "-an",
           "-vf", f"{TO_BT2020_LINEAR},zscale=t={transfer}:m=bt2020nc:r=limited{':npl=203' if pq else ''},format=yuv420p10le",
           "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", params, "-tag:v", "hvc1",
           "-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc", str(out))
    return out


def interlaced(folder: Path, flagged: bool = True, seconds: float = 1.0, height: int = 1080) -> Path:
    """``height``i25 top field first from the corpus's 1080p50 clip (scaled first; two
    progressive frames woven into one interlaced frame; looped when ``seconds`` is more than its
    2 s), H.264 with interlaced coding and ``field_order=tt`` when ``flagged``, else coded
    progressive (combed pictures, a wrong flag)."""
    out = folder / f"interlaced{height}{'' if flagged else '-unflagged'}-{seconds:g}s.mp4"
    coding = ["-flags", "+ildct+ilme", "-x264-params", "tff=1"] if flagged else []
    scale = f"scale=-2:{height}," if height != 1080 else ""
    ffmpeg("-stream_loop", "-1", "-i", str(media("sowt-with-video.mov")), "-t", f"{seconds:g}",
           "-vf", f"{scale}interlace=scan=tff:lowpass=0",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", *coding, "-c:a", "aac", str(out))
    return out


def telecined(folder: Path) -> Path:
    """flower.mp4 as 23.976 fps film, 3:2 pulldown to 29.97i top field first (``telecine``),
    coded progressive: 2 frames in 5 combed, a cadence the container does not announce."""
    out = folder / "telecined.mp4"
    ffmpeg("-i", str(media("flower.mp4")), "-t", "3", "-an", "-vf", "fps=24000/1001,telecine=first_field=top:pattern=23",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", str(out))
    return out


def full_range(folder: Path, pix_fmt: str = "yuvj420p") -> Path:
    """flower.mp4 re-encoded as full-range H.264: ``yuvj420p`` (the JPEG-range pixel format), or
    ``yuv420p`` with ``color_range=pc`` (the range only in the tags and the VUI)."""
    out = folder / f"full-range-{pix_fmt}.mp4"
    ffmpeg("-i", str(media("flower.mp4")), "-t", "1", "-an",
           "-vf", f"scale=out_range=pc:out_color_matrix=bt709,format={pix_fmt}",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "12",
           "-color_range", "pc", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", str(out))
    return out


def ten_bit_ramp(folder: Path, width: int = 1280, height: int = 720, frames: int = 10) -> Path:
    """A 10-bit SDR BT.709 clip of a slow horizontal luma ramp spanning 64 10-bit codes across
    the width (16 8-bit codes: truncation makes flat bands 80 pixels wide), lossless FFV1."""
    out = folder / "ramp10.mkv"
    luma = (448 + numpy.arange(width) * 64 // width).astype(numpy.uint16)
    plane = numpy.tile(luma, (height, 1))
    container = av.open(str(out), "w")
    stream = container.add_stream("ffv1", rate=25)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
    chroma = numpy.full((height // 2, width // 2), 512, numpy.uint16)
    for _ in range(frames):
        frame = av.VideoFrame(width, height, "yuv420p10le")
        for index, data in enumerate((plane, chroma, chroma)):
            line = frame.planes[index].line_size // 2
            buffer = numpy.zeros((data.shape[0], line), numpy.uint16)
            buffer[:, : data.shape[1]] = data
            frame.planes[index].update(buffer.tobytes())
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return out


def high_rate(folder: Path, seconds: float = 1.0) -> Path:
    """A 119.88 frames/s clip of ``seconds`` where every frame differs: flower.mp4 (29.97 fps)
    played four times as fast (looped as needed), a slow-motion capture's timing. (FFmpeg's
    synthetic ``testsrc2`` is no good here: its patterns fool ``idet`` into 16 of 16 frames TFF.)"""
    out = folder / f"fps120-{seconds:g}s.mp4"
    ffmpeg("-stream_loop", "-1", "-i", str(media("flower.mp4")), "-t", f"{seconds:g}", "-an", "-vf", "setpts=PTS/4",
           "-r", "120000/1001", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", str(out))
    return out


def dolby_vision_profile_5(folder: Path) -> Path:
    """``dolbyVision-hdr.MOV`` with its Dolby Vision configuration record rewritten to profile 5
    (compatibility id 0: no base layer a standard decoder shows), the record a profile 5 file
    carries (Dolby Vision streams within ISO BMFF: ``dvvC``/``dvcC`` box)."""
    data = bytearray(media("dolbyVision-hdr.MOV").read_bytes())
    for box in (b"dvcC", b"dvvC", b"dvwC"):
        at = data.find(box)
        if at >= 0:
            body = at + 4
            level = ((data[body + 2] & 0x01) << 5) | (data[body + 3] >> 3)
            flags = data[body + 3] & 0x07
            data[body + 2] = (5 << 1) | (level >> 5)
            data[body + 3] = ((level & 0x1F) << 3) | flags
            data[body + 4] = 0  # compatibility id 0
            break
    else:
        raise AssertionError("no Dolby Vision configuration box")
    out = folder / "dv-profile5.mov"
    out.write_bytes(bytes(data))
    return out


def two_languages(folder: Path) -> Path:
    """flower.mp4's picture with two audio tracks told apart by their pitch: English, 440 Hz,
    the default; Spanish, 880 Hz, marked as describing the video (audio description)."""
    out = folder / "two-languages.mp4"
    ffmpeg("-i", str(media("flower.mp4")), "-f", "lavfi", "-i", "sine=frequency=440:duration=5:sample_rate=48000",
           "-f", "lavfi", "-i", "sine=frequency=880:duration=5:sample_rate=48000", "-map", "0:v", "-map", "1:a",
           "-map", "2:a", "-c:v", "copy", "-c:a", "aac", "-ac", "2", "-metadata:s:a:0", "language=eng",
           "-metadata:s:a:1", "language=spa", "-disposition:a:0", "default",
           "-disposition:a:1", "visual_impaired", "-shortest", str(out))
    return out


def at_loudness(folder: Path, gain_db: float) -> Path:
    """Big Buck Bunny's soundtrack, downmixed to stereo, with ``gain_db`` of gain (a limiter
    keeps a loud one under 0 dBFS), over its picture."""
    out = folder / f"loudness{gain_db:+g}.mp4"
    limiter = ",alimiter=limit=0.95:level=false" if gain_db > 0 else ""
    ffmpeg("-i", str(media("bigbuckbunny.mp4")), "-c:v", "copy", "-af", f"volume={gain_db:g}dB{limiter}",
           "-ac", "2", "-c:a", "aac", "-b:a", "256k", str(out))
    return out


def long_sound(folder: Path, seconds: float = 60.0) -> Path:
    """``seconds`` of Big Buck Bunny's 5.1 soundtrack (looped, stream copy) under flower's first
    2 s scaled to 426x240 (looped): an upload whose audio costs far more than its picture."""
    picture = folder / "picture-240p.mp4"
    ffmpeg("-i", str(media("flower.mp4")), "-t", "2", "-an", "-vf", "scale=426:240", "-c:v", "libx264",
           "-preset", "ultrafast", str(picture))
    out = folder / f"long-sound-{seconds:g}s.mp4"
    loops = str(int(seconds // 2) + 1)
    ffmpeg("-stream_loop", loops, "-i", str(picture), "-stream_loop", loops, "-i", str(media("bigbuckbunny.mp4")),
           "-map", "0:v", "-map", "1:a", "-c", "copy", "-t", f"{seconds:g}", str(out))
    return out


def late_picture(folder: Path, source: Path, delay: float) -> Path:
    """``source`` with its picture ``delay`` seconds after its sound (stream copy, MPEG-TS so
    the delay is in the packets' timestamps): a camera or capture whose video starts late."""
    out = folder / f"{source.stem}-picture-{delay:g}s-late.ts"
    ffmpeg("-itsoffset", f"{delay:g}", "-i", str(source), "-i", str(source), "-map", "0:v", "-map", "1:a",
           "-c", "copy", str(out))
    return out


def measured_loudness(path: Path) -> dict[str, float]:
    """Integrated loudness (LUFS), loudness range (LU) and true peak (dBTP) of ``path``'s audio,
    from FFmpeg's ``ebur128`` (ITU-R BS.1770-4 / EBU R128)."""
    import re
    done = subprocess.run(["ffmpeg", "-nostats", "-i", str(path), "-map", "0:a:0", "-af",
                           "ebur128=peak=true:framelog=verbose", "-f", "null", "-"], capture_output=True, text=True)
    summary = done.stderr[done.stderr.rindex("Summary:"):]
    return {"integrated": float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
            "range": float(re.search(r"LRA:\s+(-?[\d.]+) LU", summary).group(1)),
            "true_peak": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))}


def dominant_frequency(path: Path) -> float:
    """The strongest frequency (Hz) of the first 2 s of ``path``'s audio (mono, 48 kHz)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-t", "2", "-ac", "1", "-ar",
                          "48000", "-f", "f32le", "-"], capture_output=True, check=True).stdout
    samples = numpy.frombuffer(raw, numpy.float32)
    spectrum = numpy.abs(numpy.fft.rfft(samples))
    return float(numpy.argmax(spectrum) * 48000 / len(samples))


#: Three cues in French over flower.mp4's 5 s; the second spans the 2 s and 4 s segment
#: boundaries of a 2 s grid, the third has styling (WebVTT keeps <i>).
FRENCH_SRT = """1
00:00:00,500 --> 00:00:01,800
Bonjour, la fleur.

2
00:00:01,900 --> 00:00:04,200
Elle s'ouvre
lentement.

3
00:00:04,300 --> 00:00:04,900
<i>Fin.</i>
"""


def with_subtitles(folder: Path, srt: str = FRENCH_SRT, language: str = "fre", codec: str = "mov_text",
                   forced: bool = False, name: str = "") -> Path:
    """flower.mp4 (5 s) with one embedded text subtitle track made from ``srt`` (``mov_text`` in
    MP4, or ``subrip``/``ass`` in Matroska), tagged ``language``; cues past 5 s are cut (a cue
    only there leaves the track empty)."""
    source = folder / f"subtitles-{language}{name}.srt"
    source.write_text(srt, encoding="utf-8")
    out = folder / f"with-subtitles-{language}{name}-{codec}.{'mp4' if codec == 'mov_text' else 'mkv'}"
    ffmpeg("-i", str(media("flower.mp4")), "-i", str(source), "-map", "0:v", "-map", "0:a", "-map", "1:s",
           "-c:v", "copy", "-c:a", "copy", "-c:s", codec, "-metadata:s:s:0", f"language={language}",
           "-disposition:s:0", "forced" if forced else "0", "-t", "5", str(out))
    return out


def subtitle_cues(path: Path) -> list[tuple[float, float, str]]:
    """(start s, end s, text) of every cue FFmpeg reads from the subtitle file or the first
    subtitle stream at ``path`` (converted to SubRip by FFmpeg, not by the code under test),
    in order; tags such as ``<i>`` are kept as FFmpeg writes them."""
    import re
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:s:0", "-c:s", "srt", "-f", "srt", "-"],
                          capture_output=True, text=True, timeout=60, check=True)
    cues = []
    for block in re.split(r"\n\s*\n", done.stdout.strip()):
        lines = block.strip().splitlines()
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        start, end = (sum(float(part) * 60 ** (2 - i) for i, part in enumerate(stamp.strip().replace(",", ".").split(":")))
                      for stamp in lines[timing].split("-->"))
        cues.append((round(start, 3), round(end, 3), "\n".join(lines[timing + 1:])))
    return cues
