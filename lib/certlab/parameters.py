"""One validated parameter schema per chapter.

Each chapter keeps its defaults in its ``parameters`` cell (papermill overrides them) and
validates them with one call at its top::

    from certlab.parameters import validate_chapter_parameters

    validate_chapter_parameters("12_smoothing_node_classification", globals())

The same schema is used by ``python -m certlab.run`` and ``python -m certlab.sweep`` before
anything executes, so a bad value fails at once, with a :class:`ParameterError` that names
the parameter, its bad value and what it must be. A test checks that every chapter's
``parameters`` cell and its schema list exactly the same names and that the defaults validate.

A schema is a mapping ``name -> Param`` (type and per-value constraint) plus cross-parameter
:class:`Rule` s (``n0 <= n``, ...). Validation returns the values normalized: ints given for
floats become floats, ``device`` becomes a ``torch.device`` (when ``resolve_device`` is on)
and lists flagged ``sort_unique`` are sorted without repeats.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .utils import check_probability

__all__ = ["ParameterError", "Param", "Int", "Float", "Probability", "Str", "Choice", "Bool",
           "IntList", "FloatList", "ProbabilityList", "StrList", "Device", "Folder", "Rule",
           "SlicedRuns", "ChapterSchema", "SCHEMAS", "schema_for", "complete_stored_parameters",
           "validate_parameters",
           "validate_chapter_parameters"]


class ParameterError(ValueError):
    """A chapter parameter is unknown, missing, of the wrong type or out of range."""


def _fail(name: str, what: str, value: Any) -> None:
    raise ParameterError(f"parameter {name!r} must be {what}, got {value!r}")


class Param:
    """One parameter: its type and constraint. ``check`` returns the normalized value."""

    help: str = ""

    def check(self, name: str, value: Any, *, resolve_device: bool = False,
              base_dir: Path | None = None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, (float, np.floating))) \
        and not isinstance(value, (bool, np.bool_))


def _range_text(low, high, open_low=False, open_high=False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if open_low else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if open_high else '<='} {high}")
    return " and ".join(parts)


@dataclass(frozen=True)
class Int(Param):
    """An integer (bools refused) in ``[min, max]``."""

    min: int = 0
    max: int | None = None
    help: str = ""

    def check(self, name, value, **_):
        if not _is_int(value) or value < self.min or (self.max is not None and value > self.max):
            _fail(name, f"an integer {self.describe_range()}", value)
        return int(value)

    def describe_range(self) -> str:
        return _range_text(self.min, self.max)

    def describe(self) -> str:
        return f"int {self.describe_range()}"


@dataclass(frozen=True)
class Float(Param):
    """A finite real number (ints accepted, returned as float) in a range."""

    min: float | None = None
    max: float | None = None
    open_low: bool = False
    open_high: bool = False
    help: str = ""

    def check(self, name, value, **_):
        what = f"a finite number {self.describe_range()}".rstrip()
        if not _is_number(value) or not np.isfinite(value):
            _fail(name, what, value)
        if self.min is not None and (value <= self.min if self.open_low else value < self.min):
            _fail(name, what, value)
        if self.max is not None and (value >= self.max if self.open_high else value > self.max):
            _fail(name, what, value)
        return float(value)

    def describe_range(self) -> str:
        return _range_text(self.min, self.max, self.open_low, self.open_high)

    def describe(self) -> str:
        return f"float {self.describe_range()}".rstrip()


@dataclass(frozen=True)
class Probability(Param):
    """A probability in [0, 1] (or an open variant), checked by ``check_probability``."""

    open_low: bool = False
    open_high: bool = False
    help: str = ""

    def check(self, name, value, **_):
        if not _is_number(value):
            _fail(name, f"a probability in {self.describe()[12:]}", value)
        try:
            check_probability(value, name, open_low=self.open_low, open_high=self.open_high)
        except ValueError as exc:
            raise ParameterError(f"parameter {exc}") from None
        return float(value)

    def describe(self) -> str:
        return (f"probability {'(' if self.open_low else '['}0, 1"
                f"{')' if self.open_high else ']'}")


@dataclass(frozen=True)
class Str(Param):
    """A non-empty string."""

    help: str = ""

    def check(self, name, value, **_):
        if not isinstance(value, str) or not value:
            _fail(name, "a non-empty string", value)
        return value

    def describe(self) -> str:
        return "string"


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed set of values (strings or ints)."""

    choices: tuple = ()
    help: str = ""

    def check(self, name, value, **_):
        if isinstance(value, bool) or value not in self.choices \
                or type(value) is not type(next(c for c in self.choices if c == value)):
            _fail(name, f"one of {', '.join(map(repr, self.choices))}", value)
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.choices))


