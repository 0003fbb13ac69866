"""Closed-form GNN NTKs (certlab.ntk.gnn_ntk): exact identities, symmetry, PSD, validation.

Reference values are built here from dense numpy formulas written independently of the
library (dense S, explicit matrix powers), and the arc-cosine expectations are checked against
numerical integration of the Gaussian integrals.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import quad
from scipy.stats import norm

from certlab.ntk import (aggregation_matrix, arccos_kernel_0, arccos_kernel_1, gnn_ntk,
                         relu_expectations, skip_alpha_reference_ntk)


def random_graph(n: int = 14, d: int = 5, p: float = 0.25, seed: int = 0):
    """Random undirected graph with an isolated node, a zero feature row and mixed scales."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < p, k=1)
    adj = (upper | upper.T).astype(float)
    adj[0, :] = adj[:, 0] = 0.0          # node 0 isolated
    x = rng.standard_normal((n, d)) * rng.uniform(0.2, 3.0, size=(n, 1))
    x[1] = 0.0                           # node 1 has no features
    return adj, x


def dense_gcn_s(adj: np.ndarray, normalization: str = "sym") -> np.ndarray:
    a = adj + np.eye(adj.shape[0])
    deg = a.sum(1)
    if normalization == "sym":
        return a / np.sqrt(np.outer(deg, deg))
    return a / deg[:, None]


# ------------------------------------------------------------------- aggregation matrices


def test_aggregation_matrices_match_dense_definitions():
    adj, _ = random_graph()
    n = adj.shape[0]
    for normalization in ("sym", "row"):
        np.testing.assert_allclose(aggregation_matrix(adj, "gcn", normalization=normalization),
                                   dense_gcn_s(adj, normalization), atol=1e-15)
    deg = adj.sum(1)
    inv = np.divide(1.0, deg, out=np.zeros(n), where=deg > 0)
    np.testing.assert_allclose(aggregation_matrix(adj, "sage"), inv[:, None] * adj + np.eye(n),
                               atol=1e-15)
    np.testing.assert_array_equal(aggregation_matrix(adj, "gin"), adj + np.eye(n))
    np.testing.assert_array_equal(aggregation_matrix(adj, "mlp"), np.eye(n))
    # APPNP after K steps from S_0 = I: (1-a)^K S_hat^K + a sum_{k<K} (1-a)^k S_hat^k
    s_hat, a, k_steps = dense_gcn_s(adj), 0.1, 10
    expected = (1 - a) ** k_steps * np.linalg.matrix_power(s_hat, k_steps) + a * sum(
        (1 - a) ** k * np.linalg.matrix_power(s_hat, k) for k in range(k_steps))
    np.testing.assert_allclose(aggregation_matrix(adj, "appnp"), expected, atol=1e-13)


# ---------------------------------------------------------------------- ReLU expectations


