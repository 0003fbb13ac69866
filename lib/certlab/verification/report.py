"""Chen et al. (2022)'s Table 1 for one model (:class:`CertificationReport`), its headline
numbers as a chapter stores them, and the merge of stored runs that verified consecutive
slices of the test images with the same model.

A chapter evaluates each model with :func:`certlab.verification.grafting.
evaluate_certification` and stores :func:`headline_values` of the reports (``"baseline_va"``,
``"grafting_50_unr"``, ...) and each report's :meth:`CertificationReport.to_record`. A long
run can be split over ``verify_start`` (a sweep point per slice); :func:`merge_slice_values`
turns the stored values of consecutive slices back into the values of one run, which is how
:func:`certlab.records.stored_runs` (``merge_slices=True``) and the book's ``paper-scale``
role show them.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["CertificationReport", "module_digest", "TABLE1_COLUMNS", "headline_key",
           "headline_values", "merge_slice_values", "mean_verification_time"]


@dataclass
class CertificationReport:
    """The Table 1 columns of one model (fractions in [0, 1], times in seconds).

    ``unr``: unstable (non-grafted) neurons over all neurons on the verification images;
    ``va``: verified accuracy on the verification images; ``sa``, ``ra``: standard and PGD
    robust accuracy on the test images; ``mean_time``: mean verification time over the
    verification images that are correctly classified and not broken by PGD (the paper's
    convention; NaN if none); ``statuses``/``stages``/``times``: per verification image
    (stage "misclassified", "attack", "crown" or "verify"); ``unstable_counts``: per
    activation layer, on how many verification images each neuron is unstable (Figure 3).
    """

    unr: float
    va: float
    sa: float
    ra: float
    mean_time: float
    statuses: list[str]
    stages: list[str]
    times: list[float]
    unstable_counts: list[torch.Tensor]
    verify_start: int = 0

    def to_record(self, model_digest: str) -> dict:
        """The per-image results as JSON-able values, for a stored run to be merged later
        with runs that verified other images of the same model (:meth:`merge`).
        ``model_digest``: :func:`module_digest` of the evaluated model."""
        if not isinstance(model_digest, str) or not model_digest:
            raise ValueError(f"model_digest must be a non-empty string, got {model_digest!r}")
        return {"model_digest": model_digest, "verify_start": int(self.verify_start),
                "unr": float(self.unr), "sa": float(self.sa), "ra": float(self.ra),
                "statuses": list(self.statuses), "stages": list(self.stages),
                "times": [float(t) for t in self.times]}

    @classmethod
    def merge(cls, records: Sequence[dict]) -> "CertificationReport":
        """One report from the :meth:`to_record` s of runs that verified consecutive slices
        of the test images with the same model (pieces of one long run, e.g. a sweep over
        ``verify_start``): VA, UNR and the mean time over all their verification images, as
        one run over the union would give (up to how the batched CROWN time is shared).

        Refuses (``ValueError``) pieces of different models (``model_digest``, SA, RA) and
        slices that overlap or leave a gap. ``unstable_counts`` is empty (not stored).
        """
        if not records:
            raise ValueError("merge needs at least one record")
        keys = ("model_digest", "verify_start", "unr", "sa", "ra", "statuses", "stages",
                "times")
        for rec in records:
            missing = [k for k in keys if k not in rec]
            if missing:
                raise ValueError(f"not a CertificationReport record: missing {missing}")
            if not len(rec["statuses"]) == len(rec["stages"]) == len(rec["times"]) >= 1:
                raise ValueError("a record's statuses, stages and times must have one entry "
                                 "per verification image (at least one)")
        pieces = sorted(records, key=lambda r: r["verify_start"])
        for key in ("model_digest", "sa", "ra"):
            if len({rec[key] for rec in pieces}) > 1:
                raise ValueError(f"the pieces disagree on {key} "
                                 f"({sorted({rec[key] for rec in pieces})}): they evaluated "
                                 "different models or test sets and cannot be merged")
        for before, after in zip(pieces, pieces[1:]):
            end = before["verify_start"] + len(before["statuses"])
            if after["verify_start"] != end:
                raise ValueError(f"the pieces' verification images are not consecutive: one "
                                 f"ends at image {end}, the next starts at "
                                 f"{after['verify_start']}")
        counts = [len(rec["statuses"]) for rec in pieces]
        statuses = [s for rec in pieces for s in rec["statuses"]]
        stages = [s for rec in pieces for s in rec["stages"]]
        times = [float(t) for rec in pieces for t in rec["times"]]
        return cls(unr=float(np.dot([rec["unr"] for rec in pieces], counts) / sum(counts)),
                   va=statuses.count("verified") / len(statuses), sa=pieces[0]["sa"],
                   ra=pieces[0]["ra"], mean_time=mean_verification_time(times, stages),
                   statuses=statuses, stages=stages, times=times, unstable_counts=[],
                   verify_start=int(pieces[0]["verify_start"]))


def mean_verification_time(times: Sequence[float], stages: Sequence[str]) -> float:
    """Mean time over the images that reached a verifier (stage "crown" or "verify"; the
    paper excludes misclassified and attacked images); NaN if none."""
    timed = [t for t, s in zip(times, stages) if s in ("crown", "verify")]
    return float(np.mean(timed)) if timed else float("nan")


def module_digest(model: nn.Module) -> str:
    """A short SHA-256 of a model's parameters and buffers (names, shapes, dtypes, bytes): two
    runs hold the same trained model exactly when their digests agree."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()[:16]


