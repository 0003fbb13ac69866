import numpy as np
import pytest
from scipy import stats

from certlab.stats import (clopper_pearson_interval, clopper_pearson_lower,
                           clopper_pearson_upper, lower_bound_coverage)


@pytest.mark.parametrize("n", [1, 7, 100, 1000])
def test_lower_bound_solves_the_binomial_tail_equation(n):
    # Independent definition: the lower bound p_L satisfies P_{p_L}(X >= k) = alpha.
    alpha = 0.01
    for k in range(1, n + 1, max(1, n // 13)):
        lb = clopper_pearson_lower(k, n, alpha)
        assert stats.binom.sf(k - 1, n, lb) == pytest.approx(alpha, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("n", [1, 10, 250])
def test_upper_bound_solves_the_binomial_cdf_equation(n):
    alpha = 0.05
    for k in range(0, n, max(1, n // 11)):
        ub = clopper_pearson_upper(k, n, alpha)
        assert stats.binom.cdf(k, n, ub) == pytest.approx(alpha, rel=1e-6, abs=1e-12)


def test_edge_cases_and_vectorisation():
    assert clopper_pearson_lower(0, 10, 0.01) == 0.0
    assert clopper_pearson_upper(10, 10, 0.01) == 1.0
    counts = np.array([[0, 5], [9, 10]])
    lower = clopper_pearson_lower(counts, 10, 0.01)
    assert lower.shape == (2, 2) and np.all(np.diff(lower.ravel()) > 0)
    lo, hi = clopper_pearson_interval(counts, 10, 0.1)
    assert np.all(lo <= counts / 10) and np.all(counts / 10 <= hi)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.8, 0.99])
@pytest.mark.parametrize("n", [20, 300])
def test_exact_coverage_is_at_least_one_minus_alpha(n, p):
    alpha = 0.01
    coverage = lower_bound_coverage(n, p, alpha)
    assert 1 - alpha <= coverage <= 1.0
    # and the bound is not trivially conservative: at n=300 some outcomes do fail
    if n == 300 and 0.05 < p < 0.99:
        assert coverage < 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(counts=5, n=10, alpha=0.0), "alpha"),
    (dict(counts=5, n=10, alpha=1.5), "alpha"),
    (dict(counts=11, n=10, alpha=0.1), "counts"),
    (dict(counts=-1, n=10, alpha=0.1), "counts"),
    (dict(counts=1, n=0, alpha=0.1), "n must be positive"),
    (dict(counts=1.5, n=10, alpha=0.1), "whole numbers"),
])
def test_bad_input_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        clopper_pearson_lower(**kwargs)


@pytest.mark.parametrize("counts, n, exc, match", [
    ("abc", 10, TypeError, "counts must be a number"),
    (3, "10", TypeError, "n must be a number"),
    ([1, [2, 3]], 10, ValueError, "counts must be .*rectangular"),
    (None, 10, TypeError, "counts"),
    (float("nan"), 10, ValueError, "counts must be finite"),
    (3, float("inf"), ValueError, "n must be finite"),
    (2.5, 10, ValueError, "counts must be whole"),
    ([1, 2, 3], [10, 10], ValueError, "do not broadcast"),
])
def test_bad_counts_get_errors_naming_the_argument(counts, n, exc, match):
    for bound in (clopper_pearson_lower, clopper_pearson_upper):
        with pytest.raises(exc, match=match):
            bound(counts, n, 0.05)


def test_bad_alpha_and_p():
    for alpha in ("0.05", None, True, 0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            clopper_pearson_lower(3, 10, alpha)
    with pytest.raises(TypeError, match="p must be a number"):
        lower_bound_coverage(10, "0.5", 0.05)
