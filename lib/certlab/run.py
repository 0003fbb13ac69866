"""Run a chapter notebook with papermill.

Usage::

    python -m certlab.run notebooks/12_smoothing_node_classification.py -p n 100000
    python -m certlab.run notebooks/x.py -p dataset '"citeseer"' --out results/x-citeseer
    python -m certlab.run --inplace notebooks/*.py      # re-execute at defaults (make notebooks)

A chapter is a jupytext py:percent file whose cell tagged ``parameters`` holds its defaults.
``-p NAME VALUE`` overrides one of them. Values are Python literals (``100``, ``0.5``,
``"cora_ml"``, ``[1, 2]``, ``True``); a bare word is taken as a string. Before anything runs,
the values are checked: names that are not in the parameters cell, a name given twice,
values whose type does not match the default's, and values the chapter's schema
(:mod:`certlab.parameters`) refuses are errors, and so are an ``--out`` that is a file, not
empty or not writable, and a ``--timeout`` that is not a positive number of seconds.

- ``--inplace`` (no ``-p`` allowed) executes at the defaults and rewrites the paired
  ``.ipynb`` next to the ``.py``, stamping it with the library hash
  (:func:`certlab.provenance.lib_hash`) so the tests can tell whether its outputs are current.
- Otherwise the executed notebook, ``provenance.json`` (command, parameters, commit,
  hardware, wall time, date) and ``record.json`` (parameters, library hash and the key
  numbers the chapter saved with :func:`certlab.records.save_record`) go to ``--out``
  (default ``results/<chapter>-<UTC time>/``), which appears at once, complete, or not at all;
  the paired notebook is never touched.

A failed, interrupted (Ctrl-C, SIGINT) or terminated (SIGTERM) run writes nothing and leaves no
temporary files; exit status 1 (the chapter failed), 2 (bad input), 130 / 143 (SIGINT / SIGTERM).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .parameters import SCHEMAS, ParameterError, validate_parameters
from .provenance import git_commit, lib_hash, provenance, repo_root, write_json
from .records import RECORD_ENV

__all__ = ["ParameterError", "Interrupted", "ChapterRun", "chapter_defaults",
           "check_parameters", "parse_parameters", "check_out_dir", "run_chapter",
           "execute_chapter", "abort_active_runs", "main"]

_KERNEL = "python3"

# The runs executing in this process (a Dask worker may hold several): their temporary
# folder and, once started, their kernel manager; see abort_active_runs.
_ACTIVE: dict[int, dict[str, Any]] = {}
_ACTIVE_LOCK = threading.Lock()


class Interrupted(KeyboardInterrupt):
    """The run received SIGINT or SIGTERM; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` in the main thread, so that every
    ``finally`` (kernel shutdown, temporary folders) runs before the process ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _read(path: Path):
    import jupytext

    path = Path(path)
    if path.suffix != ".py":
        raise ValueError(f"{path}: give the chapter's py:percent file (notebooks/<chapter>.py)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such chapter file")
    return jupytext.read(path)


def _parameters_cell(nb, name: str):
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{name}: expected exactly one cell tagged 'parameters', "
                         f"found {len(cells)}")
    return cells[0]


def _defaults_of(nb, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(_parameters_cell(nb, name).source, f"{name}:parameters", "exec"), {},
         namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def chapter_defaults(path: str | os.PathLike) -> dict[str, Any]:
    """The default parameters of a chapter: the names bound in its ``parameters`` cell."""
    return _defaults_of(_read(Path(path)), str(path))


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _coerce(name: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif isinstance(value, type(default)):
        return value
    raise ParameterError(f"parameter {name!r} expects a {type(default).__name__} "
                         f"(default {default!r}), got {value!r}")


def _check_against(name: str, stem: str, defaults: Mapping[str, Any],
                   overrides: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in defaults:
            raise ParameterError(f"{name}: unknown parameter {key!r}; valid parameters: "
                                 f"{', '.join(sorted(defaults))}")
        out[key] = _coerce(key, value, defaults[key])
    if stem in SCHEMAS:
        validate_parameters(stem, {**defaults, **out}, base_dir=base_dir)
    return out


def check_parameters(path: str | os.PathLike, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validate typed parameter overrides of a chapter; return them (ints given for float
    defaults become floats). This is the one validated path of ``certlab.run`` and
    ``certlab.sweep``: names must be in the parameters cell, types must match the defaults,
    and the full set (defaults + overrides) must pass the chapter's schema
    (:mod:`certlab.parameters`; chapters without a registered schema get the first two
    checks only). Raises :class:`ParameterError`."""
    path = Path(path)
    return _check_against(str(path), path.stem, chapter_defaults(path), overrides, path.parent)


def parse_parameters(path: str | os.PathLike, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Validate ``-p NAME VALUE`` pairs (texts) against the chapter; return typed values.

    A name given twice is an error (the runner never guesses which one was meant)."""
    seen: dict[str, str] = {}
    for name, text in pairs:
        if name in seen:
            raise ParameterError(f"parameter {name!r} given twice (-p {name} {seen[name]} and "
                                 f"-p {name} {text}): give each parameter once")
        seen[name] = text
    return check_parameters(path, {name: _literal(text) for name, text in pairs})


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Check before running that ``out_dir`` can receive a run's results: it must not be a
    file nor a non-empty folder, and its nearest existing parent must be a writable folder.
    Raises ``ValueError`` / ``FileExistsError`` naming the problem; creates nothing."""
    out = Path(out_dir)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise FileExistsError(f"--out {out}: is a file, not a folder")
        if any(out.iterdir()):
            raise FileExistsError(f"--out {out}: exists and is not empty; choose another "
                                  f"--out")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot write in {parent} (permission denied)")
    return out


@dataclass
class ChapterRun:
    """An executed chapter, held in memory (so that it can travel from a Dask worker).

    Attributes:
        stem: the chapter's file name without suffix.
        notebook: the executed notebook (nbformat JSON text).
        provenance: command, parameters, commit, hardware, wall time, date, lib hash.
        record: ``{"chapter", "parameters", "lib_hash", "values"}``; ``values`` are the key
            numbers the chapter saved with :func:`certlab.records.save_record` (``{}`` if none).
    """

    stem: str
    notebook: str
    provenance: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write ``<stem>.ipynb``, ``provenance.json`` and ``record.json`` into ``out_dir``
        atomically: they are staged in a hidden sibling folder that is renamed into place,
        so ``out_dir`` appears complete or not at all. ``out_dir`` must be absent or empty."""
        out = check_out_dir(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.part-"))
        try:
            (stage / f"{self.stem}.ipynb").write_text(self.notebook)
            write_json(stage / "provenance.json", self.provenance)
            write_json(stage / "record.json", self.record)
            os.chmod(stage, 0o755)
            if out.is_dir():
                out.rmdir()  # empty (checked above)
            os.rename(stage, out)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return out


def _kernel_manager_with_env(env: Mapping[str, str], log, entry: dict[str, Any]):
    """An AsyncKernelManager class whose kernels start with ``env`` added to the
    environment (per run, so parallel runs in one process do not share it) and their own
    log (IPKernelApp messages, e.g. its complaints when it is shut down mid-cell) going to the
    open file ``log`` instead of the user's terminal. The started manager is put in
    ``entry["km"]`` (for :func:`abort_active_runs`)."""
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)

    class _EnvKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):  # type: ignore[override]
            kw["env"] = {**os.environ, **kw.get("env", {}), **extra}
            kw["stderr"] = log
            kw["stdout"] = log
            result = await super().start_kernel(**kw)
            entry["km"] = self
            return result

    return _EnvKernelManager


def _clean(nb, parameters: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Drop per-run timing metadata; stamp the library hash and the parameters."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata["certlab"] = {"lib_hash": lib_hash(), "parameters": {**defaults, **parameters}}


@contextlib.contextmanager
def _registered(tmp: str) -> Iterator[dict[str, Any]]:
    entry: dict[str, Any] = {"tmp": tmp}
    with _ACTIVE_LOCK:
        _ACTIVE[id(entry)] = entry
    try:
        yield entry
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(id(entry), None)


def _kernel_pid(entry: Mapping[str, Any]) -> int | None:
    provisioner = getattr(entry.get("km"), "provisioner", None)
    return getattr(provisioner, "pid", None)


def abort_active_runs(grace_s: float = 10.0) -> int:
    """Stop every chapter run executing in this process (a Dask worker on Ctrl-C): interrupt
    each kernel (the cell raises KeyboardInterrupt, papermill fails and cleans up), wait up
    to ``grace_s`` seconds, then kill the kernels left and remove their temporary folders.
    Returns how many runs were active."""
    with _ACTIVE_LOCK:
        entries = list(_ACTIVE.values())
    for entry in entries:
        pid = _kernel_pid(entry)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        with _ACTIVE_LOCK:
            if not any(id(e) in _ACTIVE for e in entries):
                break
        time.sleep(0.1)
    with _ACTIVE_LOCK:
        left = [e for e in entries if id(e) in _ACTIVE]
    for entry in left:
        pid = _kernel_pid(entry)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(entry["tmp"], ignore_errors=True)
    return len(entries)


class _UnknownParameterFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passed unknown parameter")


def _drop_papermill_unknown_parameter_warnings() -> None:
    log = logging.getLogger("papermill")
    if not any(isinstance(f, _UnknownParameterFilter) for f in log.filters):
        log.addFilter(_UnknownParameterFilter())


def _execute(nb, stem: str, parameters: dict[str, Any], defaults: dict[str, Any], *,
             cwd: Path, timeout_s: int | None) -> tuple[str, dict[str, Any], float]:
    """Execute a (jupytext) notebook with papermill in a temporary folder that is always
    removed. Returns (executed notebook JSON, saved record values, wall time in s)."""
    import nbformat
    import papermill

    # papermill re-reads the parameters cell to infer types: it warns "Unable to parse line"
    # for every comment holding an "=" (our help texts do) and then "Passed unknown
    # parameter" for the parameters it could not parse. certlab validates the parameters
    # itself (certlab.parameters), so both warnings are noise here
    logging.getLogger("papermill.translators").setLevel(logging.ERROR)
    _drop_papermill_unknown_parameter_warnings()
    nb.metadata.setdefault("kernelspec", {"name": _KERNEL, "display_name": "Python 3",
                                          "language": "python"})
    nb.metadata.setdefault("language_info", {"name": "python"})
    with tempfile.TemporaryDirectory(prefix="certlab-run-", ignore_cleanup_errors=True) as tmp, \
            _registered(tmp) as entry:
        source = Path(tmp) / f"{stem}.ipynb"
        executed = Path(tmp) / f"{stem}.executed.ipynb"
        record_path = Path(tmp) / "record.json"
        nbformat.write(nb, source)
        start = time.perf_counter()
        with open(Path(tmp) / "kernel.log", "w+") as log:
            try:
                papermill.execute_notebook(
                    str(source), str(executed), parameters=parameters, kernel_name=_KERNEL,
                    cwd=str(cwd), progress_bar=False, execution_timeout=timeout_s,
                    kernel_manager_class=_kernel_manager_with_env(
                        {RECORD_ENV: str(record_path)}, log, entry))
            except Exception:  # the kernel's own log can say why (it died, could not start)
                log.seek(0)
                lines = [ln for ln in log.read().splitlines() if "running over TCP" not in ln]
                if lines:
                    print("kernel log (last lines):", *lines[-20:], sep="\n  ",
                          file=sys.stderr)
                raise
        wall = time.perf_counter() - start
        result = nbformat.read(executed, as_version=4)
        _clean(result, parameters, defaults)
        values = json.loads(record_path.read_text()) if record_path.exists() else {}
        return nbformat.writes(result), values, wall


def run_chapter(chapter: str | os.PathLike, parameters: Mapping[str, Any] | None = None, *,
                source: str | None = None, timeout_s: int | None = None,
                command: str | list[str] | None = None) -> ChapterRun:
    """Validate and execute a chapter; return the executed notebook, its provenance and its
    record in memory (nothing is written).

    Args:
        chapter: ``notebooks/<stem>.py``. With ``source`` (the file's text, as a Dask client
            sends it to a worker without a shared filesystem) only its name is used, and the
            notebook runs in this machine's ``notebooks/`` folder when there is one.
        parameters: typed overrides, checked by :func:`check_parameters`.
        timeout_s: per-cell time limit (positive) or None.
    """
    import jupytext

    path = Path(chapter)
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, int)
                                  or timeout_s <= 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if source is None:
        nb = _read(path)
        cwd = path.resolve().parent
    else:
        nb = jupytext.reads(source, fmt="py:percent")
        local = repo_root() / "notebooks"
        cwd = local if local.is_dir() else Path(tempfile.gettempdir())
    defaults = _defaults_of(nb, str(path))
    params = _check_against(str(path), path.stem, defaults, dict(parameters or {}), cwd)
    # what runs is the code at the start: a run can take hours, and the working tree (commit,
    # library) may change meanwhile without changing the kernel's already imported library
    commit, library = git_commit(), lib_hash()
    notebook, values, wall = _execute(nb, path.stem, params, defaults, cwd=cwd,
                                      timeout_s=timeout_s)
    full = {**defaults, **params}
    record = provenance(command, full, wall)
    record["commit"] = commit
    record["chapter"] = str(chapter)
    record["lib_hash"] = library
    return ChapterRun(path.stem, notebook, record,
                      {"chapter": str(chapter), "parameters": full, "lib_hash": library,
                       "values": values})


def execute_chapter(path: str | os.PathLike, parameters: dict[str, Any] | None = None, *,
                    output: str | os.PathLike, timeout_s: int | None = None) -> float:
    """Execute a chapter and write only the executed notebook to ``output`` (atomically;
    on failure nothing is written and the error is raised). Returns the wall time in s."""
    run = run_chapter(path, parameters, timeout_s=timeout_s)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(run.notebook)
        os.chmod(staged, 0o644)
        os.replace(staged, output)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    return run.provenance["wall_time_s"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number of seconds, "
                                         f"got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certlab.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="+", help="chapter files notebooks/<chapter>.py")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="override a parameter (once each)")
    parser.add_argument("--out", help="output folder for a parameterized run "
                        "(default results/<chapter>-<UTC time>)")
    parser.add_argument("--inplace", action="store_true",
                        help="execute at the defaults and rewrite the paired .ipynb")
    parser.add_argument("--timeout", type=_positive_int, default=None,
                        help="per-cell timeout (s, positive)")
    args = parser.parse_args(argv)

    if args.inplace and (args.parameter or args.out):
        parser.error("--inplace runs at the default parameters; a parameterized run writes "
                     "to results/ (use --out) and never into the paired notebook")
    if not args.inplace and len(args.chapters) != 1:
        parser.error("a parameterized run takes exactly one chapter")
    with stop_on_signals():
        try:
            if args.inplace:
                for chapter in args.chapters:
                    chapter_defaults(chapter)  # fails early on a chapter without parameters
                for chapter in args.chapters:
                    path = Path(chapter)
                    print(f"executing {path} ...", flush=True)
                    wall = execute_chapter(path, output=path.with_suffix(".ipynb"),
                                           timeout_s=args.timeout)
                    print(f"  wrote {path.with_suffix('.ipynb')} ({wall:.1f} s)", flush=True)
                return 0
            path = Path(args.chapters[0])
            params = parse_parameters(path, [tuple(p) for p in args.parameter])
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            out_dir = Path(args.out) if args.out else \
                repo_root() / "results" / f"{path.stem}-{stamp}"
            check_out_dir(out_dir)
            run = run_chapter(path, params, timeout_s=args.timeout,
                              command=["python", "-m", "certlab.run",
                                       *(sys.argv[1:] if argv is None else argv)])
            run.write(out_dir)
            print(f"wrote {out_dir} ({run.provenance['wall_time_s']:.1f} s)")
            return 0
        except Interrupted as exc:
            # the kernel was stopped under nbclient's pending request: asyncio would log that
            # orphaned task's DeadKernelError with a traceback when it is collected at exit
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            print(f"{exc}: stopped, nothing written", file=sys.stderr)
            return 128 + exc.signum
        except (ValueError, FileNotFoundError, FileExistsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # papermill's execution errors: report, write nothing
            name = type(exc).__name__
            if name == "PapermillExecutionError":
                print(f"error: the chapter failed while executing: {exc}", file=sys.stderr)
                return 1
            raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
