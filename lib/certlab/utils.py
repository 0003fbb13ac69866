"""Small shared helpers: seeding, device choice and argument validation."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np

__all__ = ["seed_everything", "resolve_device", "as_float_array", "check_probability",
           "check_nonnegative_int", "check_finite"]


def seed_everything(seed: int, *, threads: int | None = None) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA), make PyTorch as deterministic as it
    allows, and return a NumPy generator.

    * ``torch.use_deterministic_algorithms(True, warn_only=True)``: every operation that has
      a deterministic implementation uses it (the few without one warn instead of failing);
      ``CUBLAS_WORKSPACE_CONFIG`` is set for deterministic cuBLAS on GPUs.
    * ``threads``: fixes PyTorch's intra-op thread count for the rest of the run, so that
      parallel reductions split the same way whatever ``OMP_NUM_THREADS`` a machine sets.

    Float results can still differ between CPUs with other instruction sets (AVX-512, AVX2,
    SSE): the chapters check such results as claims, not digit by digit (``certlab.checks``).
    """
    check_nonnegative_int(seed, "seed")
    if threads is not None and check_nonnegative_int(threads, "threads") < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is part of the pinned stack
        return np.random.default_rng(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads is not None:
        torch.set_num_threads(threads)
    return np.random.default_rng(seed)


def resolve_device(device: Any = "auto"):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a torch.device into a device.

    ``"auto"`` picks CUDA when a GPU is present, else the CPU. Asking for CUDA on a machine
    without one is an error that says so.
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(
                f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'"
            ) from exc
    else:
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available here")
    return dev


def as_float_array(value: Any, name: str) -> np.ndarray:
    """``value`` (a real number or a rectangular array of them) as a float64 array.

    Booleans count as 0/1. Raises ``TypeError`` naming ``name`` for strings, ``None`` and
    other non-numbers, ``ValueError`` for ragged nested sequences. NaN and inf pass through
    (see :func:`check_finite`).
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number or an array of numbers, got the string "
                        f"{value!r}")
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences (NumPy >= 1.24)
        raise ValueError(f"{name} must be a number or a rectangular array of numbers; got a "
                         f"ragged sequence {value!r}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a number or an array of numbers, got "
                        f"{value!r} (dtype {arr.dtype})")
    return arr.astype(np.float64, copy=False)


def check_finite(value: Any, name: str) -> np.ndarray:
    """:func:`as_float_array` that also refuses NaN and infinite entries (``ValueError``)."""
    arr = as_float_array(value, name)
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].reshape(-1)[:3].tolist()
        raise ValueError(f"{name} must be finite, found entries such as {bad}")
    return arr


def check_probability(value: Any, name: str, *, open_low: bool = False,
                      open_high: bool = False) -> np.ndarray:
    """Validate that ``value`` (scalar or array) lies in [0, 1] (or an open variant).

    Returns the value as a float64 array; raises ``ValueError`` naming ``name`` otherwise
    (``TypeError`` for strings, ``None`` and other non-numbers).
    """
    arr = as_float_array(value, name)
    if np.any(~np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    low_bad = arr <= 0 if open_low else arr < 0
    high_bad = arr >= 1 if open_high else arr > 1
    if np.any(low_bad) or np.any(high_bad):
        lo = "(" if open_low else "["
        hi = ")" if open_high else "]"
        raise ValueError(f"{name} must lie in {lo}0, 1{hi}, got {value!r}")
    return arr


def check_nonnegative_int(value: Any, name: str) -> int:
    """Validate a non-negative integer (bools are rejected) and return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)
