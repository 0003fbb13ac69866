"""Benchmark records: measure, store with provenance, and show them in the book.

A benchmark script times a method against a baseline measured in the same run and stores a
JSON record in ``benchmarks/results/<name>.json`` via :func:`save_record`. The book's
benchmark page reads them back with :func:`load_records`.

Record layout (``results`` are free-form; ``headline`` is optional)::

    {"name": ..., "description": ..., "target": "...", "target_met": true,
     "headline": {"speedup": 5279.0, ...}, "results": {...},
     "provenance": {command, parameters, commit, hardware, ...}}

:meth:`BenchmarkRecord.to_markdown` renders one record as a table for the book (what was
measured, target, met or not, the headline numbers, when, at which commit, a link to the
file) with every result in a collapsed block of tables; :func:`records_overview` is the
one-line-per-record summary. Keys are shown in natural order (``P2`` before ``P10``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .provenance import describe_hardware, provenance, repo_root, write_json

__all__ = ["BenchmarkRecord", "measure", "save_record", "load_records", "records_table",
           "records_overview", "natural_key"]

NONE = "\u2014"  # an em dash for a missing value (a lone "-" would start a list)
_SCALARS = (bool, int, float, str, type(None))
_MAX_LIST = 8  # lists longer than this are shortened in tables (the JSON has them in full)
_MAX_COLUMNS = 4  # wider tables are transposed or split so that they fit the page


@dataclass
class BenchmarkRecord:
    """One stored benchmark result.

    Attributes:
        name: record name (``benchmarks/results/<name>.json``).
        description: what was measured, and against which baseline.
        target: the target in words.
        target_met: True / False, or None for a record without a target.
        results: free-form results (nested dicts, lists, scalars).
        provenance: command, parameters, commit, hardware, wall time, date.
        headline: the numbers that answer the target, ``{label: value}`` (optional; stored
            by :func:`save_record`); the book's table shows them as the result.
        source: the file the record was read from (None when built in memory).
    """

    name: str
    description: str = ""
    target: str = ""
    target_met: bool | None = None
    results: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    _KNOWN = ("name", "description", "target", "target_met", "results", "provenance", "headline")

    @classmethod
    def from_json(cls, path: str | Path) -> "BenchmarkRecord":
        path = Path(path)
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"benchmark record {path} must hold a JSON object, got "
                             f"{type(raw).__name__}")
        results = dict(raw.get("results", {}))
        results.update({k: v for k, v in raw.items() if k not in cls._KNOWN})
        return cls(name=raw.get("name", path.stem), description=raw.get("description", ""),
                   target=raw.get("target", ""), target_met=raw.get("target_met"),
                   results=results, provenance=raw.get("provenance", {}),
                   headline=dict(raw.get("headline") or {}), source=path)

    def headline_rows(self, patterns: Sequence[str] | None = None) -> list[tuple[str, Any]]:
        """The numbers that answer the target, as ``(label, value)`` pairs.

        The record's stored ``headline`` when it has one; else the results whose dotted key
        (``models.mlp.methods.bab.verified_accuracy``) matches one of ``patterns`` (shell
        wildcards: ``models.*.bab_milp_disagreements``), in the order of the patterns and
        naturally sorted within one (``P2`` before ``P10``); else every top-level scalar
        result. A pattern that matches nothing is a ``ValueError`` naming it.
        """
        if self.headline:
            return list(self.headline.items())
        flat = _flatten(self.results)
        if patterns is None:
            return sorted(((k, v) for k, v in flat if "." not in k and _is_cell_value(v)),
                          key=lambda kv: natural_key(kv[0]))
        if isinstance(patterns, str):
            raise TypeError(f"patterns must be a list of strings, got the string {patterns!r}")
        rows: list[tuple[str, Any]] = []
        for pattern in patterns:
            hits = [(k, v) for k, v in flat if fnmatch.fnmatchcase(k, pattern)]
            if not hits:
                raise ValueError(f"benchmark record {self.name!r} has no result matching "
                                 f"{pattern!r}")
            rows += sorted(hits, key=lambda kv: natural_key(kv[0]))
        return rows

    def to_markdown(self, *, headline: Sequence[str] | None = None, link: str | None = None,
                    details: bool = True) -> str:
        """The record as a book section (MyST markdown).

        A heading, then one table: what was measured, the target, whether it was met, the
        result (:meth:`headline_rows` with ``headline`` as patterns), when, at which commit,
        on which hardware, with which command, and the full record (``link``: a path to the
        JSON file relative to the page, rendered as a download link; by default the path in
        the repository as text). With ``details``, every result follows in a collapsed
        dropdown, as tables (nested results as one table per group, naturally sorted).
        """
        prov = self.provenance
        verdict = {True: "**yes**", False: "**no**", None: "no target"}[self.target_met]
        rows = [("measured", _text(self.description) or NONE),
                ("target", _text(self.target) or NONE),
                ("target met", verdict)]
        rows += [(f"result: {_label(label)}", _cell(value))
                 for label, value in self.headline_rows(headline)]
        rows += [("measured on", _when(prov.get("date"))),
                 ("commit", _commit(prov.get("commit"))),
                 ("hardware", _text(describe_hardware(prov.get("hardware") or {})) or NONE),
                 ("command", f"`{prov['command']}`" if prov.get("command") else NONE),
                 ("wall time", f"{_fmt(prov['wall_time_s'])} s"
                  if prov.get("wall_time_s") is not None else NONE)]
        file_name = f"{self.name}.json" if self.source is None else self.source.name
        record = (f"{{download}}`{file_name} <{link}>`" if link
                  else f"`benchmarks/results/{file_name}`")
        rows.append(("full record", record))
        lines = [f"### {_text(self.name)}", "", "```{list-table}", ":widths: 28 72",
                 ":class: certlab-record", ""]
        for label, value in rows:
            lines += [f"* - {label}", f"  - {value}"]
        lines.append("```")
        if details and self.results:
            blocks = _result_blocks(self.results)
            lines += ["", f"````{{dropdown}} All results of {_text(self.name)}", *blocks, "````"]
        return "\n".join(lines)


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: ``P1 < P2 < P10 < P100``."""
    parts = re.split(r"(\d+)", str(text))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts)


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, leaf value) pairs."""
    if not isinstance(obj, dict) or not obj:
        return [(prefix, obj)]
    out: list[tuple[str, Any]] = []
    for key, value in obj.items():
        out += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return out



def _is_cell_value(value: Any) -> bool:
    """A scalar or a list of scalars (what fits in one table cell)."""
    if isinstance(value, list):
        return all(isinstance(v, _SCALARS) for v in value)
    return isinstance(value, _SCALARS)


def _text(value: Any) -> str:
    """Plain text made safe for a MyST table cell (no markup, no math, no pipes)."""
    text = re.sub(r"([\\`*_\[\]<>|$])", r"\\\1", str(value).replace("\n", " "))
    return "\\" + text if text[:1] in ("-", "+") else text  # not a list marker


def _label(key: str) -> str:
    """A result key for people: ``ensemble_min_flips.worst_case_s`` as
    ``ensemble min flips / worst case s`` (the JSON keeps the exact key)."""
    return _text(re.sub(r"(?<=\D)\.|\.(?=\D)", " / ", str(key)).replace("_", " "))


def _fmt(value: Any, grouping: bool = True) -> str:
    """A number for people: 4 significant digits, thousands separators (``grouping``; not in
    lists, where the comma separates values), no 1e+05."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if grouping else str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        size = abs(value)
        if size == 0:
            return "0"
        if size >= 1e5:
            return f"{value:,.0f}" if grouping else f"{value:.0f}"
        if size >= 1e-3:
            return f"{value:.4g}"
        return f"{value:.3g}"
    if value is None:
        return NONE
    return str(value)


