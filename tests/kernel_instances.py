"""Small label-flip instances shared by the poisoning tests."""

import numpy as np


def gaussian_mixture_instance(m, t, seed, n_classes=2, d=4):
    """Gaussian-mixture features, a linear + RBF kernel (full rank).

    Returns ``(K_train (m, m), K_test (t, m), y (m,))`` with labels in {-1, +1} (binary) or
    0..n_classes-1.
    """
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, n_classes, m + t)
    mu = rng.normal(size=(n_classes, d)) * 1.2
    X = mu[cls] + rng.normal(size=(m + t, d))
    K = X @ X.T / d + np.exp(-((X[:, None] - X[None]) ** 2).sum(-1) / d)
    y = cls[:m] if n_classes > 2 else 2 * cls[:m] - 1
    return K[:m, :m], K[m:, :m], y
