"""Chapter parameters that the default run does not exercise, executed at a tiny scale.

The paper-scale sweeps switch parts of a chapter off to fit a CPU budget; each switch is
run here once so that a multi-hour sweep cannot fail on it after hours.
"""

import json
from pathlib import Path

import pytest

from certlab.parameters import ParameterError
from certlab.run import run_chapter

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_12 = ROOT / "notebooks" / "12_smoothing_node_classification.py"
TINY_12 = {"models": ["gcn"], "n0": 10, "n": 60, "max_epochs": 2, "max_ra": 1, "max_rd": 2,
           "device": "cpu"}


def _printed(run) -> str:
    return "".join("".join(out.get("text", "")) for cell in json.loads(run.notebook)["cells"]
                   if cell["cell_type"] == "code" for out in cell.get("outputs", []))


def test_chapter_12_with_the_structure_noise_only(data_root):
    run = run_chapter(CHAPTER_12, {**TINY_12, "smoothings": ["structure"]})
    printed = _printed(run)
    assert "joint certificate skipped" in printed
    assert "joint certificate:" not in printed  # its claims are not made
    assert "non-sparse noise certifies" not in printed
    values = run.record["values"]
    assert set(values["avg_max_rd"]) == {"structure GCN"}
    assert values["model"] == "gcn"
    assert "sparse_avg_max_rd" not in values and "dense_avg_max_rd" not in values


def test_chapter_12_needs_a_sparse_smoothing():
    with pytest.raises(ParameterError, match="must include 'attributes' or 'structure'"):
        run_chapter(CHAPTER_12, {**TINY_12, "smoothings": ["non-sparse", "joint"]})
    with pytest.raises(ParameterError, match="smoothings"):
        run_chapter(CHAPTER_12, {**TINY_12, "smoothings": ["edges"]})