def test_arccos_expectations_match_numerical_integration():
    """c E[relu(u) relu(v)] and c E[1(u>0) 1(v>0)] by 1-d quadrature over u of the
    conditional Gaussian v | u (closed-form E[relu(N(m, s^2))] = m Phi(m/s) + s phi(m/s))."""
    for var_i, var_j, rho in [(1.0, 1.0, 0.3), (2.0, 0.5, -0.7), (0.3, 4.0, 0.95), (1.0, 2.0, 0.0)]:
        su, sv = np.sqrt(var_i), np.sqrt(var_j)
        cond_sd = sv * np.sqrt(1 - rho**2)

        def cond_mean(u):
            return rho * sv / su * u

        def relu_mean(u):
            m = cond_mean(u)
            return m * norm.cdf(m / cond_sd) + cond_sd * norm.pdf(m / cond_sd)

        e_num = 2 * quad(lambda u: u * relu_mean(u) * norm.pdf(u, scale=su), 0, np.inf,
                         epsabs=1e-13, epsrel=1e-12)[0]
        edot_num = 2 * quad(lambda u: norm.cdf(cond_mean(u) / cond_sd) * norm.pdf(u, scale=su),
                            0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
        cov = rho * su * sv
        e, edot = relu_expectations(np.array([[var_i, cov], [cov, var_j]]))
        assert e[0, 1] == pytest.approx(e_num, rel=1e-8, abs=1e-12)
        assert edot[0, 1] == pytest.approx(edot_num, rel=1e-8, abs=1e-12)
        assert e[0, 0] == pytest.approx(var_i, rel=1e-12)      # c E[relu(u)^2] = Var u
    assert arccos_kernel_0(1.0) == 1.0 and arccos_kernel_1(1.0) == 1.0
    assert arccos_kernel_0(-1.0) == 0.0 and arccos_kernel_1(-1.0) == 0.0
    # rho a few ulp outside [-1, 1] is clipped, not NaN
    assert np.isfinite(arccos_kernel_1(1 + 1e-15)) and np.isfinite(arccos_kernel_0(-1 - 1e-15))


def test_relu_expectations_clip_only_the_correlation():
    # covariance 1.5 between variances 1 and 4: valid (|rho| = 0.75), but the reference's
    # clamp to min(S_ii, S_jj) = 1 would change it
    sigma = np.array([[1.0, 1.5], [1.5, 4.0]])
    e, edot = relu_expectations(sigma)
    assert e[0, 1] == pytest.approx(2.0 * arccos_kernel_1(0.75), rel=1e-14)
    assert edot[0, 1] == pytest.approx(arccos_kernel_0(0.75), rel=1e-14)


# ----------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("normalization", ["sym", "row"])
def test_sgc_depth_one_closed_form(normalization):
    adj, x = random_graph()
    s = dense_gcn_s(adj, normalization)
    s2 = s @ s
    expected = 2 * s2 @ x @ x.T @ s2.T
    k = gnn_ntk(adj, x, "sgc", normalization=normalization)
    np.testing.assert_allclose(k, expected, rtol=1e-12, atol=1e-12)
    # the linear GCN is the SGC whatever `activation` says for sgc
    np.testing.assert_array_equal(gnn_ntk(adj, x, "gcn", activation="linear",
                                          normalization=normalization), k)
    np.testing.assert_array_equal(gnn_ntk(adj, x, "sgc", activation="relu",
                                          normalization=normalization), k)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_linear_gcn_depth_L_closed_form(depth):
    # Theta_i and Sig_{L+1} all equal S^{L+1} X X^T (S^{L+1})^T: NTK = (L+1) of them
    adj, x = random_graph(seed=1)
    p = np.linalg.matrix_power(dense_gcn_s(adj), depth + 1)
    expected = (depth + 1) * p @ x @ x.T @ p.T
    np.testing.assert_allclose(gnn_ntk(adj, x, "sgc", depth=depth), expected, rtol=1e-11,
                               atol=1e-11)


def test_relu_depth_one_models_match_dense_formulas():
    adj, x = random_graph(seed=2)
    n = adj.shape[0]
    xx = x @ x.T
    for model in ("gcn", "sage"):
        s = aggregation_matrix(adj, model)
        sig = s @ xx @ s.T
        e, edot = relu_expectations(sig)
        np.testing.assert_allclose(gnn_ntk(adj, x, model), s @ e @ s.T + s @ (sig * edot) @ s.T,
                                   rtol=1e-11, atol=1e-11)
    s = adj + np.eye(n)                                         # GIN: no output aggregation
    sig = s @ xx @ s.T
    e, edot = relu_expectations(sig)
    np.testing.assert_allclose(gnn_ntk(adj, x, "gin"), sig * edot + e, rtol=1e-11, atol=1e-11)
    ones = np.ones((n, n))
    sig = xx + ones                                             # APPNP / MLP: with biases
    e, edot = relu_expectations(sig)
    s = aggregation_matrix(adj, "appnp")
    np.testing.assert_allclose(gnn_ntk(adj, x, "appnp"),
                               s @ (sig * edot) @ s.T + s @ (e + ones) @ s.T, rtol=1e-11,
                               atol=1e-11)
    np.testing.assert_allclose(gnn_ntk(adj, x, "mlp"), sig * edot + e + ones, rtol=1e-11,
                               atol=1e-11)
    np.testing.assert_allclose(gnn_ntk(adj, x, "mlp"), gnn_ntk(adj, x, "appnp", appnp_alpha=1.0),
                               rtol=1e-12, atol=1e-12)


def test_relu_gcn_depth_two_matches_the_papers_recursion():
    adj, x = random_graph(seed=3)
    s = dense_gcn_s(adj)
    sig1 = s @ x @ x.T @ s.T
    e1, edot1 = relu_expectations(sig1)
    theta1 = s @ (sig1 * edot1) @ s.T
    sig2 = s @ e1 @ s.T
    e2, edot2 = relu_expectations(sig2)
    theta2 = s @ (sig2 * edot2) @ s.T
    theta1 = s @ (theta1 * edot2) @ s.T
    expected = s @ e2 @ s.T + theta1 + theta2
    # arccos has an infinite slope at rho = 1: round-off of 1e-16 in Sig moves it by ~1e-8
    np.testing.assert_allclose(gnn_ntk(adj, x, "gcn", depth=2), expected, rtol=1e-7, atol=1e-9)


def test_skip_connections_closed_forms_and_limits():
    adj, x = random_graph(seed=4)
    s = dense_gcn_s(adj)
    xx = x @ x.T
    sxxs = s @ xx @ s.T
    # linear skip-PC, depth 1: Sig_2 = S Sig_1 S^T + S XX^T S^T, Theta_1 = S Sig_1 S^T
    np.testing.assert_allclose(gnn_ntk(adj, x, "gcn", activation="linear", skip="pc"),
                               2 * s @ sxxs @ s.T + sxxs, rtol=1e-11, atol=1e-11)
    # skip-alpha: a = 0 is the plain GCN, a = 1 leaves only the input kernel X X^T
    for activation in ("relu", "linear"):
        np.testing.assert_allclose(
            gnn_ntk(adj, x, "gcn", activation=activation, skip="alpha", skip_alpha=0.0),
            gnn_ntk(adj, x, "gcn", activation=activation), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gnn_ntk(adj, x, "gcn", skip="alpha", skip_alpha=1.0), xx,
                               rtol=1e-12, atol=1e-12)
    # linear skip-alpha depth 1 with the (1-a)^2 factor on Theta; the reference lacks it
    a = 0.1
    p1 = (1 - a) * s + a * np.eye(len(s))
    sig1 = p1 @ xx @ p1.T
    ours = (1 - a) ** 2 * s @ sig1 @ s.T + a * a * xx + (1 - a) ** 2 * s @ sig1 @ s.T
    ref = (1 - a) ** 2 * s @ sig1 @ s.T + a * a * xx + s @ sig1 @ s.T
    np.testing.assert_allclose(gnn_ntk(adj, x, "gcn", activation="linear", skip="alpha"), ours,
                               rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(skip_alpha_reference_ntk(adj, x, activation="linear"), ref,
                               rtol=1e-11, atol=1e-11)


def test_relu_and_linear_differ_and_relu_kernel_is_nonnegative_on_nonneg_features():
    adj, x = random_graph(seed=5)
    x = np.abs(x)
    k_relu = gnn_ntk(adj, x, "gcn")
    k_lin = gnn_ntk(adj, x, "gcn", activation="linear")
    assert np.linalg.norm(k_relu - k_lin) > 1e-3 * np.linalg.norm(k_lin)
    assert (k_relu >= -1e-12).all()
    # diagonal: for non-negative features rho >= 0 everywhere, and at rho = 1 ReLU and linear
    # kernels coincide (k0 = k1 = 1), so ReLU can only shrink off-diagonal correlations
    assert np.all(np.abs(k_relu) <= np.sqrt(np.outer(np.diag(k_relu), np.diag(k_relu))) + 1e-9)


# ---------------------------------------------------------------- symmetry and PSD


CONFIGS = (
    [dict(model=m, activation=act, depth=dep)
     for m, act, dep in itertools.product(("gcn", "sgc", "appnp", "gin", "sage", "mlp"),
                                          ("relu", "linear"), (1, 2))]
    + [dict(model=m, activation=act, skip=sk, depth=dep)
       for m, act, sk, dep in itertools.product(("gcn", "sgc", "sage"), ("relu", "linear"),
                                                ("pc", "alpha"), (1, 2))]
    + [dict(model="gcn", normalization="row"), dict(model="appnp", normalization="row")]
)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_symmetric_psd_float64(config):
    adj, x = random_graph(n=16, seed=6)
    k = gnn_ntk(adj, x, **config)
    assert k.dtype == np.float64 and k.shape == (16, 16)
    np.testing.assert_array_equal(k, k.T)
    eig = np.linalg.eigvalsh(k)
    assert eig.min() >= -1e-10 * max(eig.max(), 1.0), (config, eig.min())
    assert np.all(np.isfinite(k))


def test_reference_covariance_clamp_breaks_psd_where_ours_does_not():
    """The measured pitfall: clamping Sig_ij to min(Sig_ii, Sig_jj) (the authors' code)
    changes valid entries and makes GIN's kernel indefinite; clipping rho does not."""
    rng = np.random.default_rng(7)
    n = 40
    upper = np.triu(rng.random((n, n)) < 0.15, k=1)
    adj = (upper | upper.T).astype(float)
    x = (rng.random((n, 30)) < 0.2).astype(float)
    s = adj + np.eye(n)
    sig = s @ x @ x.T @ s.T
    clamped = np.minimum(sig, np.minimum.outer(np.diag(sig), np.diag(sig)))
    e_c, edot_c = relu_expectations(clamped)
    k_clamped = clamped * edot_c + e_c
    k = gnn_ntk(adj, x, "gin")
    assert np.linalg.eigvalsh(k).min() >= -1e-9 * np.abs(k).max()
    assert np.linalg.eigvalsh(k_clamped).min() < -1e-6 * np.abs(k).max()
    assert np.abs(k_clamped - k).max() > 1e-3 * np.abs(k).max()


def test_sparse_and_dense_inputs_agree():
    adj, x = random_graph(seed=8)
    k_dense = gnn_ntk(adj, x, "appnp")
    k_sparse = gnn_ntk(sp.csr_matrix(adj), sp.csr_matrix(x), "appnp")
    np.testing.assert_allclose(k_dense, k_sparse, rtol=1e-13, atol=1e-13)
    k_list = gnn_ntk(adj.astype(int).tolist(), x.tolist(), "gin")
    np.testing.assert_allclose(k_list, gnn_ntk(adj, x, "gin"), rtol=1e-13)


# ------------------------------------------------------------------------ validation


def test_input_validation():
    adj, x = random_graph(n=6)
    with pytest.raises(ValueError, match="unknown model 'gat'.*gcn, sgc, appnp, gin, sage, mlp"):
        gnn_ntk(adj, x, "gat")
    with pytest.raises(ValueError, match="square"):
        gnn_ntk(adj[:, :5], x, "gcn")
    bad = adj.copy()
    bad[2, 3] = bad[3, 2] = 2.0
    with pytest.raises(ValueError, match="binary"):
        gnn_ntk(bad, x, "gcn")
    loops = adj + np.eye(6)
    with pytest.raises(ValueError, match="self-loops"):
        gnn_ntk(loops, x, "gcn")
    directed = np.triu(np.ones((6, 6)), k=1)
    with pytest.raises(ValueError, match="symmetric"):
        gnn_ntk(directed, x, "gcn")
    with pytest.raises(ValueError, match="features has 5 rows"):
        gnn_ntk(adj, x[:5], "gcn")
    with pytest.raises(ValueError, match="2-d"):
        gnn_ntk(adj, x[:, 0], "gcn")
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gnn_ntk(adj, x_nan, "gcn")
    with pytest.raises(ValueError, match="depth"):
        gnn_ntk(adj, x, "gcn", depth=0)
    with pytest.raises(TypeError, match="depth"):
        gnn_ntk(adj, x, "gcn", depth=1.5)
    with pytest.raises(ValueError, match="activation"):
        gnn_ntk(adj, x, "gcn", activation="tanh")
    with pytest.raises(ValueError, match="normalization"):
        gnn_ntk(adj, x, "gcn", normalization="none")
    with pytest.raises(ValueError, match="skip"):
        gnn_ntk(adj, x, "gcn", skip="dense")
    with pytest.raises(ValueError, match="skip='pc' is defined for the models"):
        gnn_ntk(adj, x, "gin", skip="pc")
    with pytest.raises(ValueError, match="skip_alpha"):
        gnn_ntk(adj, x, "gcn", skip="alpha", skip_alpha=1.5)
    with pytest.raises(ValueError, match="appnp_alpha"):
        gnn_ntk(adj, x, "appnp", appnp_alpha=-0.1)
    with pytest.raises(ValueError, match="appnp_iterations"):
        gnn_ntk(adj, x, "appnp", appnp_iterations=-1)
    with pytest.raises(TypeError, match="adj"):
        gnn_ntk(object(), x, "gcn")


# ------------------------------------------------------------------ analysis helpers


def test_normalized_kernel_and_alignment():
    from certlab.ntk import kernel_target_alignment, normalized_kernel

    adj, x = random_graph(seed=9)
    k = gnn_ntk(adj, x, "gcn")
    nk = normalized_kernel(k)
    d = np.diag(k) > 0
    np.testing.assert_allclose(np.diag(nk)[d], 1.0, rtol=1e-14)
    assert np.all(np.abs(nk) <= 1 + 1e-12)
    y = np.array([1, -1] * 7)
    ideal = np.outer(y, y).astype(float)
    assert kernel_target_alignment(3 * ideal, y) == pytest.approx(1.0, rel=1e-14)
    assert kernel_target_alignment(3 * ideal, y, centered=False) == pytest.approx(1.0)
    # centring removes a constant offset (APPNP/MLP bias term); the uncentred one does not
    assert kernel_target_alignment(k + 50.0, y) == pytest.approx(kernel_target_alignment(k, y),
                                                                 rel=1e-9)
    assert kernel_target_alignment(k + 50.0, y, centered=False) < \
        kernel_target_alignment(k, y, centered=False)
    with pytest.raises(ValueError, match="labels"):
        kernel_target_alignment(k, np.zeros(14))


def test_kernel_svm_accuracy():
    from certlab.ntk import kernel_svm_accuracy

    rng = np.random.default_rng(0)
    y = np.where(rng.random(30) < 0.5, 1, -1)
    y[:4] = [1, -1, 1, -1]
    k = np.outer(y, y) + 0.1 * np.eye(30)          # perfectly separating kernel
    train, test = np.arange(12), np.arange(12, 30)
    res = kernel_svm_accuracy(k, y, train, test, C=0.5)
    assert res.accuracy == 1.0 and res.C == 0.5 and res.kkt_residual < 1e-8
    y_wrong = np.concatenate([y[:12], -y[12:]])   # test nodes look like the other class
    flipped = kernel_svm_accuracy(np.outer(y_wrong, y_wrong) + 0.1 * np.eye(30), y, train, test,
                                  C=0.5)
    assert flipped.accuracy == 0.0
    cv = kernel_svm_accuracy(k, y, train, test)   # C by cross-validation on the train nodes
    assert cv.accuracy == 1.0 and cv.C > 0
    with pytest.raises(ValueError, match="test"):
        kernel_svm_accuracy(k, y, train, np.array([40]), C=1.0)


# ------------------------------------------------------------------ overflow and size limits
@pytest.mark.parametrize("model", ["gcn", "sgc", "gin", "sage", "appnp", "mlp"])
def test_huge_features_give_a_finite_kernel_or_a_clear_error(model):
    # issue 10: gnn_ntk(adj, X * 1e200) returned an all-NaN kernel silently
    adj, x = random_graph(n=6)
    base = gnn_ntk(adj, x, model, depth=2)
    homogeneous = model not in ("appnp", "mlp")  # no biases: NTK(c X) = c^2 NTK(X)
    for scale in (1e100, 1e150, 1e152, 1e154, 1e160, 1e200, 1e300):
        try:
            k = gnn_ntk(adj, x * scale, model, depth=2)
        except ValueError as exc:
            assert "overflow" in str(exc)
            continue
        assert np.all(np.isfinite(k))
        if homogeneous:
            # (arccos near rho = 1 amplifies the different rounding: ~1e-9 relative)
            np.testing.assert_allclose(k / scale**2, base, rtol=1e-7)
    with pytest.raises(ValueError, match=r"X X\^T overflows"):
        gnn_ntk(adj, x * 1e200, model)


def test_absurd_sizes_are_refused_up_front(monkeypatch):
    import certlab.ntk.gnn as gnn_mod
    from certlab.ntk import aggregation_operator, build_wide_gnn

    adj, x = random_graph(n=6)
    with pytest.raises(ValueError, match="MAX_DEPTH=1000"):
        gnn_ntk(adj, x, "gcn", depth=10**6)
    with pytest.raises(ValueError, match="MAX_DEPTH"):
        build_wide_gnn(adj, x, "gcn", width=4, depth=10**6)
    with pytest.raises(ValueError, match="MAX_APPNP_ITERATIONS"):
        gnn_ntk(adj, x, "appnp", appnp_iterations=10**9)
    with pytest.raises(ValueError, match="MAX_APPNP_ITERATIONS"):
        aggregation_operator(adj, "appnp", appnp_iterations=10**9)
    assert gnn_ntk(adj, x, "gcn", depth=gnn_mod.MAX_DEPTH).shape == (6, 6)
    # the work and memory estimates are checked before any work (limits lowered here)
    monkeypatch.setattr(gnn_mod, "MAX_NTK_WORK", 1e4)
    with pytest.raises(ValueError, match="MAX_NTK_WORK"):
        gnn_ntk(adj, x, "gcn", depth=20)
    monkeypatch.setattr(gnn_mod, "MAX_NTK_WORK", 1e12)
    monkeypatch.setattr(gnn_mod, "MAX_NTK_BYTES", 1000)
    with pytest.raises(ValueError, match="MAX_NTK_BYTES"):
        gnn_ntk(adj, x, "gcn")


def test_kernel_svm_accuracy_refuses_indefinite_kernels_and_non_integer_indices():
    from certlab.ntk import kernel_svm_accuracy

    rng = np.random.default_rng(1)
    y = np.where(rng.random(20) < 0.5, 1, -1)
    train, test = np.arange(12), np.arange(12, 20)
    k = np.outer(y, y) + 0.1 * np.eye(20)
    indefinite = k - 3.0 * np.eye(20)   # eigenvalues down to -2.9 (exact: rank-one + shift)
    with pytest.raises(ValueError, match="not positive semi-definite.*smallest eigenvalue -2.9"):
        kernel_svm_accuracy(indefinite, y, train, test, C=1.0)
    asym = k.copy()
    asym[0, 1] += 1.0
    with pytest.raises(ValueError, match="symmetric"):
        kernel_svm_accuracy(asym, y, train, test, C=1.0)
    # round-off-level negative eigenvalues of a closed-form NTK are accepted
    adj, x = random_graph(n=20)
    ntk = gnn_ntk(adj, x, "gcn", depth=2)
    assert kernel_svm_accuracy(ntk, y, train, test, C=1.0).accuracy >= 0.0
    with pytest.raises(TypeError, match="train must hold integer node indices"):
        kernel_svm_accuracy(k, y, train + 0.5, test, C=1.0)
    with pytest.raises(TypeError, match="test must hold integer"):
        kernel_svm_accuracy(k, y, train, np.ones(20, dtype=bool), C=1.0)
