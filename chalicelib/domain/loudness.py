"""Loudness normalization in two passes with FFmpeg's ``loudnorm`` (EBU R128 / ITU-R BS.1770-4):
measure the track (integrated loudness LUFS, loudness range LU, true peak dBTP, gating
threshold), then normalize with those measurements, linearly (one gain: the dynamics kept)
when the target allows it, else loudnorm's dynamic mode (a gain that follows the programme with
a true-peak limiter). Pure: argument and filter text, and the parsing of loudnorm's JSON report.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import PermanentError

#: loudnorm's loudness range target bounds (LU, FFmpeg 5.1). The target is the measured range
#: (so a linear gain is possible) within these bounds.
LRA_BOUNDS = (1.0, 20.0)
#: loudnorm works at 192 kHz internally; its output is brought back to the rendition's rate.
_REPORT = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.DOTALL)


@dataclass(frozen=True)
class Loudness:
    """A measurement: ``integrated`` LUFS, ``range`` LU, ``true_peak`` dBTP, ``threshold``
    LUFS (the relative gate), ``offset`` LU (loudnorm's ``target_offset``)."""

    integrated: float
    range: float
    true_peak: float
    threshold: float
    offset: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """``{"integrated_lufs", "range_lu", "true_peak_dbtp"}`` for the job resource."""
        return {"integrated_lufs": round(self.integrated, 1), "range_lu": round(self.range, 1),
                "true_peak_dbtp": round(self.true_peak, 1)}


def loudnorm(target: float, true_peak: float, measured: Loudness | None = None) -> str:
    """The ``loudnorm`` filter for ``target`` LUFS with the true peak at ``true_peak`` dBTP:
    the measuring pass (``measured`` None: ``print_format=json`` reports what it read) or the
    normalizing pass with the measurements (``linear=true``: loudnorm keeps one gain when the
    measured range fits and the peak allows, else goes dynamic)."""
    lra = min(max(measured.range if measured else 11.0, LRA_BOUNDS[0]), LRA_BOUNDS[1])
    text = f"loudnorm=I={target:g}:TP={true_peak:g}:LRA={lra:g}"
    if measured:
        text += (f":measured_I={measured.integrated:g}:measured_TP={measured.true_peak:g}"
                 f":measured_LRA={measured.range:g}:measured_thresh={measured.threshold:g}"
                 f":offset={measured.offset:g}:linear=true")
    return text + ":print_format=json"


def _number(report: Mapping[str, Any], key: str) -> float:
    value = str(report.get(key, "")).strip()
    if value in ("-inf", "inf", "nan", ""):
        return -99.0 if value == "-inf" else 0.0
    return float(value)


def report_of(stderr: str) -> dict[str, Any]:
    """loudnorm's JSON report from a run's log (the last one). Raises ``PermanentError``
    ``LOUDNESS_UNMEASURABLE`` when there is none."""
    found = _REPORT.findall(stderr)
    if not found:
        raise PermanentError("LOUDNESS_UNMEASURABLE", "the audio's loudness could not be measured")
    return json.loads(found[-1])


def measured(stderr: str) -> Loudness:
    """The input measurement of a loudnorm run's report (``input_i`` ... ``target_offset``).
    Digital silence measures -inf LUFS: reported as -99."""
    report = report_of(stderr)
    return Loudness(_number(report, "input_i"), _number(report, "input_lra"), _number(report, "input_tp"),
                    _number(report, "input_thresh"), _number(report, "target_offset"))


def normalized(stderr: str) -> tuple[Loudness, str]:
    """(the output measurement, ``linear`` or ``dynamic``) of a normalizing run's report."""
    report = report_of(stderr)
    out = Loudness(_number(report, "output_i"), _number(report, "output_lra"), _number(report, "output_tp"),
                   _number(report, "output_thresh"))
    return out, str(report.get("normalization_type") or "dynamic")
