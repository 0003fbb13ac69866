"""A chapter's key results, printed in a form that is identical on every machine.

CI re-executes every chapter and nbval compares the cells tagged ``nbval-check-output`` with
the stored run character by character, on whatever x86-64 machine, CPU kernels
(``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS``) and thread count it runs. A chapter
therefore checks three kinds of result, and prints each in a form that cannot differ by
round-off:

* **exact** results come from exact or deterministic integer code (a certified radius, a
  number of flips, a count from an exhaustive enumeration, a data set's size). They are
  printed in full and any change is a regression.
* **claims** are the statements a chapter makes about results of float training or Monte
  Carlo estimation ("grafting 80% of the neurons verifies more images than the baseline",
  "the library matches brute force to 1e-12"). Only whether they hold is printed; the
  threshold is part of the statement, so it is stated, not hidden.
* **measured** values (accuracies, losses, times of float training) differ between machines
  by small amounts. They are kept in the record (:meth:`KeyResults.record`) and shown in the
  chapter's tables, but never printed by the checked cell.

Example::

    key = KeyResults("11_smoothing_certificate")
    key.exact("largest certified rd at p_lower = 0.999", 12)
    key.claim("library == brute force to 1e-12 on the whole ball", err < 1e-12)
    key.measured("smoothed accuracy (GCN)", 0.803)
    key.report()     # in a cell tagged nbval-check-output
"""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .records import save_record

__all__ = ["KeyResults", "RECORD_ENV"]

#: Environment variable naming a folder: when set, :meth:`KeyResults.report` also writes the
#: record to ``<folder>/<chapter>.json`` (used to measure how key results vary by machine).
RECORD_ENV = "CERTLAB_KEY_RESULTS"

_EXACT_SCALARS = (bool, int, str, Fraction, np.integer, np.bool_)


def _exact_value(value: Any, name: str) -> Any:
    """``value`` as a plain Python value that prints the same on every machine.

    Accepts booleans, integers, strings, fractions, ``None`` and (nested) lists or tuples of
    them; a float only when it is integral (e.g. a radius stored in a float array). Raises
    ``TypeError`` for anything else, so that round-off can never reach a checked cell.
    """
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else value
    if isinstance(value, _EXACT_SCALARS):
        return int(value) if isinstance(value, np.integer) else value
    if isinstance(value, (float, np.floating)):
        if math.isfinite(float(value)) and float(value).is_integer():
            return int(value)
        raise TypeError(f"exact result {name!r} is the non-integral float {value!r}: floats "
                        "carry round-off; record it with measured() or state a claim about it")
    if isinstance(value, np.ndarray):
        return [_exact_value(v, name) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_exact_value(v, name) for v in value]
    raise TypeError(f"exact result {name!r} has unsupported type {type(value).__name__}")


def _format(value: Any) -> str:
    """Print an exact value: fractions as ``p/q``, lists with their items formatted."""
    if isinstance(value, list):
        return "[" + ", ".join(repr(v) if isinstance(v, str) else _format(v)
                               for v in value) + "]"
    return str(value)


class KeyResults:
    """The key results of one chapter run (see the module docstring).

    Args:
        chapter: the chapter's stem, e.g. ``"11_smoothing_certificate"``.
    """

    def __init__(self, chapter: str) -> None:
        if not isinstance(chapter, str) or not chapter:
            raise ValueError(f"chapter must be a non-empty string, got {chapter!r}")
        self.chapter = chapter
        self._exact: dict[str, Any] = {}
        self._claims: dict[str, bool] = {}
        self._measured: dict[str, float] = {}

    def _new_name(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a key result needs a non-empty name, got {name!r}")
        if name in self._exact or name in self._claims or name in self._measured:
            raise ValueError(f"key result {name!r} is recorded twice")
        return name

    def exact(self, name: str, value: Any) -> Any:
        """Record a result of exact or deterministic integer code; returns ``value``."""
        self._exact[self._new_name(name)] = _exact_value(value, name)
        return value

    def claim(self, statement: str, holds: Any) -> bool:
        """Record whether ``statement`` holds (a bool, or a one-element array of one)."""
        arr = np.asarray(holds)
        if arr.dtype != np.bool_ or arr.size != 1:
            raise TypeError(f"claim {statement!r} needs a single boolean, got {holds!r}")
        self._claims[self._new_name(statement)] = bool(arr.item())
        return bool(arr.item())

    def measured(self, name: str, value: Any) -> float:
        """Record a float result that may differ by machine (recorded, never printed here)."""
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"measured result {name!r} is not finite: {value!r}")
        self._measured[self._new_name(name)] = number
        return number

    @property
    def all_claims_hold(self) -> bool:
        return all(self._claims.values())

    def lines(self) -> list[str]:
        """The checked lines: exact results in full, then each claim and whether it holds."""
        out = [f"{name}: {_format(value)}" for name, value in self._exact.items()]
        out += [f"[{'holds' if ok else 'FAILS'}] {statement}"
                for statement, ok in self._claims.items()]
        return out

    def report(self) -> None:
        """Print :meth:`lines` (the output nbval compares on every machine).

        The full :meth:`record` is saved with :func:`certlab.records.save_record` (it ends up
        in the ``record.json`` of a ``certlab.run`` or ``certlab.sweep`` run), and, when the
        environment variable ``CERTLAB_KEY_RESULTS`` names a folder, also written to
        ``<folder>/<chapter>.json`` (atomically).
        """
        print("\n".join(self.lines()))
        record = json.loads(json.dumps(self.record(), default=str))  # fractions as "p/q"
        save_record({"key_results": record})  # record.json of certlab.run / certlab.sweep
        folder = os.environ.get(RECORD_ENV)
        if folder:
            path = Path(folder) / f"{self.chapter}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(record, indent=1))
            tmp.replace(path)

    def record(self) -> dict[str, Any]:
        """All key results as a JSON-ready dict (exact, claims and measured values)."""
        return {"chapter": self.chapter, "exact": dict(self._exact),
                "claims": dict(self._claims), "measured": dict(self._measured)}
