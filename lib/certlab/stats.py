"""Confidence bounds for Monte-Carlo estimates of a probability.

Randomized smoothing (Cohen et al., 2019; Bojchevski et al., 2020) estimates the probability
that a base classifier returns a class under noise from ``n`` samples and certifies with a
one-sided Clopper-Pearson bound at level ``alpha``. The bounds are the quantiles of the Beta
distribution (scipy), i.e. the exact binomial confidence interval.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _stats

from certlab.utils import check_finite, check_probability

__all__ = [
    "clopper_pearson_lower", "clopper_pearson_upper", "clopper_pearson_interval",
    "lower_bound_coverage",
]


def _check(counts: ArrayLike, n: ArrayLike, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) \
            or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    k = check_finite(counts, "counts")
    m = check_finite(n, "n")
    if np.any(np.mod(k, 1) != 0):
        raise ValueError(f"counts must be whole numbers, got {counts!r}")
    if np.any(np.mod(m, 1) != 0):
        raise ValueError(f"n must be whole numbers, got {n!r}")
    if np.any(m <= 0):
        raise ValueError(f"n must be positive, got {n!r}")
    try:
        k, m = np.broadcast_arrays(k, m)
    except ValueError as exc:
        raise ValueError(f"counts (shape {k.shape}) and n (shape {m.shape}) do not "
                         "broadcast") from exc
    if np.any(k < 0) or np.any(k > m):
        raise ValueError(f"counts must lie in [0, n], got counts={counts!r}, n={n!r}")
    return k, m


def clopper_pearson_lower(counts: ArrayLike, n: ArrayLike, alpha: float) -> np.ndarray | float:
    """One-sided lower confidence bound: P(p >= bound) >= 1 - alpha.

    Args:
        counts: successes, shape ``(...)``, integers in ``[0, n]``.
        n: trials, broadcastable to ``counts``.
        alpha: error probability in (0, 1).

    Returns:
        ``Beta(alpha; k, n - k + 1)`` quantile, 0 where ``k = 0``; same shape as the inputs
        (a Python float for scalar inputs).
    """
    k, m = _check(counts, n, alpha)
    with np.errstate(invalid="ignore"):
        out = np.where(k > 0, _stats.beta.ppf(alpha, k, m - k + 1), 0.0)
    return float(out) if out.ndim == 0 else out


def clopper_pearson_upper(counts: ArrayLike, n: ArrayLike, alpha: float) -> np.ndarray | float:
    """One-sided upper confidence bound: P(p <= bound) >= 1 - alpha (1 where ``k = n``)."""
    k, m = _check(counts, n, alpha)
    with np.errstate(invalid="ignore"):
        out = np.where(k < m, _stats.beta.ppf(1.0 - alpha, k + 1, m - k), 1.0)
    return float(out) if out.ndim == 0 else out


def clopper_pearson_interval(
    counts: ArrayLike, n: ArrayLike, alpha: float
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Two-sided interval with coverage ``1 - alpha`` (each side at ``alpha / 2``)."""
    return clopper_pearson_lower(counts, n, alpha / 2), clopper_pearson_upper(counts, n, alpha / 2)


def lower_bound_coverage(n: int, p: float, alpha: float) -> float:
    """Exact probability that the one-sided lower bound holds, P_k~Bin(n, p)(bound(k) <= p).

    Computed by summing the binomial pmf over the outcomes k whose bound is at most ``p``;
    Clopper-Pearson guarantees at least ``1 - alpha`` for every ``p``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    p = float(check_probability(p, "p"))
    k = np.arange(n + 1)
    holds = np.asarray(clopper_pearson_lower(k, n, alpha)) <= p
    return float(_stats.binom.pmf(k, n, p)[holds].sum())
