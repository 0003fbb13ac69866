"""Exactness of the label-flip MILP against brute-force enumeration (the ground truth).

MILP and enumeration share nothing but the learner: the MILP encodes the SVM through its KKT
conditions with big-M constants, the enumeration re-trains every labelling.
"""

import warnings

import numpy as np
import pytest

from certlab.poisoning.certificates import (certified_fraction, certify_samplewise,
                                            collective_flips, min_label_flips)
from certlab.poisoning.enumeration import count_flip_sets, enumerate_min_flips
from certlab.poisoning.svm import fit_svm

from kernel_instances import gaussian_mixture_instance

_instance = gaussian_mixture_instance


def _csbm_instance(seed, model="sgc", m=8, t=5):
    """A small CSBM graph with a GNN NTK (SGC's NTK is low rank: singular K_train)."""
    from certlab.graphs.csbm import sample_csbm
    from certlab.ntk import gnn_ntk

    g = sample_csbm(40, seed=seed)
    K = gnn_ntk(g.adj, g.features, model)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(40)
    lab, test = idx[:m], idx[m:m + t]
    return K[np.ix_(lab, lab)], K[np.ix_(test, lab)], g.labels[lab]


BINARY_CASES = [
    ("svm", {"C": 0.5}, 0),
    ("svm", {"C": 0.1}, 1),
    ("svm", {"C": 2.0}, 2),
    ("krr", {"ridge": 0.3}, 3),
]


@pytest.mark.parametrize("model, params, seed", BINARY_CASES)
def test_samplewise_binary_milp_equals_enumeration(model, params, seed):
    K, Kt, y = _instance(8, 4, seed)
    enum = min_label_flips(K, Kt, y, model=model, max_flips=4, method="enumerate", **params)
    milp = min_label_flips(K, Kt, y, model=model, max_flips=4, method="milp", **params)
    np.testing.assert_array_equal(milp, enum)
    assert np.all((enum >= 0) & (enum <= 5))


@pytest.mark.parametrize("model, params, seed", BINARY_CASES)
def test_collective_binary_milp_equals_enumeration(model, params, seed):
    K, Kt, y = _instance(8, 5, seed + 10)
    for budget in (1, 2):
        enum = collective_flips(K, Kt, y, model=model, budget=budget, method="enumerate",
                                **params)
        milp = collective_flips(K, Kt, y, model=model, budget=budget, method="milp", **params)
        assert milp == enum


def test_large_C_instance_has_nontrivial_certificates():
    """Guard against vacuous agreement: the instances do contain certified predictions."""
    K, Kt, y = _instance(8, 4, 1)
    enum = min_label_flips(K, Kt, y, model="svm", C=0.1, max_flips=4, method="enumerate")
    assert enum.max() >= 2


@pytest.mark.parametrize("model, params", [("svm", {"C": 0.2}), ("krr", {"ridge": 0.5})])
def test_multiclass_milp_equals_enumeration(model, params):
    K, Kt, y = _instance(5, 3, 4, n_classes=3)
    enum = min_label_flips(K, Kt, y, model=model, max_flips=3, method="enumerate", **params)
    milp = min_label_flips(K, Kt, y, model=model, max_flips=3, method="milp", **params)
    np.testing.assert_array_equal(milp, enum)
    ce = collective_flips(K, Kt, y, model=model, budget=1, method="enumerate", **params)
    cm = collective_flips(K, Kt, y, model=model, budget=1, method="milp", **params)
    assert ce == cm


@pytest.mark.parametrize("gnn", ["sgc", "gcn"])
def test_csbm_ntk_instances(gnn):
    K, Kt, y = _csbm_instance(seed=3, model=gnn)
    C = 2.0 / np.abs(K).sum(axis=1).max()  # outside the closed-form regime
    enum = min_label_flips(K, Kt, y, C=C, max_flips=4, method="enumerate")
    milp = min_label_flips(K, Kt, y, C=C, max_flips=4, method="milp")
    np.testing.assert_array_equal(milp, enum)
    assert collective_flips(K, Kt, y, model="svm", C=C, budget=2, method="milp") == \
        collective_flips(K, Kt, y, model="svm", C=C, budget=2, method="enumerate")


def test_samplewise_certificates_agree_with_min_flips():
    K, Kt, y = _instance(8, 4, 1)
    flips = min_label_flips(K, Kt, y, C=0.1, max_flips=4, method="enumerate")
    for budget in (1, 2):
        certs = certify_samplewise(K, Kt, y, C=0.1, budget=budget)
        assert [c.status for c in certs] == [
            "certified" if f > budget else "not certified" for f in flips]
        for c in certs:
            assert c.gap >= -1e-6 and c.solve_time_s >= 0
            assert c.n_flips <= budget
            if c.status == "not certified":
                assert c.worst_case_margin <= 0
            else:
                assert c.margin_lower_bound > 0
                # the worst case found is re-trained exactly and matches the MILP bound
                assert c.worst_case_margin == pytest.approx(c.margin_lower_bound, abs=1e-5)
                refit = fit_svm(K, c.worst_case_labels, 0.1).decision_function(Kt[c.index:c.index + 1])
                assert refit[0] == pytest.approx(c.worst_case_score, abs=1e-9)