@dataclass(frozen=True)
class Bool(Param):
    """True or False."""

    help: str = ""

    def check(self, name, value, **_):
        if not isinstance(value, (bool, np.bool_)):
            _fail(name, "True or False", value)
        return bool(value)

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class _List(Param):
    item: Param = None  # type: ignore[assignment]
    min_len: int = 1
    sort_unique: bool = False
    help: str = ""

    def check(self, name, value, **kw):
        what = f"a list of at least {self.min_len} ({self.item.describe()})"
        if not isinstance(value, (list, tuple)) or len(value) < self.min_len:
            _fail(name, what, value)
        out = [self.item.check(f"{name}[{i}]", v, **kw) for i, v in enumerate(value)]
        return sorted(set(out)) if self.sort_unique else out

    def describe(self) -> str:
        return f"list of {self.item.describe()} (length >= {self.min_len})"


def IntList(min_len: int = 1, item_min: int = 1, item_max: int | None = None, *,
            sort_unique: bool = False, help: str = "") -> Param:
    """A list of integers, each in ``[item_min, item_max]``."""
    return _List(Int(item_min, item_max), min_len, sort_unique, help)


def FloatList(min_len: int = 1, item_min: float | None = None, *, open_low: bool = False,
              help: str = "") -> Param:
    """A list of finite numbers (as floats), each above ``item_min``."""
    return _List(Float(item_min, None, open_low), min_len, False, help)


def ProbabilityList(min_len: int = 1, *, help: str = "") -> Param:
    """A list of probabilities in [0, 1]."""
    return _List(Probability(), min_len, False, help)


def StrList(min_len: int = 1, *, help: str = "") -> Param:
    """A list of non-empty strings."""
    return _List(Str(), min_len, False, help)


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class Device(Param):
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; resolved to a ``torch.device`` by
    :func:`certlab.utils.resolve_device` when asked (which fails where CUDA is missing)."""

    resolve: bool = True
    help: str = ""

    def check(self, name, value, *, resolve_device: bool = False, **_):
        is_torch_device = type(value).__name__ == "device"  # a re-run notebook cell
        if not is_torch_device and (not isinstance(value, str) or not _DEVICE.match(value)):
            _fail(name, "'auto', 'cpu', 'cuda' or 'cuda:N'", value)
        if resolve_device and self.resolve:
            from .utils import resolve_device as _resolve

            try:
                return _resolve(value)
            except ValueError as exc:
                raise ParameterError(f"parameter {name!r}: {exc}") from None
        return value

    def describe(self) -> str:
        return "'auto', 'cpu', 'cuda' or 'cuda:N'"


@dataclass(frozen=True)
class Folder(Param):
    """An existing folder; a relative path is taken from the chapter's folder."""

    help: str = ""

    def check(self, name, value, *, base_dir: Path | None = None, **_):
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            _fail(name, "a folder path", value)
        path = Path(value)
        if not path.is_absolute():
            path = Path(base_dir or os.getcwd()) / path
        if not path.is_dir():
            raise ParameterError(f"parameter {name!r}: {value!r} is not a folder"
                                 + ("" if Path(value).is_absolute() else f" (seen from {path.parent})"))
        return value

    def describe(self) -> str:
        return "existing folder"


@dataclass(frozen=True)
class Rule:
    """A constraint between parameters: ``predicate(values)`` must hold, else ``message``
    (formatted with the values) is raised as a :class:`ParameterError`."""

    predicate: Callable[[Mapping[str, Any]], bool]
    message: str

    def check(self, values: Mapping[str, Any]) -> None:
        if not self.predicate(values):
            raise ParameterError(self.message.format(**values))


