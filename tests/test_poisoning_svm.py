"""The bias-free kernel SVM (dual solver, one-vs-rest, CV) and kernel ridge regression."""

import itertools

import numpy as np
import pytest

from certlab.poisoning.svm import (fit_krr, fit_svm, krr_weights, predict_from_scores,
                                   prediction_margins, select_C_cv, solve_svm_dual,
                                   solve_svm_dual_batch, stratified_folds, svm_duality_gap)


def _kernel(m, rank=None, seed=0, t=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m + t, rank or 3))
    K = X @ X.T
    if rank is None:
        K = K + np.exp(-0.5 * ((X[:, None] - X[None]) ** 2).sum(-1))
    return K[:m, :m], K[m:, :m], rng


def _exact_active_set_svm(K, y, C):
    """Independent exact solver for tiny m: try every (0 / free / C) pattern of the dual."""
    m = len(y)
    Q = (y[:, None] * y[None, :]) * K
    for pattern in itertools.product((0, 1, 2), repeat=m):
        pattern = np.array(pattern)
        a = np.where(pattern == 2, C, 0.0)
        F = np.flatnonzero(pattern == 1)
        if F.size:
            rhs = 1.0 - Q[np.ix_(F, np.flatnonzero(pattern == 2))] @ a[pattern == 2]
            try:
                a[F] = np.linalg.solve(Q[np.ix_(F, F)], rhs)
            except np.linalg.LinAlgError:
                continue
        grad = Q @ a - 1.0
        tol = 1e-9
        if (np.all(a[F] > -tol) and np.all(a[F] < C + tol)
                and np.all(grad[pattern == 0] >= -tol) and np.all(grad[pattern == 2] <= tol)):
            return a
    raise AssertionError("no KKT point found")


@pytest.mark.parametrize("C", [0.05, 0.7, 5.0])
def test_dual_matches_exhaustive_active_sets(C):
    K, Kt, rng = _kernel(6, seed=1)
    y = np.where(rng.random(6) < 0.5, 1, -1)
    sol = solve_svm_dual(K, y, C)
    a_exact = _exact_active_set_svm(K, y, C)
    np.testing.assert_allclose(sol.alpha, a_exact, atol=1e-8)
    assert sol.kkt_residual <= 1e-10
    assert abs(sol.duality_gap) <= 1e-10


@pytest.mark.parametrize("rank", [None, 2])
def test_batched_solver_high_accuracy_including_low_rank(rank):
    K, Kt, rng = _kernel(15, rank=rank, seed=2)
    Y = np.where(rng.random((40, 15)) < 0.5, 1.0, -1.0)
    beta, res, gap = solve_svm_dual_batch(K, Y, 0.8)
    assert np.all(res <= 1e-10)
    assert np.all(np.abs(gap) <= 1e-9)
    assert np.all(Y * beta >= -1e-15) and np.all(Y * beta <= 0.8 + 1e-15)
    # every row agrees with a separate single solve
    single = solve_svm_dual(K, Y[7], 0.8)
    np.testing.assert_allclose(beta[7] @ Kt.T, single.beta @ Kt.T, atol=1e-8)
    # the gap is a certificate: it is clearly positive at a perturbed point
    assert svm_duality_gap(K, Y[:1], 0.5 * beta[:1], 0.8)[0] > 1e-6


def test_small_C_regime_puts_every_dual_at_C():
    K, Kt, rng = _kernel(10, seed=3)
    C = 0.9 / np.abs(K).sum(axis=1).max()
    y = np.where(rng.random(10) < 0.5, 1, -1)
    model = fit_svm(K, y, C)
    np.testing.assert_allclose(np.abs(model.beta), C, rtol=1e-12)
    np.testing.assert_allclose(model.decision_function(Kt), C * Kt @ y, rtol=1e-10)


def test_solver_refuses_to_return_unconverged_solutions(monkeypatch):
    """When neither the Newton iteration nor the active-set method reaches the tolerance,
    the solver raises (default) or marks the rows NaN (on_failure="nan"), never returns
    an unconverged point as a solution."""
    import certlab.poisoning.svm as svm_module

    K, _, rng = _kernel(12, seed=4)
    Y = np.where(rng.random((3, 12)) < 0.5, 1.0, -1.0)
    monkeypatch.setattr(svm_module, "_active_set_box_qp",
                        lambda K_, y_, lo_, hi_, b_, max_iter=None: np.clip(0 * b_, lo_, hi_))
    with pytest.raises(RuntimeError, match="did not reach"):
        solve_svm_dual_batch(K, Y, 10.0, max_iter=1)
    beta, res, _ = solve_svm_dual_batch(K, Y, 10.0, max_iter=1, on_failure="nan")
    assert np.all(np.isnan(beta)) and np.all(res > 1e-10)
    with pytest.raises(ValueError, match="on_failure"):
        solve_svm_dual_batch(K, Y, 10.0, on_failure="ignore")