def _cell(value: Any) -> str:
    """One table cell: a formatted scalar, or a (shortened) list of scalars."""
    if isinstance(value, list):
        if not _is_cell_value(value):
            return _text(f"{len(value)} entries (see the full record)")
        shown = ", ".join(_fmt(v, grouping=False) for v in value[:_MAX_LIST])
        if len(value) > _MAX_LIST:
            shown += f", ... ({len(value)} values)"
        return _text(f"[{shown}]")
    if isinstance(value, dict):
        return _text(f"{len(value)} entries (see the full record)")
    return _text(_fmt(value))


def _when(date: Any) -> str:
    if not date:
        return NONE
    try:
        stamp = datetime.fromisoformat(str(date))
    except ValueError:
        return _text(date)
    if stamp.utcoffset() is not None:
        stamp = stamp.astimezone(timezone.utc)
        return stamp.strftime("%Y-%m-%d %H:%M UTC")
    return stamp.strftime("%Y-%m-%d %H:%M")


def _commit(commit: Any) -> str:
    if not commit:
        return NONE
    commit = str(commit)
    dirty = commit.endswith("+dirty")
    text = f"`{commit.removesuffix('+dirty')[:12]}`"
    return text + (" with uncommitted changes" if dirty else "")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _grid(title: str, row_names: list[str], columns: list[str],
          cells: dict[tuple[str, str], Any]) -> list[str]:
    """A titled table of ``cells[(row, column)]``, transposed or split to fit the page."""
    if len(columns) > _MAX_COLUMNS and len(row_names) < len(columns):
        row_names, columns = columns, row_names
        cells = {(c, r): v for (r, c), v in cells.items()}
    out = [f"**{_label(title)}**", ""]
    for start in range(0, len(columns), _MAX_COLUMNS):
        chunk = columns[start:start + _MAX_COLUMNS]
        rows = [[_label(r)] + [_cell(cells[(r, c)]) if (r, c) in cells else "" for c in chunk]
                for r in row_names]
        out += _table([""] + [_label(c) for c in chunk], rows) + [""]
    return out


