"""The deciding MILP (issue 14) against brute-force enumeration, its pieces one by one.

The sample-wise and collective MILPs now decide the sign of the worst case instead of
optimising it, after an exact presolve (small-set enumeration, greedy attack) and with
per-instance big-M constants and flip-linked cuts derived from ``flip_radius``. Each piece
is checked on its own: the radius bound against exact re-training of every labelling, the
MILP alone (presolve switched off) and the MILP deciding only the gap left by the presolve,
all against enumeration (binary and multi-class, SVM and KRR, sample-wise and collective).
"""

import os

import numpy as np
import pytest

from certlab.poisoning import milp
from certlab.poisoning.certificates import (certify_samplewise, collective_flips,
                                            min_label_flips)
from certlab.poisoning.enumeration import (clean_state, iter_flipped_labelings,
                                           perturbed_scores)
from certlab.poisoning.svm import solve_svm_dual_batch

from kernel_instances import gaussian_mixture_instance

_instance = gaussian_mixture_instance


@pytest.mark.parametrize("C, seed", [(0.05, 0), (0.3, 1), (1.0, 2), (3.0, 3)])
@pytest.mark.parametrize("budget", [1, 2, 3])
def test_flip_radius_bounds_every_retrained_labelling(C, seed, budget):
    """||w~ - w°|| <= flip_radius and <= the flip-linked sum, checked on every labelling."""
    K, _, y = _instance(8, 1, seed)
    beta0, _, _ = solve_svm_dual_batch(K, y[None, :].astype(float), C)
    D = milp.flip_radius(K, y, beta0[0], C, budget)
    gap, lin, quad = milp.flip_radius_terms(K, y, beta0[0], C)
    e = np.sqrt(2 * np.maximum(lin, 0) + quad ** 2)
    worst = 0.0
    for k in range(1, budget + 1):
        for labels in iter_flipped_labelings(y, 2, k):
            beta, _, _ = solve_svm_dual_batch(K, labels.astype(float), C)
            delta = beta - beta0
            dist = np.sqrt(np.maximum(np.einsum("bi,ij,bj->b", delta, K, delta), 0))
            flipped = labels != y[None, :]
            linked = np.sqrt(2 * gap) + flipped @ e
            assert np.all(dist <= D * (1 + 1e-7) + 1e-9)
            assert np.all(dist <= linked * (1 + 1e-7) + 1e-9)
            worst = max(worst, float(dist.max()))
    assert worst > 0.05 * D  # the bound is not vacuous


def _compare_min_flips(K, Kt, y, max_flips, **kw):
    enum = min_label_flips(K, Kt, y, max_flips=max_flips, method="enumerate", **kw)
    got = min_label_flips(K, Kt, y, max_flips=max_flips, method="milp", **kw)
    np.testing.assert_array_equal(got, enum)
    return enum


CASES = [
    (2, "svm", {"C": 0.1}, 11),
    (2, "svm", {"C": 0.5}, 12),
    (2, "svm", {"C": 2.0}, 13),
    (2, "krr", {"ridge": 0.3}, 14),
    (3, "svm", {"C": 0.3}, 15),
    (3, "krr", {"ridge": 0.5}, 16),
]


@pytest.mark.parametrize("n_classes, model, params, seed", CASES)
def test_milp_alone_equals_enumeration(monkeypatch, n_classes, model, params, seed):
    """Presolve off: every answer comes from the feasibility MILPs."""
    monkeypatch.setattr(milp, "USE_PRESOLVE", False)
    m = 7 if n_classes == 2 else 5
    K, Kt, y = _instance(m, 4, seed, n_classes=n_classes)
    kw = dict(model=model, **params)
    enum = _compare_min_flips(K, Kt, y, 3, **kw)
    for budget in (1, 2):
        certs = certify_samplewise(K, Kt, y, budget=budget, **kw)
        assert [c.status for c in certs] == [
            "certified" if f > budget else "not certified" for f in enum]
        for c in certs:
            if c.status == "not certified":
                assert c.worst_case_margin <= 0 and c.n_flips <= budget
            else:
                assert 0 < c.margin_lower_bound <= c.worst_case_margin + 1e-12
        assert collective_flips(K, Kt, y, budget=budget, method="milp", **kw) == \
            collective_flips(K, Kt, y, budget=budget, method="enumerate", **kw)


@pytest.mark.parametrize("n_classes, model, params, seed", CASES)
def test_milp_decides_the_gap_left_by_presolve(monkeypatch, n_classes, model, params, seed):
    """Enumeration of single flips only: the greedy bound and the MILP settle the rest."""
    m = 8 if n_classes == 2 else 5
    monkeypatch.setattr(milp, "PRESOLVE_ENUM_LIMIT", m * (n_classes - 1) + 1)
    K, Kt, y = _instance(m, 5, seed + 100, n_classes=n_classes)
    kw = dict(model=model, **params)
    state = clean_state(K, Kt, y, n_classes, ridge=params.get("ridge"), C=params.get("C"),
                        model=model)
    recs = milp.milp_min_flips(K, Kt, y, n_classes, max_flips=4, state=state, **kw)
    enum = min_label_flips(K, Kt, y, max_flips=4, method="enumerate", **kw)
    np.testing.assert_array_equal([r["min_flips"] for r in recs], enum)
    assert all(r["exact"] for r in recs)
    for r, f in zip(recs, enum):
        if f <= 4:  # a verified witness of exactly the minimal size
            assert np.sum(r["witness"] != y) == f
    budget = 3
    certs = certify_samplewise(K, Kt, y, budget=budget, **kw)
    assert [c.status for c in certs] == ["certified" if f > budget else "not certified"
                                         for f in enum]


