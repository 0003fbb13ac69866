"""The notebooks' nbval checks can fail: a wrong certificate is caught.

A copy of the library is made with one certificate off by one (``max_certified_radius``
returns one more than the true radius), and nbval re-executes chapter 11 against it. The
run must fail, and it must fail in the chapter's key-results cell. Without this test a
checked cell could print nothing that depends on the certificates and nbval would pass
whatever the library computes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "11_smoothing_certificate.ipynb"

OFF_BY_ONE = '''

# --- mutation injected by tests/test_nbval_mutation.py: an off-by-one certificate ---
_true_max_certified_radius = max_certified_radius


def max_certified_radius(*args, **kwargs):
    radius = _true_max_certified_radius(*args, **kwargs)
    return radius + 1
'''


def key_results_cell(notebook: Path) -> int:
    """nbval's number of the cell that prints the key results (nbval counts code cells)."""
    code = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    return next(i for i, c in enumerate(code)
                if "nbval-check-output" in c.metadata.get("tags", []) and ".report()" in c.source)


def _nbval(notebook: Path, pythonpath: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(pythonpath), PYDEVD_DISABLE_FILE_VALIDATION="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-sanitize-with", str(ROOT / "nbval_sanitize.cfg"), "--nbval-cell-timeout",
         "600", "--rootdir", str(tmp_path), str(notebook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.skipif(not CHAPTER.is_file(), reason="chapter 11 has not been executed")
def test_an_off_by_one_certificate_fails_nbval(tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(ROOT / "lib" / "certlab", lib / "certlab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = lib / "certlab" / "smoothing" / "certificate.py"
    target.write_text(target.read_text() + OFF_BY_ONE)
    notebook = tmp_path / CHAPTER.name
    shutil.copy(CHAPTER, notebook)

    run = _nbval(notebook, lib, tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode != 0, "nbval passed although every certified radius was off by one"
    failed = {int(n) for n in re.findall(r"FAILED \S+::Cell (\d+)", output)}
    # Only the key-results cell prints the certified radii; it, and only it, must fail.
    assert failed == {key_results_cell(notebook)}, output[-3000:]