def _result_blocks(results: dict[str, Any]) -> list[str]:
    """Every result as markdown tables: loose values first, then one table per group."""
    loose: list[tuple[str, Any]] = []
    blocks: list[str] = []
    for key, value in sorted(results.items(), key=lambda kv: natural_key(kv[0])):
        if _is_cell_value(value) or (isinstance(value, dict) and not value):
            loose.append((key, value))
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            names = [str(i + 1) for i in range(len(value))]
            cells = {(n, k): v for n, row in zip(names, value) for k, v in _flatten(row)}
            columns = list(dict.fromkeys(k for row in value for k, _ in _flatten(row)))
            blocks += _grid(f"{key} (one row each)", names, columns, cells)
        elif isinstance(value, dict):
            groups = {k: v for k, v in value.items() if isinstance(v, dict) and v}
            rest = {k: v for k, v in value.items() if k not in groups}
            if len(groups) < 2:  # no rows to line up: one key-value table
                groups, rest = {}, value
            if groups:
                names = sorted(groups, key=natural_key)
                cells = {(n, k): v for n in names for k, v in _flatten(groups[n])}
                columns = list(dict.fromkeys(k for n in names for k, _ in _flatten(groups[n])))
                blocks += _grid(key, names, columns, cells)
            if rest:  # under its own title without the prefix, else prefixed
                flat = _flatten(rest, key if groups else "")
                flat = sorted(flat, key=lambda kv: natural_key(kv[0]))
                if not groups:
                    blocks += [f"**{_label(key)}**", ""]
                blocks += _table(["result", "value"],
                                 [[_label(k), _cell(v)] for k, v in flat]) + [""]
        else:  # a list mixing scalars and containers
            loose.append((key, value))
    head: list[str] = []
    if loose:
        head = _table(["result", "value"], [[_label(k), _cell(v)] for k, v in loose]) + [""]
    return head + blocks


