"""Provenance records: how, where and when a stored result was produced.

Every result file the project writes (parameterized chapter runs under ``results/``,
benchmark records under ``benchmarks/results/``) carries a record from :func:`provenance`
and is written atomically by :func:`write_json`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["git_commit", "hardware", "lib_hash", "provenance", "repo_root", "write_json"]


def repo_root() -> Path:
    """The project's root folder (where ``lib/``, ``notebooks/`` and ``benchmarks/`` live).

    Valid for the editable install that ``make setup`` makes.
    """
    return Path(__file__).resolve().parents[2]


def lib_hash() -> str:
    """sha256 over every ``.py`` file of the certlab package (relative path and content).

    Executed notebooks store it, and a test checks that their outputs are current with
    ``lib/``: change the library, re-execute the chapters.
    """
    import hashlib

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The current git commit (with ``+dirty`` when the work tree has changes), or "unknown"."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def hardware() -> dict[str, Any]:
    """CPU, core count, memory and (when present) the CUDA device used."""
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    return info


def describe_hardware(info: dict[str, Any], short: bool = False) -> str:
    """A :func:`hardware` record in words, for pages and chapters.

    ``"2 CPU cores, 1 torch thread, no GPU, 23.5 GiB memory, torch 2.13.0+cpu"``; with
    ``short``, only the device: ``"NVIDIA H100"`` or ``"2-core CPU, 1 thread"``. Keys a record
    lacks are left out; ``""`` for an empty record.
    """
    if not isinstance(info, dict):
        raise TypeError(f"info must be a hardware() record (a dict), got {type(info).__name__}")

    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    cores, threads, gpu = info.get("cpu_count"), info.get("torch_threads"), info.get("gpu")
    if short:
        if gpu:
            return str(gpu)
        cpu = f"{cores}-core CPU" if cores is not None else ("CPU" if info else "")
        return cpu + (f", {count(threads, 'thread')}" if threads is not None else "")
    parts = []
    if cores is not None:
        parts.append(count(cores, "CPU core"))
    if threads is not None:
        parts.append(count(threads, "torch thread"))
    if info:
        parts.append(f"GPU: {gpu}" if gpu else "no GPU")
    if info.get("memory_gib") is not None:
        parts.append(f"{info['memory_gib']:g} GiB memory")
    if info.get("torch"):
        parts.append(f"torch {info['torch']}")
    return ", ".join(parts)


def provenance(command: str | list[str] | None = None, parameters: dict | None = None,
               wall_time_s: float | None = None) -> dict[str, Any]:
    """A provenance record: command, parameters, commit, hardware, wall time and date (UTC)."""
    if isinstance(command, list):
        command = " ".join(command)
    return {
        "command": command if command is not None else " ".join([sys.executable, *sys.argv]),
        "parameters": parameters or {},
        "commit": git_commit(),
        "hardware": hardware(),
        "python": sys.version.split()[0],
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True, default=_jsonable)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")
