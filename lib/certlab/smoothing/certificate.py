"""Robustness certificates of sparsity-aware randomized smoothing (Bojchevski et al., 2020).

Threat model: :math:`\\mathcal B_{r_a, r_d}(x)` holds every binary :math:`\\tilde x` obtained from
:math:`x` by adding at most ``ra`` ones and deleting at most ``rd`` ones. The smoothed classifier
:math:`g(x) = \\arg\\max_y P(f(\\phi(x)) = y)` uses the noise of
:mod:`certlab.smoothing.regions`.

* :func:`rho_lower`: given :math:`P(f(\\phi(x)) = y) \\ge` ``p_lower``, the smallest possible
  :math:`P(f(\\phi(\\tilde x)) = y)` over all :math:`\\tilde x \\in \\mathcal B_{r_a, r_d}(x)`
  and all classifiers :math:`f` (the paper's Neyman-Pearson certificate; the minimum over the
  ball is attained at a :math:`\\tilde x` that adds exactly ``ra`` and deletes exactly ``rd``
  ones, see below).
* :func:`rho_upper`: given :math:`P(f(\\phi(x)) = y) \\le` ``p_upper``, the largest possible
  :math:`P(f(\\phi(\\tilde x)) = y)`.
* :func:`certify_grid`: the certified cells of the ``(ra, rd)`` grid. Binary rule (two classes,
  or the paper's default): certified iff ``rho_lower(p_lower) > 0.5``. Multi-class rule (with
  ``p_upper``, an upper bound on the runner-up class): certified iff
  ``rho_lower(p_lower) > rho_upper(p_upper)``.
* :func:`max_certified_radius`: the true largest certified radius (not the reference code's
  "radius + 1"; see its docstring for the convention at uncertified inputs).

Monotonicity (used by the grid and radius searches, and tested). :math:`\\rho_{lower}` is
non-increasing and :math:`\\rho_{upper}` non-decreasing in ``ra`` and in ``rd``: if
:math:`\\tilde x'` differs from :math:`x` in one more coordinate :math:`j` than :math:`\\tilde x`,
resampling coordinate :math:`j` from its law under :math:`x` maps :math:`\\phi(x)` to itself and
:math:`\\phi(\\tilde x')` to :math:`\\phi(\\tilde x)`; every classifier for the smaller
perturbation is thus a (randomized) classifier for the larger one, whose worst case can only be
worse. So the certified cells of the grid form a down-set, and the worst case over the ball is the
worst case at exactly ``(ra, rd)`` (when :math:`x` has at least ``ra`` zeros and ``rd`` ones).

Numerical safety. The fast path is accurate to better than ``1e-12`` absolute (tested against
1000-bit arithmetic up to ``ra = rd = 100``). Decisions therefore require a ``margin`` (default
``1e-12``): a cell counts as certified only if ``rho_lower - threshold > margin``. A cell within
the margin of the threshold is reported as not certified ("unknown"), never as certified.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from certlab.smoothing.regions import MAX_RADIUS, _binary_regions_cached, \
    _scalar_probability, worst_case_probability
from certlab.utils import check_nonnegative_int, check_probability

__all__ = [
    "rho_lower",
    "rho_upper",
    "certify",
    "certify_grid",
    "max_certified_radius",
    "DEFAULT_MARGIN",
    "MAX_L0_SEARCH_WORK",
    "MAX_GRID_BYTES",
]

#: Safety margin of every certification decision (larger than the fast path's error bound).
DEFAULT_MARGIN = 1e-12
#: Largest output of :func:`certify_grid` / ``max_certified_radius(kind="grid")`` in bytes.
MAX_GRID_BYTES = 2**31


def _check_grid_size(n_cells: int, itemsize: int, what: str) -> None:
    if n_cells * itemsize > MAX_GRID_BYTES:
        raise ValueError(f"{what} would need {n_cells * itemsize / 2**30:.3g} GiB, above the "
                         f"limit MAX_GRID_BYTES={MAX_GRID_BYTES / 2**30:.0f} GiB "
                         "(certlab.smoothing.certificate): refused up front; ask for a smaller "
                         "grid or fewer inputs at a time")


#: The radius search tries every radius below this one, then doubles and bisects.
_LINEAR_SEARCH_RADII = 64
#: ``p_lower + p_upper`` may exceed one by this much (rounding of ``1 - p_lower``).
_BOUNDS_SUM_TOLERANCE = 1e-12
#: Largest estimated work (about ``(R + 2)^4 / 24`` multiply-adds for an l0 radius ``R``) of
#: the l0 radius search of :func:`max_certified_radius` (about ten seconds on one core).
MAX_L0_SEARCH_WORK = 1e10


def _noise(p_plus, p_minus) -> tuple[float, float]:
    return _scalar_probability(p_plus, "p_plus"), _scalar_probability(p_minus, "p_minus")


def _as_output(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


def _check_margin(margin) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.floating)) \
            or not math.isfinite(float(margin)) or float(margin) < 0:
        raise ValueError(f"margin must be a finite non-negative number, got {margin!r}")
    return float(margin)


def rho_lower(p_lower, p_plus: float, p_minus: float, ra: int, rd: int):
    """Worst-case probability of the top class under an adversary adding ``ra``, deleting ``rd``.

    Args:
        p_lower: lower bound on :math:`P(f(\\phi(x)) = y)`, scalar or array (any shape), in
            ``[0, 1]``.
        p_plus: noise probability of flipping a ``0`` to ``1``, scalar in ``[0, 1]``.
        p_minus: noise probability of flipping a ``1`` to ``0``, scalar in ``[0, 1]``.
        ra: ones added by the adversary, non-negative int.
        rd: ones deleted by the adversary, non-negative int.

    Returns:
        :math:`\\min_{\\tilde x, f} P(f(\\phi(\\tilde x)) = y)` subject to
        :math:`P(f(\\phi(x)) = y) \\ge` ``p_lower``: a float for scalar ``p_lower``, else an
        array of its shape. Absolute error below ``1e-12``.

    Raises:
        ValueError: a probability outside ``[0, 1]`` (or not finite), a negative radius, or
            a non-scalar ``p_plus``/``p_minus``.
        TypeError: a radius that is not an integer.
    """
    p = check_probability(p_lower, "p_lower")
    p_plus, p_minus = _noise(p_plus, p_minus)
    ra = check_nonnegative_int(ra, "ra")
    rd = check_nonnegative_int(rd, "rd")
    regions = _binary_regions_cached(p_plus, p_minus, ra, rd)
    return _as_output(worst_case_probability(regions, p, "lower"))


def rho_upper(p_upper, p_plus: float, p_minus: float, ra: int, rd: int):
    """Largest probability of a class under the adversary, given ``P(f(phi(x)) = y) <= p_upper``.

    Same arguments and errors as :func:`rho_lower` (with ``p_upper`` in place of
    ``p_lower``). Returns :math:`\\max_{\\tilde x, f} P(f(\\phi(\\tilde x)) = y)` subject to
    :math:`P(f(\\phi(x)) = y) \\le` ``p_upper``; equals ``1 - rho_lower(1 - p_upper, ...)``
    mathematically but is computed directly (no cancellation for small ``p_upper``).
    """
    p = check_probability(p_upper, "p_upper")
    p_plus, p_minus = _noise(p_plus, p_minus)
    ra = check_nonnegative_int(ra, "ra")
    rd = check_nonnegative_int(rd, "rd")
    regions = _binary_regions_cached(p_plus, p_minus, ra, rd)
    return _as_output(worst_case_probability(regions, p, "upper"))


def _validated_bounds(p_lower, p_upper) -> tuple[np.ndarray, np.ndarray | None]:
    low = check_probability(p_lower, "p_lower")
    if p_upper is None:
        return low, None
    up = check_probability(p_upper, "p_upper")
    try:
        low, up = np.broadcast_arrays(low, up)
    except ValueError as exc:
        raise ValueError(f"p_lower (shape {low.shape}) and p_upper (shape {up.shape}) "
                         f"do not broadcast") from exc
    over = low + up > 1.0 + _BOUNDS_SUM_TOLERANCE
    if np.any(over):
        i = np.flatnonzero(over.reshape(-1))[0]
        raise ValueError(
            f"p_lower + p_upper must not exceed 1 (p_lower bounds the top class from below, "
            f"p_upper another class from above, and both hold together), got p_lower="
            f"{float(low.reshape(-1)[i])!r} and p_upper={float(up.reshape(-1)[i])!r}; cap "
            "p_upper at 1 - p_lower")
    return low, up


def _decide(low: np.ndarray, up: np.ndarray | None, p_plus: float, p_minus: float,
            ra: int, rd: int, margin: float) -> np.ndarray:
    """Certification decision at one cell for flat arrays ``low`` (and ``up``)."""
    regions = _binary_regions_cached(p_plus, p_minus, ra, rd)
    rho_low = worst_case_probability(regions, low, "lower")
    if up is None:
        return rho_low - 0.5 > margin
    return rho_low - worst_case_probability(regions, up, "upper") > margin


def certify(p_lower, p_plus: float, p_minus: float, ra: int, rd: int, p_upper=None, *,
            margin: float = DEFAULT_MARGIN):
    """Whether the smoothed prediction is certified at the single cell ``(ra, rd)``.

    Binary rule ``rho_lower(p_lower) > 0.5`` when ``p_upper`` is None, else the multi-class
    rule ``rho_lower(p_lower) > rho_upper(p_upper)``; both with the safety ``margin``.
    Returns a bool (scalar input) or a bool array of the broadcast shape of the bounds.
    """
    low, up = _validated_bounds(p_lower, p_upper)
    p_plus, p_minus = _noise(p_plus, p_minus)
    ra = check_nonnegative_int(ra, "ra")
    rd = check_nonnegative_int(rd, "rd")
    margin = _check_margin(margin)
    out = _decide(low.reshape(-1), None if up is None else up.reshape(-1), p_plus, p_minus,
                  ra, rd, margin).reshape(low.shape)
    return bool(out) if out.ndim == 0 else out


def certify_grid(p_lower, p_plus: float, p_minus: float, max_ra: int, max_rd: int,
                 p_upper=None, *, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Certified cells of the ``(ra, rd)`` grid for many inputs at once.

    Args:
        p_lower: lower bounds on the top-class probability, shape ``(...)``, in ``[0, 1]``.
        p_plus, p_minus: noise flip probabilities (scalars in ``[0, 1]``).
        max_ra, max_rd: largest radii of the grid (non-negative ints).
        p_upper: optional upper bounds on the runner-up probability, broadcastable to
            ``p_lower``; selects the multi-class rule.
        margin: safety margin of every decision (see the module docstring).

    Returns:
        bool array of shape ``(..., max_ra + 1, max_rd + 1)``; entry ``[..., ra, rd]`` says
        whether every :math:`\\tilde x` adding at most ``ra`` and deleting at most ``rd`` ones
        keeps the prediction.

    Speed: the region tables depend only on the cell, not on the input, so each cell costs one
    table build plus a vectorised binary search over the inputs. Because certified cells form a
    down-set (module docstring), a cell is only evaluated for inputs certified at both its
    neighbours ``(ra - 1, rd)`` and ``(ra, rd - 1)``, and a row stops at its first empty cell.
    """
    low, up = _validated_bounds(p_lower, p_upper)
    p_plus, p_minus = _noise(p_plus, p_minus)
    max_ra = check_nonnegative_int(max_ra, "max_ra")
    max_rd = check_nonnegative_int(max_rd, "max_rd")
    margin = _check_margin(margin)
    shape = low.shape
    low_flat = low.reshape(-1)
    up_flat = None if up is None else up.reshape(-1)
    n = low_flat.shape[0]
    _check_grid_size(n * (max_ra + 1) * (max_rd + 1), 1,
                     f"the grid of {n} inputs x {max_ra + 1} x {max_rd + 1} cells")
    grid = np.zeros((n, max_ra + 1, max_rd + 1), dtype=bool)
    for ra in range(max_ra + 1):
        for rd in range(max_rd + 1):
            if ra == 0 and rd == 0:
                candidates = np.ones(n, dtype=bool)
            elif ra == 0:
                candidates = grid[:, 0, rd - 1]
            elif rd == 0:
                candidates = grid[:, ra - 1, 0]
            else:
                candidates = grid[:, ra - 1, rd] & grid[:, ra, rd - 1]
            idx = np.flatnonzero(candidates)
            if idx.size == 0:
                break
            grid[idx, ra, rd] = _decide(low_flat[idx], None if up_flat is None else up_flat[idx],
                                        p_plus, p_minus, ra, rd, margin)
        if not grid[:, ra, 0].any():  # no later row can have a certified cell (down-set)
            break
    return grid.reshape(*shape, max_ra + 1, max_rd + 1)


