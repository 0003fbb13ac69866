"""A chapter's key numbers, saved for the runners (``record.json``).

A chapter calls :func:`save_record` with the numbers that matter (a certified accuracy, an
average radius, a runtime), typically in its last cells::

    from certlab.records import save_record

    save_record({"certified_accuracy_rd1": float(acc[1]), "mean_max_rd": float(mean_rd)})

When the chapter runs under ``python -m certlab.run`` or ``python -m certlab.sweep``, the
runner points the environment variable ``CERTLAB_RECORD_PATH`` at a temporary file; the
values are merged into it and end up, with the run's parameters and library hash, in the
run's ``record.json``. In an interactive session or a book build (no such variable) nothing is
written, but the values are still checked, so a chapter that saves something that JSON cannot
hold fails in the book build too, not only in a sweep.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .parameters import SCHEMAS, complete_stored_parameters
from .provenance import _jsonable, write_json

__all__ = ["RECORD_ENV", "PAPER_RESULTS", "record_path", "save_record", "load_record",
           "stored_runs", "group_runs", "consecutive_slices", "merge_slice_runs",
           "stored_value_text"]

#: The environment variable through which a runner tells the kernel where to save.
RECORD_ENV = "CERTLAB_RECORD_PATH"

#: Where committed paper-scale sweep results live, relative to the repository root:
#: ``results/paper/<chapter>/<point-id>/{record.json, provenance.json}``.
PAPER_RESULTS = Path("results") / "paper"


def record_path() -> Path | None:
    """Where :func:`save_record` writes in this process, or None (interactive run)."""
    value = os.environ.get(RECORD_ENV)
    return Path(value) if value else None


def _check_value(key: str, value: Any) -> Any:
    """JSON-ready copy of ``value`` (numpy scalars and arrays become Python numbers/lists);
    refuses non-finite floats (a key number is never NaN) and non-JSON objects."""
    if isinstance(value, Mapping):
        return {str(k): _check_value(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_check_value(f"{key}[{i}]", v) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"record value {key!r} must be finite, got {value!r}")
        return value
    try:
        converted = _jsonable(value)
    except TypeError:
        raise TypeError(f"record value {key!r} cannot be stored in JSON: "
                        f"{type(value).__name__}") from None
    return _check_value(key, converted)


def save_record(values: Mapping[str, Any]) -> Path | None:
    """Save a chapter's key numbers: merge ``values`` (name -> JSON-able value: numbers,
    strings, bools, lists, dicts; numpy scalars and arrays are converted) into the run's
    record. Returns the file written, or None in an interactive run (values still checked).

    Raises ``TypeError`` (not a mapping, a key that is not a string, a value JSON cannot
    hold) or ``ValueError`` (a NaN or infinite number), naming the key.
    """
    if not isinstance(values, Mapping):
        raise TypeError(f"save_record takes a dict of name -> value, got "
                        f"{type(values).__name__}")
    clean = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"record keys must be non-empty strings, got {key!r}")
        clean[key] = _check_value(key, value)
    json.dumps(clean)
    path = record_path()
    if path is None:
        return None
    existing = json.loads(path.read_text()) if path.exists() else {}
    return write_json(path, {**existing, **clean})


def load_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``record.json`` of a run folder: ``{"chapter", "parameters", "lib_hash",
    "values"}``."""
    return json.loads((Path(run_dir) / "record.json").read_text())


