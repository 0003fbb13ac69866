"""Public API of the sparse-smoothing certificate: special cases, grid, radii, bad input."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from certlab.smoothing.certificate import (certify, certify_grid, max_certified_radius,
                                           rho_lower, rho_upper)
from certlab.smoothing.reference import rho_lower_reference

P_GRID = np.linspace(0.0, 1.0, 41)


def lee2019_rho_lower_binary(p_lower: Fraction, flip: Fraction, r: int) -> Fraction:
    """Lee et al. (2019) for binary data written independently: each bit flips with ``flip``;
    x and x~ differ in r bits; regions L_u = {u of those bits equal x, r - u equal x~} with
    ratio ((1 - flip) / flip)^(2u - r); greedy fill in exact arithmetic."""
    keep = 1 - flip
    regions = []
    for u in range(r + 1):
        px = comb(r, u) * keep ** u * flip ** (r - u)
        pxt = comb(r, u) * flip ** u * keep ** (r - u)
        regions.append((u, px, pxt))
    # decreasing ratio: more agreement with x first when keep > flip
    regions.sort(key=lambda t: t[0], reverse=keep > flip)
    acc_x, acc_xt = Fraction(0), Fraction(0)
    for _, px, pxt in regions:
        if acc_x + px <= p_lower:
            acc_x, acc_xt = acc_x + px, acc_xt + pxt
        else:
            return acc_xt + (p_lower - acc_x) * pxt / px
    return acc_xt


# ----------------------------------------------------------------------------- shapes and values
def test_scalar_and_array_inputs():
    assert isinstance(rho_lower(0.9, 0.01, 0.6, 1, 2), float)
    p = np.array([[0.6, 0.7], [0.9, 0.99]])
    out = rho_lower(p, 0.01, 0.6, 1, 2)
    assert out.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            assert out[i, j] == rho_lower(float(p[i, j]), 0.01, 0.6, 1, 2)
    assert rho_upper(p, 0.01, 0.6, 1, 2).shape == (2, 2)


def test_radius_zero_is_identity():
    np.testing.assert_allclose(rho_lower(P_GRID, 0.01, 0.6, 0, 0), P_GRID, atol=1e-15)
    np.testing.assert_allclose(rho_upper(P_GRID, 0.01, 0.6, 0, 0), P_GRID, atol=1e-15)


@pytest.mark.parametrize("p_plus,p_minus", [(0.01, 0.6), (0.7, 0.6), (0.2, 0.2), (0.0, 0.5)])
def test_monotone_and_bounded(p_plus, p_minus):
    """rho_lower <= p <= rho_upper; rho_lower falls and rho_upper rises with both radii."""
    for ra in range(4):
        for rd in range(4):
            lo = rho_lower(P_GRID, p_plus, p_minus, ra, rd)
            up = rho_upper(P_GRID, p_plus, p_minus, ra, rd)
            assert np.all(lo <= P_GRID + 1e-15) and np.all(up >= P_GRID - 1e-15)
            assert np.all(np.diff(lo) >= -1e-15) and np.all(np.diff(up) >= -1e-15)
            assert np.all(lo <= rho_lower(P_GRID, p_plus, p_minus, max(ra - 1, 0), rd) + 1e-15)
            assert np.all(lo <= rho_lower(P_GRID, p_plus, p_minus, ra, max(rd - 1, 0)) + 1e-15)
            assert np.all(up >= rho_upper(P_GRID, p_plus, p_minus, ra, max(rd - 1, 0)) - 1e-15)


def test_upper_is_dual_of_lower():
    # 1 - p is exact for dyadic p, so the identity rho_upper(p) = 1 - rho_lower(1 - p) is exact
    p = np.arange(0, 33) / 32
    for ra, rd in [(0, 3), (2, 5), (7, 1)]:
        np.testing.assert_allclose(rho_upper(p, 0.01, 0.6, ra, rd),
                                   1 - rho_lower(1 - p, 0.01, 0.6, ra, rd), atol=1e-14)


# ----------------------------------------------------------------------------- special cases
@pytest.mark.parametrize("ra,rd", [(0, 1), (2, 0), (3, 2), (1, 4)])
def test_p_plus_zero_closed_form(ra, rd):
    """p+ = 0: three regions {P_x only: 1 - p-^rd}, {p-^rd vs p-^ra}, {P_x~ only}."""
    p_minus = 0.6
    a, b = p_minus ** rd, p_minus ** ra
    expected = np.where(P_GRID <= 1 - a, 0.0, (P_GRID - (1 - a)) * b / a)
    np.testing.assert_allclose(rho_lower(P_GRID, 0.0, p_minus, ra, rd), expected, atol=1e-14)


@pytest.mark.parametrize("ra,rd", [(0, 1), (2, 0), (3, 2), (1, 4)])
def test_p_minus_zero_closed_form(ra, rd):
    p_plus = 0.3
    a, b = p_plus ** ra, p_plus ** rd
    expected = np.where(P_GRID <= 1 - a, 0.0, (P_GRID - (1 - a)) * b / a)
    np.testing.assert_allclose(rho_lower(P_GRID, p_plus, 0.0, ra, rd), expected, atol=1e-14)


def test_no_noise_certifies_nothing_beyond_the_input():
    assert rho_lower(0.999, 0.0, 0.0, 1, 0) == 0.0
    assert rho_upper(0.001, 0.0, 0.0, 0, 1) == 1.0


@pytest.mark.parametrize("p_plus,p_minus", [(0.75, 0.625), (0.875, 0.5), (1.0, 0.75)])
def test_sum_above_one_equals_complemented_noise(p_plus, p_minus):
    """phi_{p+,p-}(x) is 1 - phi_{1-p+,1-p-}(x) in law, and a classifier can undo the complement:
    both noises give the same certificate (1 - p is exact here)."""
    assert p_plus + p_minus > 1
    for ra, rd in [(1, 0), (2, 3), (5, 5)]:
        np.testing.assert_allclose(rho_lower(P_GRID, p_plus, p_minus, ra, rd),
                                   rho_lower(P_GRID, 1 - p_plus, 1 - p_minus, ra, rd),
                                   atol=1e-14)


@pytest.mark.parametrize("p_plus,p_minus", [(0.01, 0.6), (0.7, 0.6), (0.0, 0.3)])
def test_adding_and_deleting_swap_with_the_noise(p_plus, p_minus):
    """Complementing the input swaps additions with deletions and p+ with p-."""
    for ra, rd in [(1, 0), (2, 3), (6, 1)]:
        np.testing.assert_allclose(rho_lower(P_GRID, p_plus, p_minus, ra, rd),
                                   rho_lower(P_GRID, p_minus, p_plus, rd, ra), atol=1e-14)


def test_sum_exactly_one_ignores_the_input():
    # 0.75 + 0.25 == 1 exactly: phi(x) has the same law for every x
    for ra, rd in [(3, 0), (10, 10)]:
        np.testing.assert_allclose(rho_lower(P_GRID, 0.25, 0.75, ra, rd), P_GRID, atol=1e-15)
        np.testing.assert_allclose(rho_upper(P_GRID, 0.25, 0.75, ra, rd), P_GRID, atol=1e-15)


@pytest.mark.parametrize("flip", [Fraction(1, 10), Fraction(1, 4), Fraction(3, 5)])
def test_equal_flip_probabilities_equal_lee2019_and_only_depend_on_total_radius(flip):
    for r in range(0, 6):
        values = []
        for ra in range(r + 1):
            values.append(rho_lower(P_GRID, float(flip), float(flip), ra, r - ra))
        for v in values[1:]:
            np.testing.assert_allclose(v, values[0], atol=1e-15)
        lee = [float(lee2019_rho_lower_binary(Fraction(float(p)), flip, r)) for p in P_GRID]
        np.testing.assert_allclose(values[0], lee, atol=1e-14)


def test_sparse_noise_certifies_more_deletions_than_equal_noise():
    """The paper's point: p+ = 0.01, p- = 0.6 certifies far more deletions than p+ = p- with
    the same kind of clean-input probability."""
    sparse = max_certified_radius(0.99, 0.01, 0.6, kind="rd")
    dense = max_certified_radius(0.99, 0.01, 0.01, kind="rd")
    assert sparse > dense >= 0


# ----------------------------------------------------------------------------- grid and radius
def _grid_by_cells(p_lower, p_plus, p_minus, max_ra, max_rd, p_upper=None):
    out = np.zeros(p_lower.shape + (max_ra + 1, max_rd + 1), dtype=bool)
    for ra in range(max_ra + 1):
        for rd in range(max_rd + 1):
            lo = rho_lower(p_lower, p_plus, p_minus, ra, rd)
            thr = 0.5 if p_upper is None else rho_upper(p_upper, p_plus, p_minus, ra, rd)
            out[..., ra, rd] = lo - thr > 1e-12
    return out


@pytest.mark.parametrize("p_plus,p_minus", [(0.01, 0.6), (0.3, 0.3), (0.8, 0.7)])
def test_certify_grid_equals_cell_by_cell(p_plus, p_minus):
    rng = np.random.default_rng(3)
    p_lower = np.concatenate([rng.uniform(0.4, 1.0, 300), 1 - 10.0 ** -rng.uniform(2, 6, 100)])
    grid = certify_grid(p_lower, p_plus, p_minus, 6, 12)
    assert grid.shape == (400, 7, 13) and grid.dtype == bool
    np.testing.assert_array_equal(grid, _grid_by_cells(p_lower, p_plus, p_minus, 6, 12))
    assert grid.any() and not grid.all()
    # multi-class rule
    p_upper = np.clip(1 - p_lower - rng.uniform(0, 0.2, p_lower.shape), 0, 1)
    grid_mc = certify_grid(p_lower, p_plus, p_minus, 6, 12, p_upper=p_upper)
    np.testing.assert_array_equal(grid_mc,
                                  _grid_by_cells(p_lower, p_plus, p_minus, 6, 12, p_upper))
    # the multi-class rule with p_upper = 1 - p_lower is the binary rule
    np.testing.assert_array_equal(
        certify_grid(p_lower[:50], p_plus, p_minus, 6, 12, p_upper=1 - p_lower[:50]),
        grid[:50])


def test_certify_grid_keeps_leading_shape():
    p = np.array([[0.9, 0.6, 0.3], [0.99, 0.999, 0.5]])
    grid = certify_grid(p, 0.01, 0.6, 2, 3)
    assert grid.shape == (2, 3, 3, 4)
    assert not grid[0, 2].any() and not grid[1, 2].any()  # p <= 0.5: abstain
    assert certify(0.9, 0.01, 0.6, 0, 1) == bool(grid[0, 0, 0, 1])


def test_margin_makes_borderline_cells_unknown():
    assert not certify(0.5 + 1e-13, 0.01, 0.6, 0, 0)
    assert certify(0.5 + 1e-10, 0.01, 0.6, 0, 0)
    assert certify(0.5 + 1e-13, 0.01, 0.6, 0, 0, margin=0.0)


def _true_max_radius(p, p_plus, p_minus, cell):
    """Scan r = 0, 1, ... with rho_lower until the certificate fails (independent loop)."""
    if rho_lower(p, p_plus, p_minus, 0, 0) <= 0.5 + 1e-12:
        return -1
    r = 0
    while rho_lower(p, p_plus, p_minus, *cell(r + 1)) > 0.5 + 1e-12:
        r += 1
    return r


def test_max_certified_radius_is_the_true_maximum():
    p = np.array([0.3, 0.5, 0.52, 0.7, 0.9, 0.99, 0.9999])
    ra = max_certified_radius(p, 0.01, 0.6, kind="ra")
    rd = max_certified_radius(p, 0.01, 0.6, kind="rd")
    l0 = max_certified_radius(p, 0.01, 0.6, kind="l0")
    for i, pi in enumerate(p):
        assert ra[i] == _true_max_radius(pi, 0.01, 0.6, lambda r: (r, 0))
        assert rd[i] == _true_max_radius(pi, 0.01, 0.6, lambda r: (0, r))
        assert l0[i] <= min(ra[i], rd[i])
    assert ra[0] == -1 and rd[1] == -1  # abstain (p <= 0.5) is -1, not 0 or 1
    # at the returned radius the cell is certified, one further it is not
    for i in np.flatnonzero(rd >= 0):
        assert rho_lower(p[i], 0.01, 0.6, 0, int(rd[i])) > 0.5
        assert rho_lower(p[i], 0.01, 0.6, 0, int(rd[i]) + 1) <= 0.5 + 1e-12
    frontier = max_certified_radius(p, 0.01, 0.6, kind="grid")
    assert frontier.shape == (7, ra.max() + 1)
    np.testing.assert_array_equal(frontier[:, 0], rd)
    grid = certify_grid(p, 0.01, 0.6, int(ra.max()) + 1, int(rd.max()) + 1)
    assert not grid[:, -1, :].any() and not grid[:, :, -1].any()
    expected = np.where(grid.any(axis=2), grid.sum(axis=2) - 1, -1)[:, : ra.max() + 1]
    np.testing.assert_array_equal(frontier, expected)


def test_l0_radius_with_equal_noise_is_total_radius():
    p = np.array([0.8, 0.95, 0.999])
    l0 = max_certified_radius(p, 0.2, 0.2, kind="l0")
    np.testing.assert_array_equal(l0, max_certified_radius(p, 0.2, 0.2, kind="ra"))


def test_max_radius_unbounded_and_limit():
    with pytest.raises(ValueError, match="unbounded"):
        max_certified_radius(0.9, 0.25, 0.75)
    # uncertified inputs are fine even when the noise ignores the input
    assert max_certified_radius(0.4, 0.25, 0.75) == -1
    with pytest.raises(ValueError, match="limit"):
        max_certified_radius(0.999, 0.01, 0.6, kind="rd", limit=2)
    with pytest.raises(ValueError, match="p_lower == 1"):
        max_certified_radius(np.array([0.9, 1.0]), 0.01, 0.6, kind="ra")
    with pytest.raises(ValueError, match="p_lower == 1"):
        max_certified_radius(1.0, 0.0, 0.6, kind="rd")  # deletions stay inside the support
    # without noise on the zeros an added one is never explained by phi(x): finite, and
    # rho_lower(1) = p_minus ** ra, so ra = 1 is the largest radius with rho > 0.5
    assert max_certified_radius(1.0, 0.0, 0.6, kind="ra") == 1
    assert rho_lower(1.0, 0.0, 0.6, 1, 0) == pytest.approx(0.6)


def test_fast_value_matches_reference_spot_check():
    assert abs(rho_lower(0.87, 0.01, 0.6, 2, 7)
               - float(rho_lower_reference(0.87, 0.01, 0.6, 2, 7))) < 1e-14


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("func", [rho_lower, rho_upper])
def test_bad_probabilities(func):
    name = "p_lower" if func is rho_lower else "p_upper"
    with pytest.raises(ValueError, match=name):
        func(1.2, 0.01, 0.6, 1, 1)
    with pytest.raises(ValueError, match=name):
        func(np.array([0.5, -0.1]), 0.01, 0.6, 1, 1)
    with pytest.raises(ValueError, match=name):
        func(np.nan, 0.01, 0.6, 1, 1)
    with pytest.raises(ValueError, match="p_plus"):
        func(0.9, -0.01, 0.6, 1, 1)
    with pytest.raises(ValueError, match="p_minus"):
        func(0.9, 0.01, 1.5, 1, 1)
    with pytest.raises(ValueError, match="p_plus"):
        func(0.9, [0.01, 0.02], 0.6, 1, 1)


@pytest.mark.parametrize("func", [rho_lower, rho_upper])
def test_bad_radii(func):
    with pytest.raises(ValueError, match="ra"):
        func(0.9, 0.01, 0.6, -1, 1)
    with pytest.raises(ValueError, match="rd"):
        func(0.9, 0.01, 0.6, 1, -2)
    with pytest.raises(TypeError, match="ra"):
        func(0.9, 0.01, 0.6, 1.5, 1)
    with pytest.raises(TypeError, match="rd"):
        func(0.9, 0.01, 0.6, 1, 2.0)
    with pytest.raises(TypeError, match="ra"):
        func(0.9, 0.01, 0.6, True, 1)


def test_bad_grid_arguments():
    with pytest.raises(ValueError, match="max_ra"):
        certify_grid(0.9, 0.01, 0.6, -1, 2)
    with pytest.raises(TypeError, match="max_rd"):
        certify_grid(0.9, 0.01, 0.6, 1, 2.5)
    with pytest.raises(ValueError, match="p_upper"):
        certify_grid(0.9, 0.01, 0.6, 1, 2, p_upper=1.5)
    with pytest.raises(ValueError, match="broadcast"):
        certify_grid(np.ones(3) * 0.9, 0.01, 0.6, 1, 2, p_upper=np.ones(2) * 0.1)
    with pytest.raises(ValueError, match="margin"):
        certify_grid(0.9, 0.01, 0.6, 1, 2, margin=-1.0)
    with pytest.raises(ValueError, match="kind"):
        max_certified_radius(0.9, 0.01, 0.6, kind="radius")


# ------------------------------------------------------- issue 10: sizes, hangs and clear errors
def test_binomial_coefficients_are_exact_where_a_double_holds_them():
    from certlab.smoothing.regions import _binomial_coefficients, binomial_pmf

    for n in (0, 1, 2, 7, 150, 1029, 1030, 1031, 2500):
        want = np.array([float(comb(n, j)) if comb(n, j) < 2**1000 else np.inf
                         for j in range(n + 1)])
        np.testing.assert_array_equal(_binomial_coefficients(n), want)
    # large n: the pmf is a probability vector with the exact mean (exact check: sum k C p^k q^(n-k))
    for n, p in ((20000, 0.01), (100000, 0.6)):
        pmf = binomial_pmf(n, p)
        assert abs(pmf.sum() - 1.0) < 1e-10
        assert abs((np.arange(n + 1) * pmf).sum() - n * p) < 1e-8 * n


def _count_cells(monkeypatch):
    """Record the (ra, rd) of every region table the certificate builds."""
    import certlab.smoothing.certificate as cert

    seen = []
    real = cert._binary_regions_cached

    def counting(p_plus, p_minus, ra, rd):
        seen.append((ra, rd))
        return real(p_plus, p_minus, ra, rd)

    monkeypatch.setattr(cert, "_binary_regions_cached", counting)
    return seen


def test_absurd_radii_are_refused_up_front(monkeypatch):
    from certlab.smoothing.regions import MAX_CONVOLUTION_WORK, MAX_RADIUS

    for ra, rd in ((10**7, 0), (0, MAX_RADIUS + 1)):
        for fn in (rho_lower, rho_upper):
            with pytest.raises(ValueError, match="MAX_RADIUS=1000000"):
                fn(0.9, 0.01, 0.6, ra, rd)
        with pytest.raises(ValueError, match="MAX_RADIUS"):
            certify(0.9, 0.01, 0.6, ra, rd)
    side = int(MAX_CONVOLUTION_WORK**0.5)
    with pytest.raises(ValueError, match="MAX_CONVOLUTION_WORK"):
        rho_lower(0.9, 0.01, 0.6, side, side)
    # large but admissible one-sided radii are answered (value checked: an added one is
    # explained by phi(x) only with probability p_plus, so rho_lower(0.9) -> 0)
    assert rho_lower(0.9, 0.01, 0.6, 100_000, 0) == 0.0
    assert rho_lower(0.9, 0.01, 0.6, 0, 0) == 0.9
    with pytest.raises(ValueError, match="limit=2000000 is above MAX_RADIUS"):
        max_certified_radius(0.9, 0.01, 0.6, limit=2 * 10**6)


def test_near_unbounded_radius_is_refused_after_one_cell(monkeypatch):
    # 0.3 + 0.7 rounds to 1 but is not exactly 1: the ratio is ~1 and every radius up to the
    # limit is certified. Before, the search walked all radii (cost ~ limit^2).
    seen = _count_cells(monkeypatch)
    for kind in ("ra", "rd", "l0", "grid"):
        seen.clear()
        with pytest.raises(ValueError, match="certified at radius limit=10000"):
            max_certified_radius(0.9, 0.3, 0.7, kind=kind)
        # radii below 64 in turn (cheap), then one cell at the limit: nothing in between
        assert max(max(c) for c in seen) == 10000
        assert all(max(c) < 64 or max(c) == 10000 for c in seen), (kind, seen)
        assert len(seen) <= 2 * 64 + 2


def test_radius_search_visits_few_cells_and_equals_the_linear_search(monkeypatch):
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(0.3, 1.0, 60), 1 - 10.0 ** -rng.uniform(2, 9, 40)])
    seen = _count_cells(monkeypatch)
    rd = max_certified_radius(p, 0.01, 0.6, kind="rd")
    ra = max_certified_radius(p, 0.01, 0.6, kind="ra")
    assert len(set(seen)) < 200  # doubling + bisection, not every radius for every input
    for i in range(p.size):
        assert rd[i] == _true_max_radius(p[i], 0.01, 0.6, lambda r: (0, r)) if p[i] > 0.5 \
            else rd[i] == -1
        assert ra[i] == _true_max_radius(p[i], 0.01, 0.6, lambda r: (r, 0)) if p[i] > 0.5 \
            else ra[i] == -1
    # multi-class rule: the frontier equals the cell-by-cell grid
    p_upper = np.clip(1 - p - rng.uniform(0, 0.2, p.shape), 0, 1)
    frontier = max_certified_radius(p, 0.01, 0.6, kind="grid", p_upper=p_upper)
    grid = certify_grid(p, 0.01, 0.6, frontier.shape[1], int(frontier.max()) + 1,
                        p_upper=p_upper)
    assert not grid[:, -1, :].any() and not grid[:, :, -1].any()
    expected = np.where(grid.any(axis=2), grid.sum(axis=2) - 1, -1)[:, :frontier.shape[1]]
    np.testing.assert_array_equal(frontier, expected)
    l0 = max_certified_radius(p, 0.01, 0.6, kind="l0", p_upper=p_upper)
    for i in range(p.size):
        r = int(l0[i])
        cells = [(a, b) for a in range(r + 2) for b in range(r + 2 - a)]
        inside = all(grid[i, a, b] for a, b in cells if a + b <= r
                     and a < grid.shape[1] and b < grid.shape[2])
        assert r == -1 or inside
        diag = [(a, r + 1 - a) for a in range(r + 2)]
        assert not all(certify(p[i], 0.01, 0.6, a, b, p_upper=p_upper[i]) for a, b in diag)


def test_l0_search_work_is_estimated_up_front(monkeypatch):
    import certlab.smoothing.certificate as cert

    # ra and rd radii 139 bound the l0 radius: about 140^4 / 24 = 1.6e7 operations
    monkeypatch.setattr(cert, "MAX_L0_SEARCH_WORK", 1e6)
    seen = _count_cells(monkeypatch)
    with pytest.raises(ValueError, match="MAX_L0_SEARCH_WORK"):
        max_certified_radius(0.999999, 0.4, 0.4, kind="l0")
    assert all(ra == 0 or rd == 0 for ra, rd in seen)  # only the 1-D bounds were searched
    assert max_certified_radius(0.999999, 0.2, 0.2, kind="l0") == 14
    assert max_certified_radius(0.3, 0.01, 0.01, kind="l0") == -1


def test_inconsistent_bounds_and_ignored_arguments_are_refused():
    # issue 10: p_lower + p_upper > 1 cannot hold together; max_ra was silently ignored
    for fn in (certify, lambda *a, **k: certify_grid(*a[:3], 1, 1, **k)):
        with pytest.raises(ValueError, match=r"p_lower \+ p_upper must not exceed 1"):
            fn(0.7, 0.01, 0.6, 1, 1, p_upper=0.6)
    with pytest.raises(ValueError, match=r"p_lower \+ p_upper"):
        max_certified_radius(np.array([0.7, 0.8]), 0.01, 0.6, p_upper=np.array([0.3, 0.3]))
    p = np.array([0.7, 0.9])
    assert certify(p, 0.01, 0.6, 0, 1, p_upper=1 - p).tolist() == \
        certify(p, 0.01, 0.6, 0, 1).tolist()  # rounding of 1 - p is tolerated
    for kind in ("ra", "rd", "l0"):
        with pytest.raises(ValueError, match="max_ra is only used with kind='grid'"):
            max_certified_radius(0.9, 0.01, 0.6, kind=kind, max_ra=5)
    assert max_certified_radius(0.9, 0.01, 0.6, kind="grid", max_ra=5).shape == (6,)


@pytest.mark.parametrize("bad, exc", [("abc", TypeError), (None, TypeError),
                                      ([0.5, [0.6, 0.7]], ValueError), (["0.9"], TypeError)])
def test_non_numeric_bounds_name_the_argument(bad, exc):
    for fn in (rho_lower, certify):
        with pytest.raises(exc, match="p_lower must be a number"):
            fn(bad, 0.01, 0.6, 1, 1)
    with pytest.raises(exc, match="p_upper must be a number"):
        rho_upper(bad, 0.01, 0.6, 1, 1)
    if bad is not None:  # p_upper=None selects the binary rule
        with pytest.raises(exc, match="p_upper must be a number"):
            certify(0.5, 0.01, 0.6, 1, 1, p_upper=bad)


def test_huge_grids_are_refused_up_front(monkeypatch):
    seen = _count_cells(monkeypatch)
    with pytest.raises(ValueError, match="MAX_GRID_BYTES"):
        certify_grid(np.full(1000, 0.9), 0.01, 0.6, 10**4, 10**4)
    with pytest.raises(ValueError, match="MAX_GRID_BYTES"):
        max_certified_radius(np.full(10**4, 0.9), 0.01, 0.6, kind="grid", max_ra=10**5,
                             limit=10**5)
    assert max(max(c) for c in seen) <= 10**5  # only the ra search ran, no grid cell
    # a large but sparse request stops at the first uncertified row: few cells built
    seen.clear()
    grid = certify_grid(0.9, 0.01, 0.6, 5000, 50)
    assert grid.shape == (5001, 51) and not grid[2:].any() and len(seen) < 200