def test_optimise_mode_is_the_papers_milp():
    K, Kt, y = _instance(7, 3, 21)
    C = 0.3
    enum = min_label_flips(K, Kt, y, C=C, max_flips=3, method="enumerate")
    state = clean_state(K, Kt, y, 2, model="svm", C=C, ridge=None)
    recs = milp.milp_worst_margin(K, Kt, y, 2, model="svm", C=C, budget=1, optimise=True,
                                  state=state)
    for r, f in zip(recs, enum):
        assert r["status"] == ("certified" if f > 1 else "not certified")
        assert r["optimal"]
        # optimum = re-trained worst case (exact), bound within the MILP tolerance
        assert r["worst_margin"] == pytest.approx(r["lower_bound"], abs=1e-5)
        # brute force: the lowest margin over every labelling within one flip
        labels = np.concatenate([y[None, :], *iter_flipped_labelings(y, 2, 1)])
        node = recs.index(r)
        margins = perturbed_scores(K, Kt[node:node + 1], labels, 2, model="svm", C=C)[:, 0]
        assert r["worst_margin"] == pytest.approx(
            float(np.min(margins * state["prediction"][node])), abs=1e-8)


def test_node_limit_is_deterministic_and_never_certifies_wrongly(monkeypatch):
    monkeypatch.setattr(milp, "USE_PRESOLVE", False)
    K, Kt, y = _instance(12, 4, 31)
    C = 1.0
    exact = min_label_flips(K, Kt, y, C=C, max_flips=2, method="enumerate")
    state = clean_state(K, Kt, y, 2, model="svm", C=C, ridge=None)
    runs = [milp.milp_worst_margin(K, Kt, y, 2, model="svm", C=C, budget=1, node_limit=1,
                                   state=state) for _ in range(2)]
    assert [r["status"] for r in runs[0]] == [r["status"] for r in runs[1]]
    assert [r["nodes"] for r in runs[0]] == [r["nodes"] for r in runs[1]]
    for rec, f in zip(runs[0], exact):
        if f <= 1:
            assert rec["status"] != "certified"
    with pytest.raises(ValueError, match="node_limit"):
        milp.milp_worst_margin(K, Kt, y, 2, model="svm", C=C, budget=1, node_limit=0)
    with pytest.raises(ValueError, match="node_limit"):
        milp.milp_min_flips(K, Kt, y, 2, model="svm", C=C, max_flips=1, node_limit=2.5)


def test_quiet_stdout_swallows_c_level_output(capfd):
    with milp._quiet_stdout():
        os.write(1, b"HighsMipSolverData::transformNewIntegerFeasibleSolution\n")
    print("after")
    out, _ = capfd.readouterr()
    assert out == "after\n"


@pytest.mark.parametrize("backend", ["HIGHS", "SCIP"])
def test_label_flip_milps_print_nothing(capfd, monkeypatch, backend):
    """Issue 10: no solver chatter on stdout (MILP-only path, many solves)."""
    monkeypatch.setattr(milp, "USE_PRESOLVE", False)
    monkeypatch.setattr(milp, "SOLVER_BACKEND", backend)
    K, Kt, y = _instance(8, 3, 41)
    capfd.readouterr()
    min_label_flips(K, Kt, y, C=1.0, max_flips=3, method="milp")
    certify_samplewise(K, Kt, y, C=1.0, budget=2)
    collective_flips(K, Kt, y, model="svm", C=1.0, budget=2, method="milp")
    out, _ = capfd.readouterr()
    assert out == ""


def test_budget_one_reports_the_exact_worst_case():
    """Budget 1 is settled by enumerating the m single flips: the reported worst case is the
    brute-force minimum over the clean labelling and every single flip, certified or not."""
    K, Kt, y = _instance(8, 5, 51)
    C = 0.5
    state = clean_state(K, Kt, y, 2, model="svm", C=C, ridge=None)
    labels = np.concatenate([y[None, :], *iter_flipped_labelings(y, 2, 1)])
    margins = perturbed_scores(K, Kt, labels, 2, model="svm", C=C) * state["prediction"]
    certs = certify_samplewise(K, Kt, y, C=C, budget=1)
    statuses = set()
    for c in certs:
        assert c.worst_case_margin == pytest.approx(float(margins[:, c.index].min()), abs=1e-9)
        statuses.add(c.status)
    assert statuses == {"certified", "not certified"}


def test_near_tie_rows_are_left_to_exact_methods(monkeypatch):
    """A clean margin within 10 MILP slacks cannot be separated by the MILP: without the
    exact presolve the answer is a lower bound with a warning, never a certificate."""
    monkeypatch.setattr(milp, "USE_PRESOLVE", False)
    K, Kt, y = np.eye(3), np.array([[1.0, -1.0 + 3e-8, 0.0]]), np.array([1, 1, -1])
    with pytest.warns(RuntimeWarning, match="cannot resolve"):
        flips = min_label_flips(K, Kt, y, model="krr", ridge=1.0, max_flips=2, method="milp")
    assert flips[0] <= min_label_flips(K, Kt, y, model="krr", ridge=1.0, max_flips=2,
                                       method="enumerate")[0]
    cert = certify_samplewise(K, Kt, y, model="krr", ridge=1.0, budget=1)[0]
    assert cert.status == "unknown"
