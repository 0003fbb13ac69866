"""Parameter sweeps of a chapter on Dask.

Usage::

    python -m certlab.sweep sweeps/12_paper_scale.yaml                 # local, one worker a core
    python -m certlab.sweep SPEC.yaml --workers 4 --out results/paper/12
    python -m certlab.sweep SPEC.yaml --scheduler tcp://10.0.0.5:8786  # an existing cluster

A spec is YAML::

    chapter: notebooks/12_smoothing_node_classification.py  # relative: to the current
                                                           # folder, else the project root
    parameters: {n0: 1000, n: 100000}                       # fixed for every point
    grid:                                                   # Cartesian product
      models: [[gcn], [gat], [appnp]]
      seed: [0, 1]
    timeout: 3600        # optional: per-cell time limit (s)
    out: results/paper/12_smoothing_node_classification    # optional: default of --out
    description: ...     # optional: free text

Every grid point is checked (names, types and the chapter's schema, as ``certlab.run`` does)
before anything is submitted. Each point then runs as one Dask task: the worker executes the
chapter with papermill (:func:`certlab.run.run_chapter`, from the chapter's text the client
sends, so no shared filesystem is needed) and sends back the executed notebook, its
``provenance.json`` and its ``record.json``; the client writes them to ``DIR/<point-id>/``
atomically. Re-running a spec skips the points whose ``record.json`` holds the same parameters
and library hash (:func:`certlab.provenance.lib_hash`); with ``--keep-stored`` the same
parameters suffice, whichever library version wrote the record (its own provenance says
which), so that a paper-scale run split into pieces over several working sessions runs only
its missing pieces after the library changed. A failing point is reported with its
traceback (also in ``DIR/_failed/<point-id>.txt``) and does not stop the others; Ctrl-C or
SIGTERM cancels the sweep (points already written stay and count on the next run).
``DIR/sweep-<spec name>.json`` summarizes the spec's last run (one file per spec, so that
several specs can share an output folder, as chapter 12's pieces do).

Exit status: 0 every point done, 1 some point failed, 2 bad spec or arguments, 130 / 143
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .parameters import ParameterError, complete_stored_parameters
from .provenance import hardware, git_commit, lib_hash, repo_root, write_json
from .run import (ChapterRun, Interrupted, abort_active_runs, chapter_defaults,
                  check_parameters, run_chapter, stop_on_signals)

__all__ = ["SweepSpec", "Point", "load_spec", "plan", "summary_path", "run_sweep", "main"]

_SPEC_KEYS = {"chapter", "parameters", "grid", "timeout", "out", "description"}


class SpecError(ValueError):
    """A sweep spec is malformed (the message names the key and the spec file)."""


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec. ``grid`` keeps the spec's order (the point ids follow it)."""

    path: Path
    chapter: Path
    parameters: dict[str, Any]
    grid: dict[str, list]
    timeout: int | None = None
    out: Path | None = None


@dataclass(frozen=True)
class Point:
    """One grid point: its id (the folder name), its overrides and the full parameters."""

    id: str
    overrides: dict[str, Any]
    parameters: dict[str, Any]


def _resolve(text: str, what: str, spec: Path) -> Path:
    path = Path(text)
    if path.is_absolute() or path.exists():
        return path
    return repo_root() / path


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and check a spec file (keys, types, chapter file). Raises :class:`SpecError`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping with keys chapter, parameters, grid")
    unknown = sorted(set(map(str, data)) - _SPEC_KEYS)
    if unknown:
        raise SpecError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: "
                        f"{', '.join(sorted(_SPEC_KEYS))}")
    if not isinstance(data.get("chapter"), str):
        raise SpecError(f"{path}: 'chapter' must name the chapter file "
                        f"(notebooks/<chapter>.py), got {data.get('chapter')!r}")
    chapter = _resolve(data["chapter"], "chapter", path)
    if chapter.suffix != ".py" or not chapter.is_file():
        raise SpecError(f"{path}: chapter {data['chapter']!r}: no such py:percent file "
                        f"(looked in the current folder and {repo_root()})")
    parameters = data.get("parameters") or {}
    grid = data.get("grid") or {}
    if not isinstance(parameters, dict):
        raise SpecError(f"{path}: 'parameters' must be a mapping name: value")
    if not isinstance(grid, dict):
        raise SpecError(f"{path}: 'grid' must be a mapping name: [values]")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{path}: grid {name!r} must be a non-empty list of values, "
                            f"got {values!r}")
    both = sorted(set(parameters) & set(grid))
    if both:
        raise SpecError(f"{path}: {', '.join(map(repr, both))} in both 'parameters' and "
                        f"'grid': give each parameter once")
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)
                                or timeout <= 0):
        raise SpecError(f"{path}: 'timeout' must be a positive number of seconds, "
                        f"got {timeout!r}")
    out = data.get("out")
    if out is not None and not isinstance(out, str):
        raise SpecError(f"{path}: 'out' must be a folder path, got {out!r}")
    return SweepSpec(path, chapter, dict(parameters), {k: list(v) for k, v in grid.items()},
                     timeout, None if out is None else repo_root() / out
                     if not Path(out).is_absolute() else Path(out))


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ""))
    return re.sub(r"[^A-Za-z0-9.+-]+", "", text.replace(",", "+").replace(" ", ""))[:24]


