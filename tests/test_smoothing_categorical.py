"""General discrete data with K categories: brute force, Lee et al. (2019), reference, errors."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from certlab.smoothing.categorical import (categorical_regions, certify_categorical,
                                           rho_lower_categorical, rho_upper_categorical)
from certlab.smoothing.certificate import rho_lower, rho_upper
from certlab.smoothing.reference import (brute_force_worst_case, categorical_ball,
                                         categorical_channels, lee2019_rho_lower,
                                         lee2019_threshold, rho_lower_categorical_reference,
                                         rho_upper_categorical_reference)

TOL = 1e-12
P_GRID = np.linspace(0, 1, 41)


def test_two_categories_equal_binary():
    for p_plus, p_minus, ra, rd in [(0.01, 0.6, 3, 4), (0.7, 0.6, 2, 2), (0.0, 0.5, 1, 3)]:
        np.testing.assert_allclose(rho_lower_categorical(P_GRID, p_plus, p_minus, 2, ra, rd),
                                   rho_lower(P_GRID, p_plus, p_minus, ra, rd), atol=1e-14)
        np.testing.assert_allclose(rho_upper_categorical(P_GRID, p_plus, p_minus, 2, ra, rd),
                                   rho_upper(P_GRID, p_plus, p_minus, ra, rd), atol=1e-14)


@pytest.mark.parametrize("flip", [Fraction(1, 5), Fraction(1, 2), Fraction(9, 10)])
@pytest.mark.parametrize("n_categories", [3, 5, 256])
def test_uniform_noise_equals_lee2019_and_depends_only_on_total_radius(flip, n_categories):
    p = float(flip)
    for r in range(1, 6):
        splits = [(a, b, r - a - b) for a in range(r + 1) for b in range(r - a + 1)]
        values = [rho_lower_categorical(P_GRID, p, p, n_categories, *s) for s in splits]
        for v in values[1:]:
            np.testing.assert_allclose(v, values[0], atol=1e-14)
        lee = [float(lee2019_rho_lower(Fraction(float(q)), 1 - flip, n_categories, r))
               for q in P_GRID]
        np.testing.assert_allclose(values[0], lee, atol=1e-13)


def test_sparse_noise_does_depend_on_the_split():
    a = rho_lower_categorical(0.9, 0.05, 0.5, 4, 2, 0, 0)
    d = rho_lower_categorical(0.9, 0.05, 0.5, 4, 0, 2, 0)
    c = rho_lower_categorical(0.9, 0.05, 0.5, 4, 0, 0, 2)
    assert len({round(a, 10), round(d, 10), round(c, 10)}) == 3


CASES = [
    # p_plus, p_minus, K, ra, rd, rc
    (0.1, 0.6, 3, 1, 1, 1),
    (0.3, 0.3, 3, 1, 1, 0),
    (0.0, 0.4, 3, 1, 0, 1),
    (0.5, 0.0, 3, 1, 1, 0),
    (0.8, 0.9, 3, 0, 1, 1),
    (0.2, 0.5, 4, 1, 0, 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_categorical_equals_brute_force(case):
    p_plus, p_minus, k, ra, rd, rc = case
    x = (0, 0, 1, 2) if k == 3 else (0, 3, 1, 2)
    channels = categorical_channels(p_plus, p_minus, k, len(x))
    ball = categorical_ball(x, k, ra, rd, rc)
    for p in (0.3, 0.7, 0.95):
        lo_brute = brute_force_worst_case(p, x, ball, channels, "lower")
        up_brute = brute_force_worst_case(p, x, ball, channels, "upper")
        lo = rho_lower_categorical(p, p_plus, p_minus, k, ra, rd, rc)
        up = rho_upper_categorical(p, p_plus, p_minus, k, ra, rd, rc)
        assert lo <= lo_brute + TOL and up >= up_brute - TOL  # sound
        assert lo == pytest.approx(lo_brute, abs=TOL)  # tight
        assert up == pytest.approx(up_brute, abs=TOL)


def test_exact_rational_brute_force():
    x = (0, 1, 2)
    p_plus, p_minus = Fraction(1, 10), Fraction(1, 2)
    channels = categorical_channels(p_plus, p_minus, 3, len(x))
    ball = categorical_ball(x, 3, 1, 1, 1)
    p = Fraction(17, 20)
    brute = brute_force_worst_case(p, x, ball, channels, "lower")
    ref = rho_lower_categorical_reference(p, p_plus, p_minus, 3, 1, 1, 1)
    assert isinstance(ref, Fraction) and ref == brute
    assert abs(rho_lower_categorical(0.85, 0.1, 0.5, 3, 1, 1, 1) - float(brute)) < 1e-15


@pytest.mark.parametrize("case", [(0.05, 0.5, 10, 4, 6, 3), (0.2, 0.2, 256, 0, 0, 7),
                                  (0.01, 0.6, 3, 10, 10, 0)])
def test_categorical_matches_high_precision_reference(case):
    rng = np.random.default_rng(1)
    ps = np.concatenate([rng.uniform(0, 1, 8), 1 - 10.0 ** -rng.uniform(1, 14, 5), [0.0, 1.0]])
    lo = rho_lower_categorical(ps, *case)
    up = rho_upper_categorical(ps, *case)
    for p, lo_i, up_i in zip(ps, lo, up):
        assert abs(mpmath.mpf(float(lo_i)) - rho_lower_categorical_reference(float(p), *case)) \
            < TOL
        assert abs(mpmath.mpf(float(up_i)) - rho_upper_categorical_reference(float(p), *case)) \
            < TOL


def test_regions_sorted_and_normalised():
    regions = categorical_regions(0.05, 0.5, 5, 3, 2, 2)
    assert regions.labels.shape[1] == 9
    assert np.all(np.diff(regions.log_ratio) <= 0)
    assert abs(regions.px.sum() - 1) < 1e-13 and abs(regions.px_tilde.sum() - 1) < 1e-13


def test_certify_categorical():
    p = np.array([0.4, 0.8, 0.999])
    expected = rho_lower_categorical(p, 0.1, 0.1, 5, 1, 1, 1) > 0.5 + 1e-12
    np.testing.assert_array_equal(certify_categorical(p, 0.1, 0.1, 5, 1, 1, 1), expected)


def test_bad_input():
    with pytest.raises(ValueError, match="n_categories"):
        rho_lower_categorical(0.9, 0.1, 0.1, 1, 1, 0)
    with pytest.raises(TypeError, match="n_categories"):
        rho_lower_categorical(0.9, 0.1, 0.1, 2.5, 1, 0)
    with pytest.raises(ValueError, match="rc"):
        rho_lower_categorical(0.9, 0.1, 0.1, 2, 1, 0, 1)
    with pytest.raises(ValueError, match="p_lower"):
        rho_lower_categorical(-0.1, 0.1, 0.1, 3, 1, 0)
    with pytest.raises(ValueError, match="p_plus"):
        rho_upper_categorical(0.5, 2.0, 0.1, 3, 1, 0)
    with pytest.raises(ValueError, match="rd"):
        rho_upper_categorical(0.5, 0.1, 0.1, 3, 1, -1)


def test_large_radius_borderline_case_is_not_certified():
    # Found in review: at ra + rd ~ 2000 the log-space masses are ~1e-12 too optimistic; the
    # exact (1000-bit) rho is 2.9e-14 BELOW 1/2, so the cell must not be certified.
    from certlab.smoothing.categorical import certify_categorical
    from certlab.smoothing.certificate import certify
    from certlab.smoothing.reference import rho_lower_reference

    pp, pm, ra, rd, p = 0.14728028087363526, 0.8584220151515026, 826, 1328, 0.7743751553546633
    assert rho_lower_reference(p, pp, pm, ra, rd) < 0.5
    assert not certify(p, pp, pm, ra, rd)
    assert not certify_categorical(p, pp, pm, 2, ra, rd)


def test_bad_radii_and_too_many_regions_are_refused():
    from certlab.smoothing.categorical import MAX_CATEGORICAL_REGIONS

    # issue 10: ra="abc" gave int()'s message, None a bare TypeError
    for bad in ("abc", None, 1.5):
        with pytest.raises(TypeError, match="ra must be a non-negative integer"):
            certify_categorical(0.9, 0.1, 0.1, 10, bad, 1)
    with pytest.raises(TypeError, match="rc must be"):
        certify_categorical(0.9, 0.1, 0.1, 10, 1, 1, rc="2")
    # issue 10: (40, 40, 40) raised a raw MemoryError; 861^3 regions
    assert 861**3 > MAX_CATEGORICAL_REGIONS
    for fn in (rho_lower_categorical, rho_upper_categorical, certify_categorical):
        with pytest.raises(ValueError, match="MAX_CATEGORICAL_REGIONS"):
            fn(0.9, 0.1, 0.1, 10, 40, 40, 40)
    with pytest.raises(ValueError, match="MAX_CATEGORICAL_REGIONS"):
        categorical_regions(0.1, 0.1, 10, 10**100, 1, 1)
    # binary categories count r + 1 cells per type: large radii stay admissible
    assert rho_lower_categorical(0.9, 0.1, 0.2, 2, 300, 300) == \
        pytest.approx(rho_lower(0.9, 0.1, 0.2, 300, 300), abs=1e-12)
    with pytest.raises(ValueError, match=r"p_lower \+ p_upper"):
        certify_categorical(0.7, 0.1, 0.1, 10, 1, 1, p_upper=0.6)


@pytest.mark.parametrize("keep", [Fraction(1, 10), Fraction(1, 2), Fraction(1, 1000)])
@pytest.mark.parametrize("r", [1, 3, 7])
def test_lee2019_threshold_is_where_the_fill_crosses_one_half(keep, r):
    """The pre-computed threshold is exact: rho = 1/2 there, below just under it, above just
    over it; the fast path certifies exactly the p_lower above it (up to its safety margin)."""
    k = 256
    star = lee2019_threshold(keep, k, r)
    eps = Fraction(1, 10**9)
    if star < 1:
        assert lee2019_rho_lower(star, keep, k, r) == Fraction(1, 2)
        assert lee2019_rho_lower(min(star + eps, Fraction(1)), keep, k, r) > Fraction(1, 2)
    assert lee2019_rho_lower(max(star - eps, Fraction(0)), keep, k, r) < Fraction(1, 2)
    p = float(1 - keep)
    grid = np.linspace(0.5, 1.0, 2001)
    fast = certify_categorical(grid, p, p, k, 0, 0, r)
    exact = np.array([Fraction(q) > star for q in grid])
    assert not np.any(fast & ~exact)  # never certifies what the exact certificate refuses
    near = np.abs(grid - float(star)) < 1e-9
    assert np.array_equal(fast[~near], exact[~near])


def test_lee2019_rejects_bad_arguments():
    with pytest.raises(TypeError, match="keep must be a Fraction"):
        lee2019_threshold(0.1, 256, 3)
    with pytest.raises(ValueError, match="keep"):
        lee2019_threshold(Fraction(3, 2), 256, 3)
    with pytest.raises(ValueError, match="n_categories"):
        lee2019_threshold(Fraction(1, 2), 1, 3)
    with pytest.raises(ValueError, match="p_lower"):
        lee2019_rho_lower(Fraction(3, 2), Fraction(1, 2), 4, 1)