def max_certified_radius(p_lower, p_plus: float, p_minus: float,
                         kind: Literal["ra", "rd", "l0", "grid"] = "rd", p_upper=None, *,
                         max_ra: int | None = None, limit: int = 10_000,
                         margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The TRUE largest certified radius (searched until the certificate fails).

    Conventions (all radii are the number of flipped bits the adversary may use):

    * ``kind="ra"``: largest ``ra`` such that ``(ra, rd=0)`` is certified (additions only).
    * ``kind="rd"``: largest ``rd`` such that ``(ra=0, rd)`` is certified (deletions only).
    * ``kind="l0"``: largest ``r`` such that every cell with ``ra + rd <= r`` is certified
      (the :math:`\\ell_0` ball of radius ``r``; for ``p_plus == p_minus`` the certificate only
      depends on ``ra + rd``, so this is the radius of Lee et al., 2019).
    * ``kind="grid"``: the frontier: an array of shape ``(..., max_ra + 1)`` whose entry ``ra``
      is the largest ``rd`` certified together with ``ra`` (``-1`` where ``(ra, 0)`` is not).
      ``max_ra`` defaults to the largest certified ``ra`` over all inputs (at least 0).

    An input that is not certified even at radius 0 (``p_lower <= 0.5``, or not above
    ``rho_upper(p_upper)``, i.e. the smoothed classifier abstains) gets ``-1``; an input
    certified only at the clean input gets ``0``. (The reference implementation reports
    "radius + 1" and ``1`` for uncertifiable inputs; its "average max radius" is therefore one
    too large. To average over all inputs counting abstentions as radius 0, use
    ``np.maximum(r, 0).mean()``.)

    Args:
        p_lower, p_plus, p_minus, p_upper, margin: as in :func:`certify_grid`.
        kind: which radius (see above).
        max_ra: only for ``kind="grid"`` (an error with any other kind); at most ``limit``.
        limit: a ``ValueError`` if some input is still certified at radius ``limit`` (guards
            against near-unbounded radii). Checked once an input is certified at radius 64,
            at the cost of one cell, so a near-unbounded radius is refused at once; at most
            ``MAX_RADIUS``.

    Cost: the ``ra``/``rd``/``grid`` radii below 64 are found by trying every radius, larger
    ones by doubling and bisection (monotonicity, module docstring): ``O(64 + log R)`` cells of
    ``O(R)`` work per input and direction. The ``l0``
    radius tests every cell of each diagonal up to the smaller of the ``ra`` and ``rd`` radii;
    a search estimated above ``MAX_L0_SEARCH_WORK`` is refused up front.

    Returns:
        int64 array of the shape of the bounds (``kind`` in ``ra``/``rd``/``l0``; a Python int
        for scalar bounds) or with one extra trailing axis (``kind="grid"``).

    Raises:
        ValueError: bad probabilities/kind/limit, ``p_plus + p_minus == 1`` with a certified
            input (the noise then ignores the input and every radius is certified),
            ``p_lower == 1`` where the radius is likewise unbounded (e.g. for any
            ``0 < p_plus, p_minus < 1``), an input certified at radius ``limit``, ``max_ra``
            with a kind other than ``"grid"``, or a search above the work limits.
    """
    low, up = _validated_bounds(p_lower, p_upper)
    p_plus, p_minus = _noise(p_plus, p_minus)
    margin = _check_margin(margin)
    limit = check_nonnegative_int(limit, "limit")
    if limit > MAX_RADIUS:
        raise ValueError(f"limit={limit} is above MAX_RADIUS={MAX_RADIUS} "
                         "(certlab.smoothing.regions)")
    if kind not in ("ra", "rd", "l0", "grid"):
        raise ValueError(f"kind must be 'ra', 'rd', 'l0' or 'grid', got {kind!r}")
    if max_ra is not None:
        if kind != "grid":
            raise ValueError(f"max_ra is only used with kind='grid', got max_ra={max_ra!r} with "
                             f"kind={kind!r}")
        max_ra = check_nonnegative_int(max_ra, "max_ra")
        if max_ra > limit:
            raise ValueError(f"max_ra={max_ra} must not exceed limit={limit}")
    shape = low.shape
    low_flat = low.reshape(-1)
    up_flat = None if up is None else up.reshape(-1)

    def decide(idx: np.ndarray, ra: int, rd: int) -> np.ndarray:
        return _decide(low_flat[idx], None if up_flat is None else up_flat[idx], p_plus,
                       p_minus, ra, rd, margin)

    base = decide(np.arange(low_flat.shape[0]), 0, 0)
    if base.any() and math.fsum((p_plus, p_minus, -1.0)) == 0.0:
        raise ValueError("p_plus + p_minus == 1: the noise does not depend on the input, so "
                         "every radius is certified and the maximum radius is unbounded")
    # p_lower == 1: rho_lower(1) is the mass of phi(x~) inside the support of phi(x); it stays 1
    # at every radius when each changed coordinate's support under x~ lies in that under x.
    deletion_inside = p_minus > 0.0 and (p_plus == 0.0 or p_minus < 1.0)
    addition_inside = (p_plus > 0.0 or p_minus == 1.0) and (p_plus < 1.0 or p_minus == 0.0)
    unbounded_direction = {"rd": deletion_inside, "ra": addition_inside, "grid": deletion_inside,
                           "l0": deletion_inside and addition_inside}[kind]
    if unbounded_direction and np.any(base & (low_flat == 1.0)):
        raise ValueError("p_lower == 1: the noise of x~ stays inside the support of the noise of "
                         "x, so rho_lower = 1 at every radius and the maximum radius is unbounded "
                         "(Clopper-Pearson bounds from finitely many samples are below 1)")

    def limit_error() -> ValueError:
        return ValueError(f"some inputs are still certified at radius limit={limit}; pass a "
                          f"larger limit (at most MAX_RADIUS={MAX_RADIUS})")

    def search_1d(cell, start_idx: np.ndarray) -> np.ndarray:
        """Largest r <= limit with cell(r) certified (-1 outside start_idx, which must be
        certified at r = 0). By monotonicity (module docstring) the certified radii of one
        input form an interval [0, R]: every radius below ``_LINEAR_SEARCH_RADII`` in turn
        (cheap cells, shared by all inputs), then, for inputs certified beyond, a check at
        ``limit`` (refused there, at the cost of one cell) and doubling and bisection,
        O(log R) cells per input."""
        radius = np.full(low_flat.shape[0], -1, dtype=np.int64)
        if start_idx.size == 0:
            return radius
        lo = np.zeros(low_flat.shape[0], dtype=np.int64)  # certified
        hi = np.full(low_flat.shape[0], limit, dtype=np.int64)  # not certified
        active, r = start_idx, 1
        while active.size and r < min(limit, _LINEAR_SEARCH_RADII):  # small radii: every one
            ok = decide(active, *cell(r))
            lo[active[ok]] = r
            hi[active[~ok]] = r
            active, r = active[ok], r + 1
        if active.size and decide(active, *cell(limit)).any():
            raise limit_error()
        while active.size and r < limit:  # doubling
            ok = decide(active, *cell(r))
            lo[active[ok]] = r
            hi[active[~ok]] = r
            active, r = active[ok], 2 * r
        pending = start_idx[hi[start_idx] - lo[start_idx] > 1]
        while pending.size:  # bisection, inputs grouped by the radius they test
            mid = (lo[pending] + hi[pending]) // 2
            for m in np.unique(mid):
                group = pending[mid == m]
                ok = decide(group, *cell(int(m)))
                lo[group[ok]] = m
                hi[group[~ok]] = m
            pending = pending[hi[pending] - lo[pending] > 1]
        radius[start_idx] = lo[start_idx]
        return radius

    certified0 = np.flatnonzero(base)
    if kind == "ra":
        out = search_1d(lambda r: (r, 0), certified0)
    elif kind == "rd":
        out = search_1d(lambda r: (0, r), certified0)
    elif kind == "l0":
        # The l0 radius is at most the ra- and the rd-radius (cells (r, 0), (0, r) are in the
        # l0 ball); every radius r tests all r + 1 cells with ra + rd = r, in turn.
        bound = np.minimum(search_1d(lambda r: (r, 0), certified0),
                           search_1d(lambda r: (0, r), certified0))
        top = int(bound.max(initial=0)) + 1
        work = (top + 1) ** 4 / 24.0
        if work > MAX_L0_SEARCH_WORK:
            raise ValueError(f"the l0 search up to radius {top} (bounded by the ra and rd "
                             f"radii) would take about {work:.2g} operations, above the limit "
                             f"MAX_L0_SEARCH_WORK={MAX_L0_SEARCH_WORK:.0e} "
                             "(certlab.smoothing.certificate): refused up front")
        out = np.full(low_flat.shape[0], -1, dtype=np.int64)
        out[certified0] = 0
        active, r = certified0, 0
        while active.size:
            r += 1
            ok = bound[active] >= r
            for ra in range(r + 1):
                sub = np.flatnonzero(ok)
                if sub.size == 0:
                    break
                ok[sub] = decide(active[sub], ra, r - ra)
            active = active[ok]
            out[active] = r
    else:
        ra_max = search_1d(lambda r: (r, 0), certified0)
        if max_ra is None:
            max_ra = max(int(ra_max.max(initial=-1)), 0)
        _check_grid_size(low_flat.shape[0] * (max_ra + 1), 8,
                         f"the frontier of {low_flat.shape[0]} inputs x {max_ra + 1} radii")
        out = np.full((low_flat.shape[0], max_ra + 1), -1, dtype=np.int64)
        for ra in range(max_ra + 1):
            start = np.flatnonzero(ra_max >= ra)
            if start.size == 0:
                break
            out[:, ra] = search_1d(lambda r, ra=ra: (ra, r), start)
        return out.reshape(*shape, max_ra + 1)
    out = out.reshape(shape)
    return int(out) if out.ndim == 0 else out