def point_id(overrides: Mapping[str, Any], grid_names: list[str]) -> str:
    """A stable, readable folder name: the grid values and a hash of all overrides."""
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode())
    slug = "_".join(f"{name}-{_slug(overrides[name])}" for name in grid_names)[:100]
    return f"{slug}_{digest.hexdigest()[:8]}" if slug else digest.hexdigest()[:8]


def plan(spec: SweepSpec) -> list[Point]:
    """The grid points, each checked like a ``certlab.run`` invocation (ParameterError)."""
    defaults = chapter_defaults(spec.chapter)
    names = list(spec.grid)
    points, seen = [], set()
    for values in itertools.product(*(spec.grid[n] for n in names)):
        overrides = {**spec.parameters, **dict(zip(names, values))}
        try:
            typed = check_parameters(spec.chapter, overrides)
        except ParameterError as exc:
            where = ", ".join(f"{n}={v!r}" for n, v in zip(names, values)) or "the spec"
            raise ParameterError(f"{spec.path}: at {where}: {exc}") from None
        pid = point_id(typed, names)
        if pid in seen:
            raise SpecError(f"{spec.path}: the grid repeats a point ({pid})")
        seen.add(pid)
        full = json.loads(json.dumps({**defaults, **typed}, default=str))
        points.append(Point(pid, typed, full))
    return points


def is_done(out_dir: Path, point: Point, library: str | None) -> bool:
    """Whether ``out_dir/<id>/record.json`` holds this point's parameters and ``library``
    (``None``: whichever library hash it holds). Parameters the chapter gained after the
    record was written count with the value the run used
    (:func:`certlab.parameters.complete_stored_parameters`)."""
    try:
        record = json.loads((out_dir / point.id / "record.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or not isinstance(record.get("parameters"), dict):
        return False
    stored = complete_stored_parameters(Path(str(record.get("chapter", ""))).stem,
                                        record["parameters"])
    if stored != point.parameters:
        return False
    return library is None or record.get("lib_hash") == library


def _run_point(chapter: str, source: str, overrides: dict[str, Any], timeout_s: int | None,
               command: str) -> dict[str, Any]:
    """The Dask task: run one point on a worker; never raises (a failure is returned with
    its traceback, since papermill's exceptions do not all travel)."""
    try:
        run = run_chapter(chapter, overrides, source=source, timeout_s=timeout_s,
                          command=command)
        return {"ok": True, "run": run}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}\n"
                                      + "".join(traceback.format_exc())}