#: Table 1's columns: short name -> (heading, the value of a report in the book's units).
TABLE1_COLUMNS: dict[str, tuple[str, Callable[[CertificationReport], float]]] = {
    "unr": ("UNR (%)", lambda report: 100 * report.unr),
    "va": ("VA (%)", lambda report: 100 * report.va),
    "sa": ("SA (%)", lambda report: 100 * report.sa),
    "ra": ("RA (%)", lambda report: 100 * report.ra),
    "time": ("time (s)", lambda report: report.mean_time),
}


def headline_key(model: str, column: str) -> str:
    """The stored name of one Table 1 number: ``("grafting 50%", "va")`` ->
    ``"grafting_50_va"``. ``column`` is a key of :data:`TABLE1_COLUMNS`."""
    if column not in TABLE1_COLUMNS:
        raise ValueError(f"unknown Table 1 column {column!r}; one of "
                         f"{', '.join(TABLE1_COLUMNS)}")
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a non-empty name, got {model!r}")
    return f"{model.replace('%', '').replace(' ', '_')}_{column}"


def headline_values(reports: Mapping[str, CertificationReport]) -> dict[str, float]:
    """Every finite Table 1 number of ``reports`` (model name -> report) under
    :func:`headline_key` (percentages and seconds, as :data:`TABLE1_COLUMNS` gives them); a
    mean time that is NaN (no image reached a verifier) is left out."""
    values = {}
    for model, report in reports.items():
        if not isinstance(report, CertificationReport):
            raise TypeError(f"reports[{model!r}] must be a CertificationReport, got "
                            f"{type(report).__name__}")
        for column, (_, get) in TABLE1_COLUMNS.items():
            value = float(get(report))
            if math.isfinite(value):
                values[headline_key(model, column)] = value
    return values


def merge_slice_values(pieces: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The ``values`` of one run from the stored ``values`` of runs that verified consecutive
    slices of the test images (sorted by ``verify_start``): ``{"headline": ...}`` of the
    merged reports (:meth:`CertificationReport.merge` per model, which refuses pieces of
    different models, gaps and overlaps). None when a piece stored no per-image results
    (``"per_image"``) and so cannot be merged. Raises ``ValueError`` when the pieces
    evaluated different sets of models."""
    if not pieces:
        raise ValueError("merge_slice_values needs at least one piece")
    if not all(isinstance(piece.get("per_image"), Mapping) for piece in pieces):
        return None
    models = [list(piece["per_image"]) for piece in pieces]
    if any(set(names) != set(models[0]) for names in models):
        raise ValueError(f"the slices evaluated different models ({models}) and cannot be "
                         "merged")
    merged = {model: CertificationReport.merge([piece["per_image"][model] for piece in pieces])
              for model in models[0]}
    return {"headline": headline_values(merged)}