def stored_runs(chapter: str, root: str | os.PathLike | None = None, *,
                merge_slices: bool = False) -> list[dict[str, Any]]:
    """The committed paper-scale runs of a chapter, for the chapter to render (never rerun).

    ``chapter`` is the notebook's stem (``"22_label_flip_certificates"``); runs are read from
    ``<root>/results/paper/<chapter>/*/`` (``root``: the repository, by default the one this
    package lives in). Each run is the ``record.json`` (``"parameters"``, ``"lib_hash"``,
    ``"values"``) with its ``provenance.json`` under ``"provenance"`` (command, commit,
    hardware, wall time), sorted by folder name; ``[]`` when none is stored. Parameters the
    chapter gained after a run was stored are filled in with the value the run used
    (:func:`certlab.parameters.complete_stored_parameters`). A folder without
    both files (a sweep interrupted before its atomic write) is skipped; a file that is not
    valid JSON raises ``ValueError`` naming it.

    ``merge_slices``: for a chapter whose schema declares :class:`~certlab.parameters.
    SlicedRuns` (chapter 42), runs of one setting over consecutive slices come back merged
    into one run (:func:`merge_slice_runs`); the stored files are not touched.
    """
    if not isinstance(chapter, str) or not chapter or "/" in chapter or chapter.startswith("."):
        raise ValueError(f"chapter must be a notebook stem like '22_label_flip_certificates', "
                         f"got {chapter!r}")
    if root is None:
        from .provenance import repo_root
        root = repo_root()
    folder = Path(root) / PAPER_RESULTS / chapter
    runs = []
    for run_dir in sorted(p for p in folder.glob("*") if p.is_dir()):
        files = run_dir / "record.json", run_dir / "provenance.json"
        if not all(f.is_file() for f in files):
            continue
        try:
            record, prov = (json.loads(f.read_text()) for f in files)
        except json.JSONDecodeError as err:
            raise ValueError(f"stored run {run_dir}: not valid JSON ({err})") from None
        if isinstance(record.get("parameters"), Mapping):
            record["parameters"] = complete_stored_parameters(chapter, record["parameters"])
        runs.append({**record, "provenance": prov, "run": run_dir.name})
    schema = SCHEMAS.get(chapter)
    if merge_slices and schema is not None and schema.slices is not None:
        sliced = schema.slices
        return merge_slice_runs(runs, sliced.start, sliced.count, sliced.merge_function())
    return runs


def group_runs(runs: list[Mapping[str, Any]], vary: str | tuple[str, ...]
               ) -> list[list[Mapping[str, Any]]]:
    """Group runs (as :func:`stored_runs` returns them) whose parameters agree except
    ``vary`` (one name or a tuple of names): the pieces of one setting that a sweep split
    over a grid of ``vary`` (chapter 31's numbers of partitions, chapter 42's slices of the
    verified images), for the chapter to merge. Groups keep the runs' order and come in the
    order of their first run."""
    names = (vary,) if isinstance(vary, str) else vary
    if (not isinstance(names, tuple) or not names
            or not all(isinstance(n, str) and n for n in names)):
        raise ValueError(f"vary must name a parameter or a tuple of parameters, got {vary!r}")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        rest = {k: v for k, v in run["parameters"].items() if k not in names}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(run)
    return list(groups.values())


def consecutive_slices(runs: list[Mapping[str, Any]], start: str, count: str
                       ) -> list[list[Mapping[str, Any]]]:
    """Split runs of one setting (a group of :func:`group_runs`) that each covered a slice
    ``[start, start + count)`` of something (chapter 42's verified test images) into chains
    of consecutive slices, each chain sorted by ``start``: the runs that can be merged into
    one larger run. A slice that overlaps the chain before it starts a chain of its own."""
    for name in (start, count):
        if not isinstance(name, str) or not name:
            raise ValueError(f"start and count must name parameters, got {name!r}")
    chains: list[list[Mapping[str, Any]]] = []
    for run in sorted(runs, key=lambda r: (r["parameters"][start], r["parameters"][count])):
        for chain in chains:
            last = chain[-1]["parameters"]
            if last[start] + last[count] == run["parameters"][start]:
                chain.append(run)
                break
        else:
            chains.append([run])
    return chains