def _replace_dir(run: ChapterRun, target: Path) -> None:
    """Write ``run`` to ``target`` atomically, replacing an older result there."""
    if not target.exists():
        run.write(target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    os.rename(target, old / "x")
    try:
        run.write(target)
    except BaseException:
        os.rename(old / "x", target)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def summary_path(out_dir: str | os.PathLike, spec: SweepSpec) -> Path:
    """Where :func:`run_sweep` writes the summary of ``spec``'s last run in ``out_dir``:
    ``out_dir/sweep-<spec file name without .yaml>.json``."""
    return Path(out_dir) / f"sweep-{spec.path.stem}.json"


def run_sweep(spec: SweepSpec, out_dir: str | os.PathLike, *, workers: int | None = None,
              scheduler: str | None = None, progress: bool = True,
              command: str = "python -m certlab.sweep",
              keep_stored: bool = False) -> dict[str, Any]:
    """Run every point of ``spec`` not done yet in ``out_dir``; return the summary that is
    also written to :func:`summary_path` (points done, skipped, failed with tracebacks).

    ``workers``: worker processes of the embedded ``distributed.LocalCluster`` (default: the
    cores); ``scheduler``: the address of an existing Dask scheduler instead;
    ``keep_stored``: a point counts as done when its record has the same parameters, whatever
    library hash it holds (by default the hash must be this library's too).
    """
    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("workers applies to the embedded cluster; with scheduler the "
                         "cluster's own workers run the points")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out}: is a file, not a folder")
    if not isinstance(keep_stored, bool):
        raise ValueError(f"keep_stored must be True or False, got {keep_stored!r}")
    points = plan(spec)
    library = lib_hash()
    todo = [p for p in points if not is_done(out, p, None if keep_stored else library)]
    skipped = [p.id for p in points if p not in todo]
    source = spec.chapter.read_text()
    out.mkdir(parents=True, exist_ok=True)
    failed_dir = out / "_failed"
    summary: dict[str, Any] = {
        "spec": str(spec.path), "chapter": str(spec.chapter), "lib_hash": library,
        "commit": git_commit(repo_root()), "client_hardware": hardware(),
        "command": command, "points": len(points), "skipped": skipped,
        "keep_stored": keep_stored, "done": [],
        "failed": {}, "interrupted": False}
    start = time.perf_counter()
    if not todo:
        summary["wall_time_s"] = 0.0
        write_json(summary_path(out, spec), summary)
        return summary
    cluster = client = scratch = None
    futures = {}
    nonce = uuid.uuid4().hex[:8]  # fresh task keys: a long-lived cluster keeps old results
    try:
        if scheduler is not None:
            client = Client(scheduler)
        else:
            n = workers or os.cpu_count() or 1
            scratch = tempfile.mkdtemp(prefix="certlab-sweep-")
            cluster = LocalCluster(n_workers=min(n, len(todo)), threads_per_worker=1,
                                   processes=True, dashboard_address=None, memory_limit=0,
                                   local_directory=scratch)
            client = Client(cluster)
        for p in todo:
            fut = client.submit(_run_point, str(spec.chapter), source, p.overrides,
                                spec.timeout, f"{command} (point {p.id})", key=f"point-{p.id}-{nonce}",
                                pure=False)
            futures[fut] = p
        slots = sum(client.nthreads().values()) or 1
        bar = tqdm(total=len(todo), desc=spec.chapter.stem, unit="point", disable=not progress)
        try:
            for fut in as_completed(futures):
                p = futures[fut]
                result = fut.result()
                if result["ok"]:
                    _replace_dir(result["run"], out / p.id)
                    (failed_dir / f"{p.id}.txt").unlink(missing_ok=True)
                    summary["done"].append(p.id)
                else:
                    summary["failed"][p.id] = result["error"]
                    failed_dir.mkdir(exist_ok=True)
                    (failed_dir / f"{p.id}.txt").write_text(result["error"])
                    tqdm.write(f"point {p.id} failed:\n{result['error']}", file=sys.stderr)
                bar.update(1)
                pending = len(todo) - bar.n
                bar.set_postfix(running=min(pending, slots), failed=len(summary["failed"]))
        finally:
            bar.close()
    except BaseException as exc:
        summary["interrupted"] = isinstance(exc, KeyboardInterrupt)
        if client is not None and futures:
            client.cancel(list(futures))
            # cancelling does not stop a running task: stop its kernel on every worker
            with contextlib.suppress(Exception):
                client.run(abort_active_runs)
        raise
    finally:
        summary["wall_time_s"] = round(time.perf_counter() - start, 3)
        write_json(summary_path(out, spec), summary)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return summary


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certlab.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="the sweep spec (YAML)")
    parser.add_argument("--workers", type=_positive_int, default=None,
                        help="worker processes of the embedded LocalCluster (default: cores)")
    parser.add_argument("--scheduler", default=None,
                        help="address of an existing Dask scheduler (tcp://host:port)")
    parser.add_argument("--out", default=None,
                        help="output folder (default: the spec's 'out', else "
                             "results/sweeps/<spec name>)")
    parser.add_argument("--keep-stored", action="store_true",
                        help="skip a point whose record has the same parameters even if an "
                             "older library wrote it (default: same library hash too)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers sizes the embedded cluster; with --scheduler the existing "
                     "cluster's workers run the points")
    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    with stop_on_signals():
        try:
            spec = load_spec(args.spec)
            out = Path(args.out) if args.out else (
                spec.out or repo_root() / "results" / "sweeps" / spec.path.stem)
            summary = run_sweep(spec, out, workers=args.workers, scheduler=args.scheduler,
                                progress=not args.no_progress,
                                command=f"python -m certlab.sweep {argv_text}",
                                keep_stored=args.keep_stored)
        except Interrupted as exc:
            print(f"{exc}: sweep cancelled; finished points are kept and skipped next time",
                  file=sys.stderr)
            return 128 + exc.signum
        except (ValueError, FileNotFoundError, FileExistsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print(f"{out}: {len(summary['done'])} done, {len(summary['skipped'])} skipped "
          f"(already there), {len(summary['failed'])} failed "
          f"({summary['wall_time_s']:.1f} s)")
    for pid in summary["failed"]:
        print(f"  failed: {pid} (traceback in {out / '_failed' / (pid + '.txt')})")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