@pytest.mark.parametrize("limit", [{"node_limit": 1}, {"time_limit": 0.01}])
def test_limited_solve_is_unknown_never_certified(monkeypatch, limit):
    """MILP alone (presolve off), stopped by a node or wall-clock limit: never a wrong
    certificate, and min_label_flips returns conservative lower bounds."""
    from certlab.poisoning import milp

    monkeypatch.setattr(milp, "USE_PRESOLVE", False)
    K, Kt, y = _instance(16, 4, 1)
    exact = min_label_flips(K, Kt, y, C=0.5, max_flips=3, method="enumerate")
    certs = certify_samplewise(K, Kt, y, C=0.5, budget=1, **limit)
    for c, f in zip(certs, exact):
        assert c.status in ("unknown", "not certified", "certified")
        if c.status == "certified":
            assert f > 1
        if f <= 1:
            assert c.status != "certified"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bounds = min_label_flips(K, Kt, y, C=0.5, max_flips=3, method="milp", **limit)
    assert np.all(bounds <= exact)  # conservative lower bounds
    if "node_limit" in limit:  # deterministic: at least one row is left undecided
        assert any(c.status == "unknown" for c in certs) or np.any(bounds < exact)


def test_auto_and_enumeration_details():
    K, Kt, y = _instance(8, 4, 0)
    C = 0.5
    auto = min_label_flips(K, Kt, y, C=C, max_flips=3)
    enum, witnesses = enumerate_min_flips(K, Kt, y, 2, model="svm", C=C, max_flips=3)
    np.testing.assert_array_equal(auto, enum)
    for node, (k, w) in enumerate(zip(enum, witnesses)):
        if k <= 3:  # the witness flips exactly k labels and changes the prediction
            assert np.sum(w != y) == k
            clean = np.sign(fit_svm(K, y, C).decision_function(Kt[node:node + 1]))
            new = fit_svm(K, w, C).decision_function(Kt[node:node + 1])
            assert clean * new <= 1e-9
    assert count_flip_sets(8, 3, 2) == 1 + 8 + 28 + 56
    assert count_flip_sets(5, 2, 3) == 1 + 5 * 2 + 10 * 4
    # max_flips = 0: only the clean prediction; a budget of m covers every labelling
    assert np.all(min_label_flips(K, Kt, y, C=C, max_flips=0, method="enumerate") == 1)
    frac = certified_fraction(enum, [0, 1, 2])
    assert np.all(np.diff(frac) <= 0)


def test_scip_backend_agrees(monkeypatch):
    from certlab.poisoning import milp

    K, Kt, y = _instance(7, 3, 1)
    enum = min_label_flips(K, Kt, y, C=0.1, max_flips=3, method="enumerate")
    monkeypatch.setattr(milp, "SOLVER_BACKEND", "SCIP")
    np.testing.assert_array_equal(min_label_flips(K, Kt, y, C=0.1, max_flips=3, method="milp"),
                                  enum)
    with pytest.raises(ValueError, match="backend"):
        milp.LabelFlipMILP(K, y, 2, model="svm", C=0.1, ridge=None, budget=1, backend="CPLEX")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_closed_form_regime_dispatch_agrees(n_classes):
    pytest.importorskip("certlab.poisoning.closed_form")
    K, Kt, y = _instance(7, 4, 5, n_classes=n_classes)
    C = 0.9 / np.abs(K).sum(axis=1).max()  # every dual variable at C: ScaLabelCert applies
    kw = dict(C=C, max_flips=3)
    enum = min_label_flips(K, Kt, y, method="enumerate", **kw)
    np.testing.assert_array_equal(min_label_flips(K, Kt, y, method="closed_form", **kw), enum)
    np.testing.assert_array_equal(min_label_flips(K, Kt, y, method="auto", **kw), enum)
    np.testing.assert_array_equal(min_label_flips(K, Kt, y, method="milp", **kw), enum)
    from certlab.poisoning import milp

    with pytest.MonkeyPatch.context() as mp:  # the full KKT block gives the same answers
        mp.setattr(milp, "USE_REGIME_SHORTCUT", False)
        np.testing.assert_array_equal(min_label_flips(K, Kt, y, method="milp", **kw), enum)
    assert collective_flips(K, Kt, y, model="svm", C=C, budget=2, method="auto") == \
        collective_flips(K, Kt, y, model="svm", C=C, budget=2, method="enumerate")
    from certlab.poisoning.closed_form import RegimeError

    with pytest.raises(RegimeError):
        min_label_flips(K, Kt, y, C=100 * C, max_flips=3, method="closed_form")


def test_collective_curve_matches_per_budget():
    from certlab.poisoning.certificates import collective_flips_curve

    K, Kt, y = _instance(8, 5, 11)
    curve = collective_flips_curve(K, Kt, y, model="svm", C=0.5, max_budget=3,
                                   method="enumerate")
    assert curve.shape == (4,) and np.all(np.diff(curve) >= 0)
    for k in range(4):
        assert curve[k] == collective_flips(K, Kt, y, model="svm", C=0.5, budget=k,
                                            method="enumerate")
    np.testing.assert_array_equal(
        collective_flips_curve(K, Kt, y, model="svm", C=0.5, max_budget=2, method="milp"),
        curve[:3])