def merge_slice_runs(runs: list[Mapping[str, Any]], start: str, count: str,
                     merge_values: Callable[[list[Mapping[str, Any]]], Mapping[str, Any] | None]
                     ) -> list[dict[str, Any]]:
    """Runs (as :func:`stored_runs` returns them) with every chain of consecutive slices of
    one setting (:func:`group_runs` over ``start`` and ``count``, then
    :func:`consecutive_slices`) replaced by one run: ``values`` from ``merge_values`` (the
    pieces' ``values``, sorted by ``start``; None keeps the pieces as they are),
    ``parameters`` of the first piece with ``count`` summed, the provenance of the first
    piece with every piece's commit (``"a, b"``, each once) and the pieces' wall times added,
    ``"run"`` ``"<first> to <last>"`` and ``"pieces"`` their number. Other runs are returned
    unchanged, in the order of their groups."""
    merged: list[dict[str, Any]] = []
    for setting in group_runs(runs, vary=(start, count)):
        for chain in consecutive_slices(setting, start, count):
            values = (merge_values([dict(run["values"]) for run in chain])
                      if len(chain) > 1 else None)
            if values is None:
                merged += [dict(run) for run in chain]
                continue
            first, last = chain[0], chain[-1]
            provenance = dict(first.get("provenance", {}))
            commits = [run.get("provenance", {}).get("commit") for run in chain]
            if all(commits):
                provenance["commit"] = ", ".join(dict.fromkeys(commits))
            times = [run.get("provenance", {}).get("wall_time_s") for run in chain]
            if all(isinstance(t, (int, float)) for t in times):
                provenance["wall_time_s"] = float(sum(times))
            merged.append({
                **{k: v for k, v in first.items() if k not in ("values", "provenance")},
                "run": f"{first['run']} to {last['run']}",
                "parameters": {**first["parameters"],
                               count: sum(run["parameters"][count] for run in chain)},
                "values": dict(values), "provenance": provenance, "pieces": len(chain)})
    return merged


def _format_value(value: Any, fmt: str, nested: bool = False) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return format(value, fmt) if fmt and fmt != ">" else str(value)
    if isinstance(value, list):
        if fmt == ">":  # a ranking
            return " > ".join(_format_value(v, "", True) for v in value)
        return (" / " if nested else ", ").join(_format_value(v, fmt, True) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_format_value(v, fmt, True)}" for k, v in value.items())
    return str(value)


def stored_value_text(chapter: str, key: str, fmt: str = "",
                      root: str | os.PathLike | None = None, *,
                      missing: str = "not run yet",
                      where: Mapping[str, Any] | None = None) -> str:
    """One value of the stored paper-scale runs of a chapter, as text for a page.

    ``key`` is a name in the runs' ``values``, with dots into nested dicts
    (``"avg_max_rd.structure GCN"``); ``fmt`` a format spec for numbers (``".2f"``), or
    ``">"`` for a ranking (a list printed ``a > b > c``); other lists print ``a, b, c``
    (``a / b / c`` inside a dict), dicts ``key value, ...``, booleans yes / no.
    Runs over consecutive slices of one setting count as one (``merge_slices``).
    Every stored run holding the key contributes, labelled by its folder when there are
    several (``run: value; run: value``), once when they all agree (``value (both stored
    runs)``, ``value (all 3 stored runs)``); ``missing`` when none does. ``where``: only
    the runs whose parameters have these values (``{"n_seeds": 5}``), for a chapter whose
    stored runs answer different questions.
    """
    if where is not None and not isinstance(where, Mapping):
        raise TypeError(f"where must map parameter names to values, got {where!r}")
    found = []
    for run in stored_runs(chapter, root, merge_slices=True):
        if where and any(run["parameters"].get(name, _MISSING) != value
                         for name, value in where.items()):
            continue
        value: Any = run.get("values", {})
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                value = None
                break
            value = value[part]
        if value is not None:
            found.append((run["run"], _format_value(value, fmt)))
    if not found:
        return missing
    if len(found) == 1:
        return found[0][1]
    if len({text for _, text in found}) == 1:
        together = "both" if len(found) == 2 else f"all {len(found)}"
        return f"{found[0][1]} ({together} stored runs)"
    labels = _readable_labels([name for name, _ in found])
    return "; ".join(f"{label}: {text}" for label, (_, text) in zip(labels, found))


_MISSING = object()  # a parameter a run does not have equals no value


def _readable_labels(names: list[str]) -> list[str]:
    """Run folders without the parameter digest a sweep appends (``n_parts-10+1000_c8af3f38``
    -> ``n_parts-10+1000``; a merged run ``a_1234abcd to b_5678ef90`` -> ``a to b``), unless
    that would make two labels equal."""
    short = [" to ".join(re.sub(r"_[0-9a-f]{8}$", "", part) for part in name.split(" to "))
             for name in names]
    return short if len(set(short)) == len(short) else list(names)
