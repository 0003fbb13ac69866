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


CHAPTER_22 = ROOT / "notebooks" / "22_label_flip_certificates.py"


def test_chapter_22_csbm_collective_curves_match_enumeration(data_root):
    """The CSBM collective curves (off by default; sweeps/22_csbm_collective.yaml) run, are
    recorded, and agree with exact enumeration of every flip set at the small budgets."""
    import numpy as np

    from certlab.graphs.csbm import csbm_split, sample_csbm
    from certlab.ntk import PAPER_ARCHITECTURES, PAPER_C_CSBM, gnn_ntk
    from certlab.poisoning.enumeration import enumerate_collective_curve

    nodes_per_seed = 4
    run = run_chapter(CHAPTER_22, {
        "n_seeds": 1, "published_seeds": 0, "citeseer_table": False,
        "collective_max_fraction": 0.1, "n_milp_nodes": 1, "n_beyond_nodes": 1,
        "csbm_collective_architectures": ["GCN"], "csbm_collective_seeds": 1,
        "n_csbm_collective_nodes": nodes_per_seed})
    values = run.record["values"]
    curve = values["csbm_collective_ratio"]["GCN"]
    assert list(curve) == ["0.025", "0.050", "0.075", "0.100"]  # budgets 1..4 of 40 labels
    assert values["csbm_collective_exact_share"] == 1.0
    graph = sample_csbm(200, seed=0)
    split = csbm_split(graph, seed=0)
    nodes = np.random.default_rng(0).choice(split.test, nodes_per_seed, replace=False)
    labeled = split.labeled
    kernel = gnn_ntk(graph.adj, graph.features, **PAPER_ARCHITECTURES["GCN"])
    changed = enumerate_collective_curve(kernel[np.ix_(labeled, labeled)],
                                         kernel[np.ix_(nodes, labeled)],
                                         graph.labels[labeled], 2, model="svm",
                                         C=PAPER_C_CSBM, max_budget=2)
    assert [curve["0.025"], curve["0.050"]] == \
        [100 * (1 - c / nodes_per_seed) for c in changed[1:]]
    with pytest.raises(ParameterError, match="n_csbm_collective_nodes"):
        run_chapter(CHAPTER_22, {"n_csbm": 50, "n_csbm_collective_nodes": 20,
                                 "beyond_paper_labels": 16})
