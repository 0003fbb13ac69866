"""The authors' covariance clamp ("as published" kernels, gnn_ntk(covariance_clamp=True)).

The reference values are written out here from the reference code's procedure (clamp the
covariance in place before the arc-cosine expectations, so the clamped covariance also enters
Sigma * Edot), independently of certlab's layer recursion.
"""

import numpy as np
import pytest

from certlab.ntk import aggregation_matrix, clamp_covariance, gnn_ntk


def _graph(seed: int = 0, n: int = 12, d: int = 7):
    rng = np.random.default_rng(seed)
    adj = np.triu((rng.random((n, n)) < 0.3).astype(float), 1)
    adj = adj + adj.T
    # rows of very different norms: variances differ, so the clamp bites
    x = (rng.random((n, d)) < 0.4).astype(float) * rng.integers(1, 4, size=(n, 1))
    return adj, x


def _k0(rho):
    rho = np.clip(rho, -1, 1)
    return (np.pi - np.arccos(rho)) / np.pi


def _k1(rho):
    rho = np.clip(rho, -1, 1)
    return (rho * (np.pi - np.arccos(rho)) + np.sqrt(1 - rho ** 2)) / np.pi


def _reference_expectations(sig):
    d = np.diag(sig)
    sig = np.where((sig > d[None, :]) | (sig > d[:, None]), np.minimum.outer(d, d), sig)
    q = np.sqrt(np.outer(d, d))
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(q > 0, sig / q, 0.0)
    np.fill_diagonal(u, 1.0)
    return sig, q * _k1(u), _k0(u)


def _reference_gcn_depth1(adj, x):
    s = aggregation_matrix(adj, "gcn")
    sig = s @ x @ x.T @ s.T
    sig, e, edot = _reference_expectations(sig)
    return s @ (sig * edot) @ s.T + s @ e @ s.T


def _reference_appnp(adj, x):
    s = aggregation_matrix(adj, "appnp")
    sig = x @ x.T + 1.0
    sig, e, edot = _reference_expectations(sig)
    return s @ (sig * edot) @ s.T + s @ (e + 1.0) @ s.T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clamped_gcn_and_appnp_match_the_reference_procedure(seed):
    adj, x = _graph(seed)
    for model, reference in (("gcn", _reference_gcn_depth1), ("appnp", _reference_appnp)):
        ours = gnn_ntk(adj, x, model, covariance_clamp=True)
        ref = reference(adj, x)
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10, err_msg=model)


def test_clamp_changes_the_kernel_only_where_variances_differ():
    adj, x = _graph(3)
    plain = gnn_ntk(adj, x, "gcn")
    clamped = gnn_ntk(adj, x, "gcn", covariance_clamp=True)
    assert np.max(np.abs(plain - clamped)) > 1e-3 * np.max(np.abs(plain))
    # equal variances (identity features on an edgeless graph of an MLP-like model): no change
    eye = np.eye(6)
    empty = np.zeros((6, 6))
    np.testing.assert_allclose(gnn_ntk(empty, eye, "gcn", covariance_clamp=True),
                               gnn_ntk(empty, eye, "gcn"), rtol=0, atol=1e-14)


def test_clamp_covariance_is_entrywise_min_with_both_variances():
    sigma = np.array([[1.0, 1.5, -3.0], [1.5, 4.0, 2.5], [-3.0, 2.5, 9.0]])
    expected = np.array([[1.0, 1.0, -3.0], [1.0, 4.0, 2.5], [-3.0, 2.5, 9.0]])
    np.testing.assert_array_equal(clamp_covariance(sigma), expected)


def test_covariance_clamp_must_be_a_bool():
    adj, x = _graph(0)
    with pytest.raises(TypeError, match="covariance_clamp"):
        gnn_ntk(adj, x, "gcn", covariance_clamp="yes")


def _row_normalized(adj):
    s = adj + np.eye(adj.shape[0])
    return s / s.sum(axis=1, keepdims=True)


def _appnp_alpha0(adj, iterations=10):
    s = adj + np.eye(adj.shape[0])
    d = 1 / np.sqrt(s.sum(axis=1))
    s = d[:, None] * s * d[None, :]
    return np.linalg.matrix_power(s, iterations)


def test_published_ntk_follows_the_authors_configuration():
    """GCN: row-normalised S; APPNP: teleport 0 (S = S_sym^10); both clamped."""
    from certlab.ntk import published_ntk

    adj, x = _graph(4)
    s = _row_normalized(adj)
    sig, e, edot = _reference_expectations(s @ x @ x.T @ s.T)
    np.testing.assert_allclose(published_ntk(adj, x, "GCN"),
                               s @ (sig * edot) @ s.T + s @ e @ s.T, rtol=1e-10, atol=1e-10)
    s = _appnp_alpha0(adj)
    sig, e, edot = _reference_expectations(x @ x.T + 1.0)
    np.testing.assert_allclose(published_ntk(adj, x, "APPNP"),
                               s @ (sig * edot) @ s.T + s @ (e + 1.0) @ s.T,
                               rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="unknown architecture"):
        published_ntk(adj, x, "GAT")