def test_stalled_newton_rows_are_finished_by_the_active_set_method(monkeypatch):
    """A row the Newton iteration leaves unconverged is solved by the exact active-set
    method; the answer equals the Newton solve of the other rows and meets the tolerance."""
    import certlab.poisoning.svm as svm_module

    K, _, rng = _kernel(12, seed=6)
    Y = np.where(rng.random((4, 12)) < 0.5, 1.0, -1.0)
    reference, _, _ = solve_svm_dual_batch(K, Y, 0.5)
    original = svm_module._projected_newton

    def stall(K_, Y_, C_, tol_, max_iter_, beta0_):
        beta, res = original(K_, Y_, C_, tol_, max_iter_, beta0_)
        beta, res = beta.copy(), res.copy()
        beta[2] = 0.0  # pretend row 2 stalled at the origin
        res[2] = np.inf
        return beta, res

    monkeypatch.setattr(svm_module, "_projected_newton", stall)
    beta, res, gap = solve_svm_dual_batch(K, Y, 0.5, beta0=0.5 * np.abs(Y) * Y)
    assert np.all(res <= 1e-10) and np.all(np.abs(gap) < 1e-8)
    np.testing.assert_allclose(beta, reference, atol=1e-9)


@pytest.mark.parametrize("C", [0.05, 0.7, 5.0, 1e4])
def test_active_set_method_matches_exhaustive_active_sets(C):
    """The active-set fallback alone (from the origin and from the box centre) gives the
    exact dual of tiny problems, also at large C."""
    from certlab.poisoning.svm import _active_set_box_qp, _box

    K, _, rng = _kernel(6, seed=11)
    for _ in range(5):
        y = np.where(rng.random(6) < 0.5, 1, -1)
        lo, hi = _box(y[None, :].astype(float), C)
        a_exact = _exact_active_set_svm(K, y, C)
        for start in (np.zeros(6), 0.5 * C * y):
            beta = _active_set_box_qp(K, y.astype(float), lo[0], hi[0], start.astype(float))
            np.testing.assert_allclose(np.abs(beta), a_exact, atol=1e-8 * max(1.0, C))


def test_binary_label_encodings_and_ovr():
    K, Kt, rng = _kernel(12, seed=5)
    y01 = rng.integers(0, 2, 12)
    pm = fit_svm(K, 2 * y01 - 1, 0.5)
    zo = fit_svm(K, y01, 0.5)
    np.testing.assert_allclose(pm.decision_function(Kt), zo.decision_function(Kt))
    assert set(pm.predict(Kt).tolist()) <= {-1, 1}
    y3 = rng.integers(0, 3, 12)
    mc = fit_svm(K, y3, 0.5)
    scores = mc.decision_function(Kt)
    assert scores.shape == (4, 3)
    for c in range(3):  # each column is the binary SVM of class c against the rest
        binary = fit_svm(K, np.where(y3 == c, 1, -1), 0.5)
        np.testing.assert_allclose(scores[:, c], binary.decision_function(Kt), atol=1e-9)
    np.testing.assert_array_equal(mc.predict(Kt), np.argmax(scores, axis=1))


def test_kernel_ridge_regression_formula():
    K, Kt, rng = _kernel(9, seed=6)
    y = np.where(rng.random(9) < 0.5, 1, -1)
    model = fit_krr(K, y, 0.3)
    expected = Kt @ np.linalg.inv(K + 0.3 * np.eye(9)) @ y
    np.testing.assert_allclose(model.decision_function(Kt), expected, rtol=1e-10)
    np.testing.assert_allclose(krr_weights(K, Kt, 0.3) @ y, expected, rtol=1e-10)
    y3 = rng.integers(0, 3, 9)
    onehot = np.eye(3)[y3]
    np.testing.assert_allclose(fit_krr(K, y3, 0.3).decision_function(Kt),
                               Kt @ np.linalg.solve(K + 0.3 * np.eye(9), onehot), rtol=1e-10)


def test_predictions_and_margins_conventions():
    np.testing.assert_array_equal(predict_from_scores(np.array([0.5, 0.0, -1.0]), 2),
                                  [1, -1, -1])
    np.testing.assert_array_equal(predict_from_scores(np.array([[1.0, 1.0, 0.0]]), 3), [0])
    np.testing.assert_allclose(prediction_margins(np.array([[2.0, 0.5, 1.0]]), np.array([0]), 3),
                               [1.0])
    np.testing.assert_allclose(prediction_margins(np.array([-0.5, 2.0]), np.array([1, -1]), 2),
                               [-0.5, -2.0])


def test_stratified_folds_and_cv():
    K, _, rng = _kernel(20, seed=7)
    y = np.array([1] * 12 + [-1] * 8)
    folds = stratified_folds(y, 4, np.random.default_rng(0))
    joined = np.sort(np.concatenate(folds))
    np.testing.assert_array_equal(joined, np.arange(20))
    for f in folds:
        assert np.sum(y[f] == 1) == 3 and np.sum(y[f] == -1) == 2
    C1, acc1 = select_C_cv(K, y, C_grid=(0.01, 0.1, 1.0), seed=3)
    C2, acc2 = select_C_cv(K, y, C_grid=(0.01, 0.1, 1.0), seed=3)
    assert C1 == C2 and C1 in (0.01, 0.1, 1.0)
    np.testing.assert_array_equal(acc1, acc2)
    assert acc1[[0.01, 0.1, 1.0].index(C1)] == acc1.max()
    with pytest.raises(ValueError, match="n_folds"):
        stratified_folds(y, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="C"):
        select_C_cv(K, y, C_grid=(0.1, -1.0))