def measure(fn: Callable[[], Any], *, repeat: int = 3, trace_memory: bool = False
            ) -> dict[str, Any]:
    """Run ``fn`` ``repeat`` times; return median/min seconds (and peak Python memory)."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    times, peak = [], None
    for i in range(repeat):
        if trace_memory and i == 0:
            tracemalloc.start()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if trace_memory and i == 0:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    out: dict[str, Any] = {"median_s": statistics.median(times), "min_s": min(times),
                           "repeat": repeat}
    if peak is not None:
        out["peak_python_memory_mib"] = peak / 2**20
    return out


def save_record(name: str, *, description: str, target: str, target_met: bool | None,
                results: dict[str, Any], parameters: dict[str, Any] | None = None,
                wall_time_s: float | None = None, command: str | None = None,
                argv: list[str] | None = None, directory: str | Path | None = None,
                headline: dict[str, Any] | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (atomically) with provenance; say where.

    ``command`` defaults to the running script (relative path) followed by ``argv`` (the
    arguments it was called with; ``sys.argv[1:]`` when None). ``headline`` names the numbers
    that answer the target, ``{label: value}`` with scalar or list-of-scalar values: the
    book's benchmark table shows them as the result (without it, the top-level scalars).
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"name must be a file-name-safe string (letters, digits, _ . -), "
                         f"got {name!r}")
    if isinstance(target_met, np.bool_):
        target_met = bool(target_met)
    if target_met is not None and not isinstance(target_met, bool):
        raise TypeError(f"target_met must be True, False or None, got {target_met!r}")
    if not isinstance(results, dict):
        raise TypeError(f"results must be a dict, got {type(results).__name__}")
    if headline is not None:
        if not isinstance(headline, dict) or not all(isinstance(k, str) for k in headline):
            raise TypeError(f"headline must be a dict with string labels, got {headline!r}")
        bad = [k for k, v in headline.items() if not _is_cell_value(v)]
        if bad:
            raise ValueError(f"headline values must be scalars or lists of scalars; "
                             f"not so for {bad}")
    if command is None:
        args = sys.argv[1:] if argv is None else list(argv)
        command = " ".join([os.path.relpath(sys.argv[0]), *args])
    directory = Path(directory) if directory else repo_root() / "benchmarks" / "results"
    record = {"name": name, "description": description, "target": target,
              "target_met": target_met, "results": results,
              "provenance": provenance(command, parameters, wall_time_s)}
    if headline:
        record["headline"] = headline
    path = write_json(directory / f"{name}.json", record)
    print(f"record written to {path} (target met: {target_met})")
    return path


def load_records(directory: str | Path) -> list[BenchmarkRecord]:
    """Every ``*.json`` record in ``directory``, sorted by name (naturally)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"directory {str(directory)!r} is not a folder of benchmark records")
    paths = sorted(directory.glob("*.json"), key=lambda p: natural_key(p.stem))
    return [BenchmarkRecord.from_json(p) for p in paths]


def records_overview(records: Sequence[BenchmarkRecord]) -> str:
    """One MyST table line per record: target met, when, at which commit, wall time."""
    rows = [[f"`{r.name}`", {True: "yes", False: "**no**", None: "no target"}[r.target_met],
             _when(r.provenance.get("date")), _commit(r.provenance.get("commit")),
             f"{_fmt(r.provenance['wall_time_s'])} s"
             if r.provenance.get("wall_time_s") is not None else NONE]
            for r in records]
    return "\n".join(_table(["benchmark", "target met", "measured on", "commit", "wall time"],
                            rows))


def records_table(records: list[BenchmarkRecord]):
    """A pandas DataFrame: one row per record with verdict, date, commit and hardware."""
    import pandas as pd

    rows = []
    for r in records:
        hw = r.provenance.get("hardware", {})
        rows.append({"benchmark": r.name,
                     "target met": {True: "yes", False: "no", None: "-"}[r.target_met],
                     "date": r.provenance.get("date", "?"),
                     "commit": str(r.provenance.get("commit", "?"))[:12],
                     "cpu cores": hw.get("cpu_count", "?"), "gpu": hw.get("gpu", "-"),
                     "wall time (s)": r.provenance.get("wall_time_s")})
    return pd.DataFrame(rows, columns=["benchmark", "target met", "date", "commit", "cpu cores",
                                       "gpu", "wall time (s)"]).set_index("benchmark")
