"""The bias-free SVM dual solver on hard instances, against independent checks (issue 16,
item 2; issue 10, item 3).

Independent checks: (1) an exact KKT certificate in 50-digit arithmetic (mpmath): the face
system of the returned active set is re-solved in high precision and every multiplier sign
is checked, which proves optimality (the dual is a convex QP, so KKT points are optimal);
(2) scipy's L-BFGS-B on the dual in the unsigned variables a in [0, C], a solver that
shares no code with ours; (3) exhaustive active sets on tiny problems.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from certlab.poisoning.svm import fit_svm, solve_svm_dual_batch


def _mp_kkt_certificate(K, y, C, beta, K_test):
    """Re-solve the face of ``beta``'s active set in 50-digit arithmetic, check the KKT sign
    conditions there, and return the high-precision decision values K_test @ beta*."""
    import mpmath as mp

    mp.mp.dps = 50
    m = y.size
    lo = np.where(y > 0, 0.0, -C)
    hi = np.where(y > 0, C, 0.0)
    width = 1e-9 * C
    at_lo = beta <= lo + width
    at_hi = beta >= hi - width
    free = np.flatnonzero(~(at_lo | at_hi))
    bnd = np.flatnonzero(at_lo | at_hi)
    Km = mp.matrix(K.tolist())
    b = [mp.mpf(0)] * m
    for i in bnd:
        b[i] = mp.mpf(float(lo[i] if at_lo[i] else hi[i]))
    if free.size:
        A = mp.matrix([[Km[i, j] for j in free] for i in free])
        rhs = mp.matrix([mp.mpf(float(y[i])) - mp.fsum(Km[i, j] * b[j] for j in bnd)
                         for i in free])
        sol = mp.lu_solve(A, rhs)
        for k, i in enumerate(free):
            b[i] = sol[k]
            assert mp.mpf(float(lo[i])) <= sol[k] <= mp.mpf(float(hi[i]))
    for i in bnd:
        g = mp.fsum(Km[i, j] * b[j] for j in range(m)) - y[i]
        assert (g >= 0) if at_lo[i] else (g <= 0), (i, g)
    return np.array([float(mp.fsum(mp.mpf(float(K_test[t, j])) * b[j] for j in range(m)))
                     for t in range(K_test.shape[0])])


def _lbfgsb_dual(K, y, C):
    """Independent solve of min 1/2 a^T Q a - 1^T a, 0 <= a <= C (scipy L-BFGS-B)."""
    Q = (y[:, None] * y[None, :]) * K
    res = minimize(lambda a: (0.5 * a @ Q @ a - a.sum(), Q @ a - 1.0), np.zeros(y.size),
                   jac=True, method="L-BFGS-B", bounds=[(0.0, C)] * y.size,
                   options=dict(ftol=1e-15, gtol=1e-12, maxiter=50_000, maxfun=100_000))
    return res.x, float(res.fun)


def _objective(K, y, C, beta):
    a = np.abs(beta)
    Q = (y[:, None] * y[None, :]) * K
    return 0.5 * a @ Q @ a - a.sum()


def test_cora_mlb_gcn_instance_of_issue_16(data_root):
    """Cora-MLb, GCN NTK, label_flip_split(10 + 10 per class, seed 0), m = 40, C = 0.075,
    labels 1, 6, 11, 20, 34 flipped: the Newton iteration used to stall at residual 0.0294."""
    from certlab.graphs.binary_subsets import label_flip_split, load_binary_graph
    from certlab.ntk import gnn_ntk
    from certlab.poisoning.certificates import min_label_flips

    graph = load_binary_graph("cora_ml")
    K = gnn_ntk(graph.adj, graph.features, model="gcn")
    split = label_flip_split(graph.labels, n_train_per_class=10, n_val_per_class=10, seed=0)
    L, T = split.labeled, split.test
    K_train, K_test = K[np.ix_(L, L)], K[np.ix_(T[:25], L)]
    y = graph.labels[L].astype(np.int64).copy()
    y[[1, 6, 11, 20, 34]] *= -1
    C = 0.075
    model = fit_svm(K_train, y, C)
    assert model.kkt_residual <= 1e-10 and abs(model.duality_gap) <= 1e-10
    f_hp = _mp_kkt_certificate(K_train, y.astype(float), C, model.beta, K_test)
    np.testing.assert_allclose(model.decision_function(K_test), f_hp, rtol=0, atol=1e-10)
    a_ref, obj_ref = _lbfgsb_dual(K_train, y.astype(float), C)
    assert _objective(K_train, y.astype(float), C, model.beta) <= obj_ref + 1e-12
    np.testing.assert_allclose(model.decision_function(K_test), K_test @ (y * a_ref),
                               atol=1e-5)
    # the certificate run on this labelling (its neighbours re-solved warm) ends normally
    flips = min_label_flips(K_train, K_test, y, model="svm", C=C, max_flips=1,
                            method="enumerate")
    assert flips.shape == (25,) and np.all((flips >= 0) & (flips <= 2))


@pytest.mark.parametrize("seed", range(6))
def test_random_instances_against_independent_solvers(seed):
    """Random PSD kernels (full and low rank) and C from 1e-3 to 1e6: every row of a batched
    solve is an exact KKT point (50-digit certificate) and no worse than L-BFGS-B."""
    rng = np.random.default_rng(seed)
    m, t = int(rng.integers(8, 25)), 5
    rank = m + t if seed % 2 == 0 else int(rng.integers(2, 6))
    X = rng.normal(size=(m + t, rank)) * rng.uniform(0.3, 3.0)
    Kall = X @ X.T + (np.exp(-0.3 * ((X[:, None] - X[None]) ** 2).sum(-1))
                      if seed % 2 == 0 else 0.0)
    K, K_test = Kall[:m, :m], Kall[m:, :m]
    C = float(10.0 ** rng.uniform(-3, 6))
    Y = np.where(rng.random((6, m)) < 0.5, 1.0, -1.0)
    beta, res, _ = solve_svm_dual_batch(K, Y, C)
    for b, y in zip(beta, Y):
        f = K_test @ b
        f_hp = _mp_kkt_certificate(K, y, C, b, K_test)
        np.testing.assert_allclose(f, f_hp, rtol=1e-7, atol=1e-9 * (1 + np.abs(f_hp).max()))
        _, obj_ref = _lbfgsb_dual(K, y, C)
        assert _objective(K, y, C, b) <= obj_ref + 1e-9 * (1 + abs(obj_ref))
