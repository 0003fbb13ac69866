"""Large C (issue 10, item 3): the MILP's answers against an independent exact oracle.

The oracle solves the bias-free SVM of every labelling by brute force over active sets
(each training point at alpha = 0, free, or alpha = C; the linear KKT system of the free
points solved directly, the pattern with the smallest KKT violation kept), so it shares
nothing with :mod:`certlab.poisoning.svm` nor with the MILP. Labellings whose oracle margin
is within ``AMBIGUOUS`` of zero are ambiguous and never used to fault either answer.

At C = 1e3..1e9 the MILP must never certify what the oracle breaks (min_label_flips may only
be LOWER than the truth, certify_samplewise never "certified" for a breakable prediction);
where C is small enough for float64 to resolve the KKT rows it must be exact.
"""

import itertools
import warnings

import numpy as np
import pytest

from certlab.poisoning import milp
from certlab.poisoning.certificates import certify_samplewise, min_label_flips

AMBIGUOUS = 1e-6


def _instance(m, t, seed, d=3):
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 2, m + t)
    X = rng.normal(size=(2, d))[cls] * 1.5 + rng.normal(size=(m + t, d))
    K = X @ X.T / d + 0.5 * np.exp(-((X[:, None] - X[None]) ** 2).sum(-1) / d)
    return K[:m, :m], K[m:, :m], 2 * cls[:m] - 1


def _oracle_scores(K, Kt, y, C):
    """Exact decision values of the bias-free SVM (labels y), by active-set brute force."""
    m = len(y)
    best, best_viol = None, np.inf
    for pattern in itertools.product((0, 1, 2), repeat=m):  # 0: a = 0, 1: free, 2: a = C
        pat = np.array(pattern)
        beta = np.where(pat == 2, C * y, 0.0).astype(float)
        F = np.flatnonzero(pat == 1)
        if F.size:
            rhs = y[F] - K[np.ix_(F, np.flatnonzero(pat == 2))] @ beta[pat == 2]
            sol, *_ = np.linalg.lstsq(K[np.ix_(F, F)], rhs, rcond=None)
            beta[F] = sol
        a = y * beta
        yf = y * (K @ beta)
        scale = 1.0 + np.abs(yf).max()
        viol = max(np.max(np.maximum(0.0, -a)) / C, np.max(np.maximum(0.0, a - C)) / C,
                   np.max(np.where(pat == 0, np.maximum(0.0, 1 - yf), 0.0)) / scale,
                   np.max(np.where(pat == 2, np.maximum(0.0, yf - 1), 0.0)) / scale,
                   np.max(np.where(pat == 1, np.abs(yf - 1), 0.0)) / scale)
        if viol < best_viol:
            best, best_viol = beta, viol
    assert best_viol < 1e-6, best_viol
    return Kt @ best


def _oracle_min_flips(K, Kt, y, C, max_flips):
    """(sure_min, ambiguous): fewest flips with a surely negative margin (max_flips + 1 if
    none), and whether some labelling within max_flips was ambiguous."""
    clean = _oracle_scores(K, Kt, y, C)
    pred = np.where(clean > 0, 1, -1)
    t = Kt.shape[0]
    sure = np.full(t, max_flips + 1)
    ambiguous = np.abs(clean) <= AMBIGUOUS * (1 + np.abs(clean))
    for k in range(1, max_flips + 1):
        for S in itertools.combinations(range(len(y)), k):
            lab = y.copy()
            lab[list(S)] *= -1
            marg = pred * _oracle_scores(K, Kt, lab, C)
            amb = np.abs(marg) <= AMBIGUOUS * (1 + np.abs(marg))
            ambiguous |= amb
            broken = (marg < 0) & ~amb
            sure = np.where(broken & (sure > k), k, sure)
    return sure, ambiguous


@pytest.mark.parametrize("C", [1e3, 1e6, 1e9])
@pytest.mark.parametrize("presolve", [True, False])
def test_large_C_never_certifies_what_the_oracle_breaks(monkeypatch, C, presolve):
    monkeypatch.setattr(milp, "USE_PRESOLVE", presolve)
    K, Kt, y = _instance(5, 4, 7)
    sure, ambiguous = _oracle_min_flips(K, Kt, y, C, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        flips = min_label_flips(K, Kt, y, C=C, max_flips=2, method="milp")
        certs = certify_samplewise(K, Kt, y, C=C, budget=1)
    assert np.all(flips <= sure)  # conservative: never above a sure attack
    for c, s in zip(certs, sure):
        if s <= 1:
            assert c.status != "certified"


def test_moderate_large_C_is_exact_against_the_oracle(monkeypatch):
    """C = 1e3 (float64 resolves it): MILP alone and with presolve equal the oracle."""
    C = 1e3
    K, Kt, y = _instance(5, 4, 7)
    sure, ambiguous = _oracle_min_flips(K, Kt, y, C, 2)
    assert not ambiguous.any()
    for presolve in (True, False):
        monkeypatch.setattr(milp, "USE_PRESOLVE", presolve)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # exact: no lower-bound warnings
            flips = min_label_flips(K, Kt, y, C=C, max_flips=2, method="milp")
        np.testing.assert_array_equal(flips, sure)


def test_huge_C_milp_alone_reports_unknown_not_certified(monkeypatch):
    """C = 1e9: the KKT rows are beyond float64; the MILP alone gives no certificate."""
    monkeypatch.setattr(milp, "USE_PRESOLVE", False)
    K, Kt, y = _instance(5, 4, 7)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        certs = certify_samplewise(K, Kt, y, C=1e9, budget=1)
    assert all(c.status in ("unknown", "not certified") for c in certs)
    K_, y_ = K, y
    assert not milp.LabelFlipMILP(K_, y_, 2, model="svm", C=1e9, ridge=None,
                                  budget=1).numerically_decisive
    assert milp.LabelFlipMILP(K_, y_, 2, model="svm", C=1e3, ridge=None,
                              budget=1).numerically_decisive
