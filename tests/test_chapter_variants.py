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


CHAPTER_13 = ROOT / "notebooks" / "13_smoothing_beyond_nodes.py"


def test_chapter_13_on_graphs_only(data_root):
    """mnist_test_images = 0 (a graph-only run, e.g. PROTEINS at paper scale) trains and
    certifies no CNN, makes no MNIST claim and records no MNIST value."""
    run = run_chapter(CHAPTER_13, {"mnist_test_images": 0, "gin_epochs": 2, "n0": 10,
                                   "n": 40, "max_radius": 3, "device": "cpu"})
    printed = _printed(run)
    assert "GIN: avg max certified radius" in printed
    assert "MNIST: sparse noise" not in printed and "MNIST: both" not in printed
    values = run.record["values"]
    assert set(values) - {"key_results"} == {"gin_avg_max_rd", "gin_avg_max_ra"}
    assert not any("MNIST" in name and "pixels" not in name
                   for name in values["key_results"]["measured"])
    with pytest.raises(ParameterError, match="mnist_test_images"):
        run_chapter(CHAPTER_13, {"mnist_test_images": -1})


CHAPTER_31 = ROOT / "notebooks" / "31_ensemble_certificates.py"


def test_chapter_31_with_one_number_of_partitions(data_root):
    """A piece of sweeps/31_paper_scale.yaml certifies some P only: the chapter runs through
    and records its medians per task and P for the merge (no P vs 100 P comparison alone)."""
    run = run_chapter(CHAPTER_31, {"n_train": 300, "n_test": 30, "n_parts": [3],
                                   "ridge_sweep": [], "milp_train": 8, "milp_test": 4})
    values = run.record["values"]
    assert set(values["medians"]) == {"1vs7", "mnist10"}
    assert all(list(by_parts) == ["3"] and len(by_parts["3"]) == 2
               for by_parts in values["medians"].values())
    assert values["headline"]["p_vs_100p_change_mnist10"] == {}
    assert values["headline"]["best_ensemble_mnist10"] == values["medians"]["mnist10"]["3"][0]
