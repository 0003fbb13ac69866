"""EnsembleCert with exact score ties, against exact-arithmetic brute force (issue 16, item 1).

Ground truth: every base model retrained in rational arithmetic (``fractions.Fraction``) on
every relabelling of its part, its prediction the exact argmax of the class scores with ties
to the smallest class; the fewest flips changing the ensemble vote is then the cheapest
assignment of new votes (parts are disjoint, so a part's flips only move its own vote), and,
on the smallest instances, also a full enumeration of every labelling of the training set.
Integer features with a linear kernel and duplicated points make exact ties common (classes
absent from a part score exactly 0; duplicated points get equal weights).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from certlab.poisoning.ensembles import (certify_partition_ensemble, dpa_certificate,
                                         majority_vote)


def _solve_exact(A: list[list[Fraction]], B: list[list[Fraction]]) -> list[list[Fraction]]:
    """A^-1 B for a small invertible rational matrix (Gauss-Jordan, exact)."""
    n = len(A)
    M = [row[:] + brow[:] for row, brow in zip(A, B)]
    for col in range(n):
        piv = next(r for r in range(col, n) if M[r][col] != 0)
        M[col], M[piv] = M[piv], M[col]
        pv = M[col][col]
        M[col] = [v / pv for v in M[col]]
        for r in range(n):
            if r != col and M[r][col] != 0:
                f = M[r][col]
                M[r] = [a - f * b for a, b in zip(M[r], M[col])]
    return [row[n:] for row in M]


def _exact_weights(X, Xt, idx, model, C, ridge):
    """Exact per-label weights W (t, k) of the base model on part ``idx`` (KRR or SVM regime)."""
    K = [[Fraction(int(X[i] @ X[j])) for j in idx] for i in idx]
    Kt = [[Fraction(int(x @ X[j])) for j in idx] for x in Xt]
    if model == "svm":
        return [[C * v for v in row] for row in Kt]
    A = [[K[i][j] + (ridge if i == j else 0) for j in range(len(idx))] for i in range(len(idx))]
    sol = _solve_exact(A, [list(col) for col in zip(*Kt)])  # (k, t)
    return [list(col) for col in zip(*sol)]


def _exact_vote(w_row, labels, n_classes):
    scores = [sum((w for w, lab in zip(w_row, labels) if lab == c), Fraction(0))
              for c in range(n_classes)]
    return max(range(n_classes), key=lambda c: (scores[c], -c))  # ties: smallest class


def _exact_part_costs(W, labels, n_classes):
    """(t, c) fewest flips inside the part making its model predict c; (t,) clean votes."""
    t = len(W)
    costs = np.full((t, n_classes), np.inf)
    clean = np.array([_exact_vote(W[i], labels, n_classes) for i in range(t)])
    for new in itertools.product(range(n_classes), repeat=len(labels)):
        flips = sum(a != b for a, b in zip(new, labels))
        for i in range(t):
            c = _exact_vote(W[i], new, n_classes)
            costs[i, c] = min(costs[i, c], flips)
    return costs, clean


def _cheapest_vote_change(votes, costs, n_classes):
    """Fewest total flips over all assignments of new votes changing the majority."""
    clean = majority_vote(votes, n_classes)
    best = math.inf
    for new in itertools.product(range(n_classes), repeat=votes.size):
        cost = sum(costs[p, c] for p, c in enumerate(new))
        if cost < best and majority_vote(np.array(new), n_classes) != clean:
            best = cost
    return best


def _instance(rng, n_classes, P):
    """Integer features (many duplicates), parts of 1-3 points, skewed labels."""
    sizes = rng.integers(1, 4, size=P)
    parts = np.repeat(np.arange(P), sizes)
    n = parts.size
    pool = rng.integers(-2, 3, size=(3, 2))  # few distinct points: duplicates and ties
    X = pool[rng.integers(0, 3, size=n)]
    Xt = rng.integers(-2, 3, size=(2, 2))
    y = rng.choice(n_classes, size=n, p=rng.dirichlet(np.full(n_classes, 0.7)))
    return X, Xt, y, parts


def _exact_truth(X, Xt, y, parts, P, n_classes, model, C, ridge):
    t = Xt.shape[0]
    votes = np.zeros((P, t), dtype=np.int64)
    costs = np.zeros((P, t, n_classes))
    for p in range(P):
        idx = np.flatnonzero(parts == p)
        W = _exact_weights(X, Xt, idx, model, C, ridge)
        costs[p], votes[p] = _exact_part_costs(W, list(y[idx]), n_classes)
    truth = np.array([_cheapest_vote_change(votes[:, i], costs[:, i], n_classes)
                      for i in range(t)], dtype=float)
    return votes, costs, truth


@pytest.mark.parametrize("model", ["krr", "svm"])
def test_ensemble_cert_with_exact_ties_against_exact_brute_force(model):
    """Many tiny ensembles (3-4 classes, P = 3-7): never above the true certificate, never
    below DPA, per-part costs lower bounds, exact where flagged."""
    rng = np.random.default_rng(16 if model == "krr" else 61)
    ridge = Fraction(1) if model == "krr" else None
    n_equal = n_points = 0
    for _ in range(60):
        n_classes = int(rng.integers(3, 5))
        P = int(rng.integers(3, 8))
        X, Xt, y, parts = _instance(rng, n_classes, P)
        K = (X @ X.T).astype(float)
        K_test = (Xt @ X.T).astype(float)
        # SVM: a dyadic C inside the linear regime (exact in floats and in fractions)
        C = None
        if model == "svm":
            row = max(float(np.abs(K).sum(axis=1).max()), 1.0)
            C = Fraction(1, 2 ** int(math.ceil(math.log2(row))))
        res = certify_partition_ensemble(K, K_test, y, parts, P, n_classes=n_classes,
                                         model=model, C=None if C is None else float(C),
                                         ridge=None if ridge is None else float(ridge))
        votes, costs, truth = _exact_truth(X, Xt, y, parts, P, n_classes, model, C, ridge)
        np.testing.assert_array_equal(res.votes, votes)
        cert = res.ensemble_cert
        assert np.all(cert + 1 <= truth), (cert, truth)  # never above the true certificate
        assert np.all(cert >= res.dpa), (cert, res.dpa)  # never below DPA
        assert np.all(res.costs <= costs)  # lower bounds on the exact per-part costs
        flagged = res.costs_exact
        np.testing.assert_array_equal(res.costs[flagged], costs[flagged])
        other = np.ones_like(flagged)
        np.put_along_axis(other, res.votes[:, :, None], False, axis=2)
        assert np.all(res.costs[other] >= 1)
        n_points += cert.size
        n_equal += int(np.sum(cert + 1 == truth))
    # the instances exercise the tie handling and the certificate is usually exact
    assert n_equal >= 0.8 * n_points


def test_issue_16_repro_never_below_dpa():
    """1-D linear kernel, x = [1, 1, 1, 1, -1], labels [0, 0, 0, 0, 2], parts [0, 0, 1, 1, 2],
    test x = 1, KRR ridge 1, 3 classes: DPA 1, true certificate 2 (EnsembleCert was 0)."""
    X = np.array([[1], [1], [1], [1], [-1]])
    Xt = np.array([[1]])
    y = np.array([0, 0, 0, 0, 2])
    parts = np.array([0, 0, 1, 1, 2])
    res = certify_partition_ensemble((X @ X.T).astype(float), (Xt @ X.T).astype(float), y,
                                     parts, 3, n_classes=3, ridge=1.0)
    votes, costs, truth = _exact_truth(X, Xt, y, parts, 3, 3, "krr", None, Fraction(1))
    assert truth[0] == 3 and res.dpa[0] == 1
    assert res.dpa[0] <= res.ensemble_cert[0] <= truth[0] - 1
    assert dpa_certificate(res.vote_counts[0]) == 1
    assert np.all(res.costs <= costs)
    # part 2 votes 0 on the exact tie of two absent classes; moving it to 1 costs one flip
    assert res.votes[2, 0] == 0 and res.costs[2, 0, 1] == 1


def test_full_enumeration_agrees_with_part_decomposition():
    """The ground truth's per-part decomposition equals enumerating every labelling of the
    whole training set (smallest instances)."""
    rng = np.random.default_rng(5)
    for _ in range(6):
        X, Xt, y, parts = _instance(rng, 3, 3)
        if y.size > 6:
            continue
        votes, costs, truth = _exact_truth(X, Xt, y, parts, 3, 3, "krr", None, Fraction(1))
        Ws = [_exact_weights(X, Xt, np.flatnonzero(parts == p), "krr", None, Fraction(1))
              for p in range(3)]
        clean = [majority_vote(votes[:, i], 3) for i in range(Xt.shape[0])]
        best = np.full(Xt.shape[0], np.inf)
        for new in itertools.product(range(3), repeat=y.size):
            new = np.array(new)
            flips = int(np.sum(new != y))
            for i in range(Xt.shape[0]):
                v = np.array([_exact_vote(Ws[p][i], list(new[parts == p]), 3)
                              for p in range(3)])
                if majority_vote(v, 3) != clean[i]:
                    best[i] = min(best[i], flips)
        np.testing.assert_array_equal(best, truth)


def test_measure_ensemble_looseness_reports_sound_gaps():
    """The fidelity measurement (issue 12): per-part bounds never exceed the exact costs,
    some are loose on random multi-class ensembles, the certificate gaps are >= 0, and the
    result is deterministic."""
    from certlab.poisoning.ensembles import measure_ensemble_looseness

    rep = measure_ensemble_looseness(12, n_classes=4, n_parts=4, part_size=4, n_test=3, seed=1)
    assert rep.n_points == 36 and rep.n_costs == 12 * 4 * 3 * 3
    assert 0 < rep.costs_loose <= rep.n_costs and rep.max_cost_gap >= 1
    assert np.all(rep.cert_gaps >= 0) and rep.certs_loose == int(np.sum(rep.cert_gaps > 0))
    assert 0.0 < rep.flagged_exact < 1.0
    again = measure_ensemble_looseness(12, n_classes=4, n_parts=4, part_size=4, n_test=3,
                                       seed=1)
    np.testing.assert_array_equal(again.cert_gaps, rep.cert_gaps)
    assert again.costs_loose == rep.costs_loose
    with pytest.raises(ValueError, match="n_classes"):
        measure_ensemble_looseness(1, n_classes=2)
    with pytest.raises(ValueError, match="part_size"):
        measure_ensemble_looseness(1, part_size=7)