@dataclass(frozen=True)
class SlicedRuns:
    """How a chapter's long run may be split into runs over consecutive slices of its work
    (chapter 42: the verified test images ``[verify_start, verify_start + n_verify)``) and
    merged back (:func:`certlab.records.stored_runs` with ``merge_slices=True``).

    ``start``, ``count``: the parameters that place a slice; ``merge``: ``"module:function"``,
    a function from the stored ``values`` of consecutive slices (sorted by ``start``) to the
    ``values`` of one run, or None when they cannot be merged (imported only when runs are
    merged, so that reading the schema stays light)."""

    start: str
    count: str
    merge: str

    def merge_function(self) -> Callable[[list[Mapping[str, Any]]], Mapping[str, Any] | None]:
        """The function ``merge`` names."""
        from importlib import import_module

        module, _, name = self.merge.partition(":")
        if not module or not name:
            raise ValueError(f"merge must be 'module:function', got {self.merge!r}")
        return getattr(import_module(module), name)


@dataclass(frozen=True)
class ChapterSchema:
    """The parameters of one chapter: ``name -> Param`` and cross-parameter rules.

    ``added_later``: parameters added after runs of the chapter were stored, each with the
    value those runs used without naming it (the chapter then behaved as with that value).
    :func:`complete_stored_parameters` fills them into a stored run's parameters, so that old
    records still validate, still count as done for a sweep's resume, and merge with new
    runs. A test checks that every such value validates and is the chapter's default.

    ``slices``: how runs split over slices of the chapter's work merge back
    (:class:`SlicedRuns`), or None.
    """

    params: Mapping[str, Param]
    rules: tuple[Rule, ...] = ()
    added_later: Mapping[str, Any] = field(default_factory=dict)
    slices: SlicedRuns | None = None

    def validate(self, values: Mapping[str, Any], *, stem: str = "chapter",
                 resolve_device: bool = False, base_dir: str | os.PathLike | None = None,
                 ) -> dict[str, Any]:
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise ParameterError(f"{stem}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                                 f"valid parameters: {', '.join(sorted(self.params))}")
        missing = [n for n in self.params if n not in values]
        if missing:
            raise ParameterError(f"{stem}: missing parameter(s) {', '.join(map(repr, missing))}")
        base = None if base_dir is None else Path(base_dir)
        out = {name: param.check(name, values[name], resolve_device=False, base_dir=base)
               for name, param in self.params.items()}
        for rule in self.rules:
            rule.check(out)
        if resolve_device:  # last: importing torch is slow, every cheap check comes first
            for name, param in self.params.items():
                if isinstance(param, Device):
                    out[name] = param.check(name, values[name], resolve_device=True)
        return out


_SEED = Int(0, help="random seed")
_DEV = Device(help='"auto" picks CUDA when present')
_ALPHA = Probability(open_low=True, open_high=True, help="error probability of the bounds")
#: certlab.ntk.PAPER_ARCHITECTURES's names (a test checks they agree; listed here so that
#: validation needs no torch import).
COLLECTIVE_ARCHITECTURES = ("GCN", "SGC", "APPNP", "GIN", "GraphSAGE", "GCN skip-alpha",
                            "GCN skip-PC", "MLP")
_GRAPH = Choice(("cora_ml", "citeseer"), help="Cora-MLb or Citeseerb")


def _n0_le_n(v):
    return v["n0"] <= v["n"]


# chapter 12: the sparse attribute / structure noises, the non-sparse comparison, both at once
_SMOOTHINGS_12 = ("attributes", "structure", "non-sparse", "joint")

SCHEMAS: dict[str, ChapterSchema] = {
    "00_introduction": ChapterSchema({
        "n_samples": Int(1), "n_repeats": Int(1), "true_p": Probability(), "alpha": _ALPHA,
        "device": _DEV, "seed": _SEED}),
    "11_smoothing_certificate": ChapterSchema(
        {"p_plus": Probability(), "p_minus": Probability(), "ra": Int(0), "rd": Int(0),
         "p_lower": Probability(), "toy_dim": Int(2, 12), "dense_p": Probability(),
         "max_radius": Int(1),
         "imagenet_keep": Float(0, 1, open_low=True, open_high=True,
                                help="keep probability of the uniform K = 256 noise"),
         "imagenet_inputs": Int(1, help="p_lower values certified per radius"),
         "imagenet_max_r": Int(1, 20), "device": _DEV, "seed": _SEED},
        (Rule(lambda v: v["ra"] <= v["toy_dim"] - v["toy_dim"] // 2
              and v["rd"] <= v["toy_dim"] // 2,
              "the toy input of toy_dim={toy_dim} bits has toy_dim // 2 ones and the rest "
              "zeros: need rd <= toy_dim // 2 and ra <= toy_dim - toy_dim // 2, "
              "got ra={ra}, rd={rd}"),)),
    "12_smoothing_node_classification": ChapterSchema(
        {"dataset": Str(), "models": StrList(1), "attr_p_plus": Probability(),
         "attr_p_minus": Probability(), "graph_p_plus": Probability(),
         "graph_p_minus": Probability(), "dense_p": Probability(), "n0": Int(1), "n": Int(1),
         "alpha": _ALPHA, "batch_size": Int(1), "max_epochs": Int(1), "patience": Int(1),
         "lr": Float(0, open_low=True), "weight_decay": Float(0), "n_per_class": Int(1),
         "n_val_per_class": Int(0), "max_ra": Int(0), "max_rd": Int(0),
         "smoothings": _List(Choice(_SMOOTHINGS_12), 1, True,
                             "which smoothed models to train and certify"),
         "device": _DEV, "seed": _SEED},
        (Rule(_n0_le_n, "n0 ({n0}) must not exceed n ({n})"),
         Rule(lambda v: bool({"attributes", "structure"} & set(v["smoothings"])),
              "smoothings ({smoothings}) must include 'attributes' or 'structure'"))),
    "13_smoothing_beyond_nodes": ChapterSchema(
        {"tu_dataset": Str(), "graph_p_plus": Probability(), "graph_p_minus": Probability(),
         "gin_epochs": Int(1), "mnist_train_images": Int(1),
         "mnist_test_images": Int(0, help="0: graphs only, no MNIST"),
         "mnist_epochs": Int(1), "mnist_p_plus": Probability(), "mnist_p_minus": Probability(),
         "mnist_dense_p": Probability(), "n0": Int(1), "n": Int(1), "alpha": _ALPHA,
         "batch_size": Int(1), "max_radius": Int(1), "lr": Float(0, open_low=True),
         "device": _DEV, "seed": _SEED},
        (Rule(_n0_le_n, "n0 ({n0}) must not exceed n ({n})"),)),
    "21_ntk_gnn_kernels": ChapterSchema(
        {"n_csbm": Int(50, help="CSBM nodes: 20 + 20 labeled nodes and a test set"),
         "real_graph": _GRAPH, "n_seeds": Int(1),
         "depth": Int(1),
         "svm_C": Choice(("paper", "cv")), "convergence_nodes": Int(4),
         "widths": IntList(2, 1), "n_init_seeds": Int(1), "device": _DEV, "seed": _SEED}),
    "22_label_flip_certificates": ChapterSchema(
        {"n_csbm": Int(50, help="CSBM nodes: 40 labeled nodes and a test set"),
         "real_graph": _GRAPH, "n_seeds": Int(1),
         "published_seeds": Int(0, help="seeds of the table with the authors' kernels"),
         "max_flips": Int(1, 20, help="the real graph has 20 labels"),
         "collective_architectures": _List(Choice(COLLECTIVE_ARCHITECTURES), 0), "collective_seeds": Int(0),
         "n_collective_nodes": Int(1), "collective_max_fraction": Probability(open_low=True),
         "csbm_collective_architectures": _List(Choice(COLLECTIVE_ARCHITECTURES), 0),
         "csbm_collective_seeds": Int(1), "n_csbm_collective_nodes": Int(1),
         "csbm_collective_time_limit": Float(0, open_low=True,
                                             help="wall-clock s per MILP solve"),
         "n_milp_nodes": Int(0), "milp_budgets": IntList(1, 1, 20),
         "citeseer_table": Bool(), "multiclass_per_class": Int(2),
         "multiclass_max_flips": Int(1), "multiclass_milp_per_class": Int(2),
         "n_multiclass_milp_nodes": Int(0),
         "beyond_paper_labels": Int(4, help="CSBM labels of the MILP beyond the paper's 40 "
                                            "(a multiple of 4: balanced train + validation)"),
         "n_beyond_nodes": Int(1), "beyond_max_flips": Int(1),
         "beyond_C": Float(0, open_low=True), "beyond_check_flips": Int(0, 3),
         "beyond_time_limit": Float(0, open_low=True, help="wall-clock s per MILP solve"),
         "device": _DEV, "seed": _SEED},
        (Rule(lambda v: v["multiclass_max_flips"] <= 7 * v["multiclass_per_class"],
              "multiclass_max_flips must lie in [1, 7 * multiclass_per_class = "
              "7 * {multiclass_per_class}], got {multiclass_max_flips}"),
         Rule(lambda v: v["n_csbm_collective_nodes"] <= v["n_csbm"] - 40,
              "n_csbm_collective_nodes must be at most the n_csbm - 40 = {n_csbm} - 40 "
              "unlabeled CSBM nodes, got {n_csbm_collective_nodes}"),
         Rule(lambda v: v["beyond_paper_labels"] % 4 == 0,
              "beyond_paper_labels must be a multiple of 4, got {beyond_paper_labels}"),
         Rule(lambda v: v["beyond_paper_labels"] <= v["n_csbm"] // 3,
              "beyond_paper_labels must be at most n_csbm / 3 = {n_csbm} / 3 (both classes "
              "need half of them), got {beyond_paper_labels}"),
         Rule(lambda v: v["beyond_check_flips"] <= min(v["beyond_max_flips"],
                                                       v["beyond_paper_labels"]),
              "beyond_check_flips must be at most beyond_max_flips = {beyond_max_flips}, "
              "got {beyond_check_flips}"),
         Rule(lambda v: v["beyond_max_flips"] <= v["beyond_paper_labels"],
              "beyond_max_flips must be at most beyond_paper_labels = {beyond_paper_labels}, "
              "got {beyond_max_flips}")),
        # the CSBM collective curves came after the stored paper-scale run, which has none
        added_later={"csbm_collective_architectures": [], "csbm_collective_seeds": 1,
                     "n_csbm_collective_nodes": 20, "csbm_collective_time_limit": 20.0}),
    "31_ensemble_certificates": ChapterSchema(
        {"n_train": Int(0, help="0: all"), "n_test": Int(0, help="0: all"),
         "n_parts": IntList(1, 1, sort_unique=True), "n_components": Int(1),
         "ridge_binary": Float(0, open_low=True), "ridge_mnist": Float(0, open_low=True),
         "ridge_sweep": FloatList(0, 0, open_low=True),
         "milp_train": Int(4, 60, help="MILP size"), "milp_test": Int(1),
         "device": _DEV, "seed": _SEED},
        (Rule(lambda v: v["n_train"] == 0 or v["n_train"] >= 10,
              "n_train must be 0 (all) or >= 10, got {n_train}"),
         Rule(lambda v: v["n_train"] == 0 or max(v["n_parts"]) <= v["n_train"],
              "every entry of n_parts must lie in [1, n_train = {n_train}], got {n_parts}"))),
    "41_bounds_and_bab": ChapterSchema(
        {"n_train": Int(100), "epochs": Int(1), "train_eps": Float(0, 1),
         "hidden": IntList(1, 1), "eps": Float(0, 1), "n_images": Int(1), "n_verify": Int(1),
         "max_domains": Int(0, help="BaB sub-problems per image (0: no limit)"),
         "timeout": Float(0, open_low=True, help="seconds per image and method"),
         "bab_iterations": Int(0), "device": _DEV, "seed": _SEED}),
    "42_linearity_grafting": ChapterSchema(
        {"architecture": Choice(("mlp", "small_cnn", "convbig")),
         "image_size": Choice((7, 14, 28), help="28, or 2x2 / 4x4 pooling"),
         "mlp_hidden": IntList(1, 1), "channels": IntList(1, 1), "hidden": Int(1),
         "n_train": Int(1), "epochs": Int(1), "eps_warmup": Probability(),
         "finetune_epochs": Int(0), "lr": Float(0, open_low=True), "batch_size": Int(1),
         "eps": Float(0, 1, open_low=True, open_high=True), "n_significance": Int(1),
         "n_instability": Int(1), "n_test": Int(1), "attack_steps": Int(0),
         "attack_restarts": Int(1), "n_verify": Int(1),
         "verify_start": Int(0, help="first verified test image (a run split into slices)"),
         "max_domains": Int(0, help="BaB sub-problems per image (0: no limit)"),
         "timeout": Float(0, open_low=True), "fractions": ProbabilityList(1),
         "device": _DEV, "seed": _SEED},
        (Rule(lambda v: v["architecture"] != "convbig" or v["image_size"] == 28,
              "the convbig architecture needs image_size = 28, got {image_size}"),
         Rule(lambda v: v["verify_start"] + v["n_verify"] <= v["n_test"],
              "need verify_start + n_verify <= n_test, got verify_start={verify_start}, "
              "n_verify={n_verify}, n_test={n_test}"),
         Rule(lambda v: v["n_significance"] <= v["n_train"],
              "need n_significance <= n_train, got n_significance={n_significance}, "
              "n_train={n_train}"),
         Rule(lambda v: v["n_test"] + v["n_instability"] <= 10000,
              "n_test + n_instability must not exceed the 10000 MNIST test images, got "
              "{n_test} + {n_instability}"),
         Rule(lambda v: {0.3, 0.5, 0.8} <= set(v["fractions"]),
              "fractions must contain 0.3, 0.5 and 0.8 (Table 1's ratios, which the chapter "
              "compares; add others freely), got {fractions}")),
        added_later={"verify_start": 0},
        slices=SlicedRuns("verify_start", "n_verify",
                          "certlab.verification.report:merge_slice_values")),
    "90_benchmarks": ChapterSchema(
        {"results_dir": Folder(help="where the benchmark records live"),
         "device": Device(resolve=False, help="unused here; every chapter takes it"),
         "seed": _SEED}),
}


def schema_for(stem: str) -> ChapterSchema:
    """The schema of chapter ``stem`` (``notebooks/<stem>.py``)."""
    try:
        return SCHEMAS[stem]
    except KeyError:
        raise ParameterError(f"no parameter schema for chapter {stem!r}; known chapters: "
                             f"{', '.join(sorted(SCHEMAS))}") from None


def complete_stored_parameters(stem: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run's ``parameters`` (its ``record.json``) with every parameter that chapter
    ``stem`` gained after the run was stored set to the value the run used
    (:attr:`ChapterSchema.added_later`). Values the record holds are kept; a chapter without
    a schema gets the parameters back unchanged."""
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping, got {type(parameters).__name__}")
    schema = SCHEMAS.get(stem)
    added = {} if schema is None else schema.added_later
    return {**{name: value for name, value in added.items() if name not in parameters},
            **parameters}


def validate_parameters(stem: str, values: Mapping[str, Any], *, resolve_device: bool = False,
                        base_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Validate a full set of parameters of chapter ``stem``; return them normalized.

    ``values`` must hold every parameter of the schema and nothing else. Raises
    :class:`ParameterError` naming the first bad parameter (or the broken rule).
    ``base_dir``: where relative folder parameters are looked up (the chapter's folder).
    """
    return schema_for(stem).validate(values, stem=stem, resolve_device=resolve_device,
                                     base_dir=base_dir)


def validate_chapter_parameters(stem: str, namespace: MutableMapping[str, Any]
                                ) -> dict[str, Any]:
    """The notebook's check: validate the chapter's parameters in ``namespace`` (its
    ``globals()``) and write the normalized values back (``device`` becomes a
    ``torch.device``, ``n_parts``-like lists are sorted). Returns the normalized values.

    Names of ``namespace`` outside the schema are ignored; a missing one is an error.
    """
    schema = schema_for(stem)
    missing = [n for n in schema.params if n not in namespace]
    if missing:
        raise ParameterError(f"{stem}: missing parameter(s) {', '.join(map(repr, missing))}")
    values = schema.validate({n: namespace[n] for n in schema.params}, stem=stem,
                             resolve_device=True)
    namespace.update(values)
    return values
