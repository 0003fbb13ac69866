"""Slow, exact or high-precision references for the smoothing certificates (for tests/benchmarks).

Two independent ways to get the worst case, both deliberately simple:

1. **Regions in high precision.** The same regions as the fast path, but every mass is computed
   with 1000-bit ``mpmath`` floats (default) or exactly with :class:`fractions.Fraction` (when
   the probabilities are passed as ``Fraction``); regions are sorted by *exact comparison* of
   likelihood ratios (cross-multiplication, no assumption on their order) and the greedy
   Neyman-Pearson fill runs in the same arithmetic. Functions: :func:`rho_lower_reference`,
   :func:`rho_upper_reference`, :func:`rho_lower_joint_reference`,
   :func:`rho_upper_joint_reference`, :func:`rho_lower_categorical_reference`,
   :func:`rho_upper_categorical_reference`, and :func:`certify_grid_reference` (the
   straightforward per-input, per-cell high-precision grid, the benchmark baseline).
   :func:`lee2019_rho_lower` and :func:`lee2019_threshold` are Lee et al. (2019)'s own
   construction for uniform noise (regions indexed by two counts, exact rational arithmetic),
   written from their paper: the baseline of the paper's ImageNet comparison.
2. **Brute force over all outcomes.** For a tiny input (``d <= 10``), enumerate every
   :math:`\\tilde x` of the threat ball and every outcome :math:`z` of the noise, and solve the
   Neyman-Pearson problem over individual outcomes (no regions at all):
   :func:`brute_force_worst_case` with :func:`binary_channels`,
   :func:`categorical_channels`, :func:`binary_ball` and :func:`categorical_ball`.

Why our own code: no library solves these specific Neyman-Pearson problems; mpmath supplies
the arithmetic. All functions are scalar (one probability at a time) and slow by design.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction
from typing import Iterable, Literal, Sequence

import mpmath
import numpy as np

from certlab.utils import check_nonnegative_int, check_probability

__all__ = [
    "DEFAULT_PRECISION",
    "reference_binary_regions",
    "reference_worst_case",
    "rho_lower_reference",
    "rho_upper_reference",
    "certify_grid_reference",
    "clear_reference_caches",
    "reference_joint_regions",
    "rho_lower_joint_reference",
    "rho_upper_joint_reference",
    "reference_categorical_regions",
    "rho_lower_categorical_reference",
    "rho_upper_categorical_reference",
    "lee2019_regions",
    "lee2019_rho_lower",
    "lee2019_threshold",
    "binary_channels",
    "categorical_channels",
    "binary_ball",
    "categorical_ball",
    "brute_force_worst_case",
]

#: Bits of precision of the mpmath reference (as in the paper's reference implementation).
DEFAULT_PRECISION = 1000

# --------------------------------------------------------------------------- arithmetic
def _is_exact(*values) -> bool:
    return any(isinstance(v, Fraction) for v in values)


def _check_ref_probability(value, name: str):
    """Validate a scalar probability; keep Fractions exact, turn floats into exact mpf."""
    if isinstance(value, Fraction):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        return value
    arr = check_probability(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar probability, got shape {arr.shape}")
    return float(arr)


def _convert(value, exact: bool):
    if exact:
        return Fraction(value)  # exact for floats and Fractions
    return mpmath.mpf(value)  # exact conversion of a double


def _ratio_cmp(r1, r2) -> int:
    """Compare likelihood ratios px/px_tilde of two regions exactly (cross-multiplication)."""
    left = r1[0] * r2[1]
    right = r2[0] * r1[1]
    return (left > right) - (left < right)


# --------------------------------------------------------------------------- greedy fill
def reference_worst_case(regions: Iterable[tuple], p, bound: Literal["lower", "upper"], *,
                         presorted: bool = False):
    """Greedy Neyman-Pearson fill in the arithmetic of the inputs.

    Args:
        regions: iterable of ``(px, px_tilde, ...)`` with non-negative masses (mpf or
            Fraction), in any order; regions empty under both laws are ignored.
        p: the probability bound (mpf, Fraction or float: converted exactly).
        bound: ``"lower"``: min of ``sum px_tilde * h`` s.t. ``sum px * h >= p``, ``0<=h<=1``;
            ``"upper"``: max of ``sum px_tilde * h`` s.t. ``sum px * h <= p``.
        presorted: the regions are already sorted by increasing ratio (skips the sort).
    """
    regs = [r for r in regions if r[0] > 0 or r[1] > 0]
    exact = bool(regs) and isinstance(regs[0][0], Fraction)
    p = _convert(p, exact)
    if bound not in ("lower", "upper"):
        raise ValueError(f"bound must be 'lower' or 'upper', got {bound!r}")
    if presorted:
        order = regs[::-1] if bound == "lower" else regs
    else:
        order = sorted(regs, key=functools.cmp_to_key(_ratio_cmp), reverse=(bound == "lower"))
    acc_x = 0
    acc_xt = 0
    for px, pxt, *_ in order:
        if px == 0:
            if bound == "upper":
                acc_xt += pxt  # free for the upper bound, useless for the lower bound
            continue
        if acc_x + px <= p:
            acc_x += px
            acc_xt += pxt
        else:
            acc_xt += (p - acc_x) * pxt / px
            break
    return acc_xt


# --------------------------------------------------------------------------- binary regions
@functools.lru_cache(maxsize=256)
def _binary_regions_ref(p_plus, p_minus, ra: int, rd: int, prec: int) -> tuple:
    exact = _is_exact(p_plus, p_minus)
    with mpmath.workprec(prec):
        pp, pm = _convert(p_plus, exact), _convert(p_minus, exact)
        one = _convert(1, exact)

        def binom_pmf(n, p):
            return [math.comb(n, k) * p ** k * (one - p) ** (n - k) for k in range(n + 1)]

        add_x, del_x = binom_pmf(ra, pp), binom_pmf(rd, pm)  # flips under x
        add_xt, del_xt = binom_pmf(ra, one - pm), binom_pmf(rd, one - pp)  # same q under x~
        px = [0 * one] * (ra + rd + 1)
        pxt = [0 * one] * (ra + rd + 1)
        for i in range(ra + 1):
            for j in range(rd + 1):
                px[i + j] += add_x[i] * del_x[j]
                pxt[i + j] += add_xt[i] * del_xt[j]
        return tuple((px[q], pxt[q], q) for q in range(ra + rd + 1))


def reference_binary_regions(p_plus, p_minus, ra: int, rd: int, *,
                             prec: int = DEFAULT_PRECISION) -> list[tuple]:
    """Regions ``(P_x(R_q), P_x~(R_q), q)``, ``q = 0..ra+rd``, in ``prec``-bit mpmath (or exact
    Fractions when ``p_plus``/``p_minus`` are Fractions). Unsorted (ordered by ``q``).

    Computed cell by cell over (flips among the ``ra`` added coordinates, flips among the ``rd``
    deleted ones): exact binomial coefficients, no recursion, no division.
    """
    p_plus = _check_ref_probability(p_plus, "p_plus")
    p_minus = _check_ref_probability(p_minus, "p_minus")
    ra = check_nonnegative_int(ra, "ra")
    rd = check_nonnegative_int(rd, "rd")
    return list(_binary_regions_ref(p_plus, p_minus, ra, rd, prec))


def rho_lower_reference(p_lower, p_plus, p_minus, ra: int, rd: int, *,
                        prec: int = DEFAULT_PRECISION):
    """High-precision (or exact, with Fractions) :func:`certlab.smoothing.rho_lower`, scalar."""
    p_lower = _check_ref_probability(p_lower, "p_lower")
    regions = reference_binary_regions(p_plus, p_minus, ra, rd, prec=prec)
    with mpmath.workprec(prec):
        return reference_worst_case(regions, p_lower, "lower")


def rho_upper_reference(p_upper, p_plus, p_minus, ra: int, rd: int, *,
                        prec: int = DEFAULT_PRECISION):
    """High-precision (or exact, with Fractions) :func:`certlab.smoothing.rho_upper`, scalar."""
    p_upper = _check_ref_probability(p_upper, "p_upper")
    regions = reference_binary_regions(p_plus, p_minus, ra, rd, prec=prec)
    with mpmath.workprec(prec):
        return reference_worst_case(regions, p_upper, "upper")


def certify_grid_reference(p_lower, p_plus: float, p_minus: float, max_ra: int, max_rd: int,
                           p_upper=None, *, prec: int = DEFAULT_PRECISION,
                           cache_regions: bool = True, return_rho: bool = False):
    """The straightforward high-precision grid: every input, every cell, no pruning.

    For each cell ``(ra, rd)`` the regions are built in ``prec``-bit arithmetic (once per cell
    when ``cache_regions``, else once per input and cell) and the fill runs per input in the
    same arithmetic. Decision rule without margin: ``rho_lower > 0.5`` (binary) or
    ``rho_lower > rho_upper`` (multi-class). Returns bool ``(n, max_ra + 1, max_rd + 1)`` for
    ``p_lower`` of shape ``(n,)`` (and, with ``return_rho``, the ``rho_lower`` values rounded
    to float64, same shape).
    """
    low = np.atleast_1d(check_probability(p_lower, "p_lower")).reshape(-1)
    up = None if p_upper is None else np.broadcast_to(
        check_probability(p_upper, "p_upper"), low.shape).reshape(-1)
    max_ra = check_nonnegative_int(max_ra, "max_ra")
    max_rd = check_nonnegative_int(max_rd, "max_rd")
    build = _binary_regions_ref if cache_regions else _binary_regions_ref.__wrapped__
    out = np.zeros((low.shape[0], max_ra + 1, max_rd + 1), dtype=bool)
    rhos = np.zeros(out.shape)
    half = mpmath.mpf(0.5)
    with mpmath.workprec(prec):
        for ra in range(max_ra + 1):
            for rd in range(max_rd + 1):
                for i in range(low.shape[0]):
                    regions = build(float(p_plus), float(p_minus), ra, rd, prec)
                    rho = reference_worst_case(regions, float(low[i]), "lower")
                    thr = half if up is None else reference_worst_case(regions, float(up[i]),
                                                                       "upper")
                    out[i, ra, rd] = rho > thr
                    rhos[i, ra, rd] = float(rho)
    return (out, rhos) if return_rho else out


def clear_reference_caches() -> None:
    """Forget cached high-precision regions (for cold-start timings)."""
    _binary_regions_ref.cache_clear()
    _joint_sorted_ref.cache_clear()
    _categorical_sorted_ref.cache_clear()


# --------------------------------------------------------------------------- joint regions
def reference_joint_regions(blocks: Sequence[tuple], *, prec: int = DEFAULT_PRECISION
                            ) -> list[tuple]:
    """Product regions of independently smoothed binary blocks.

    ``blocks``: sequence of ``(p_plus, p_minus, ra, rd)``. Returns ``(px, px_tilde, labels)``
    for every combination of block regions (masses multiply); unsorted (the fill sorts).
    """
    per_block = [reference_binary_regions(*b, prec=prec) for b in blocks]
    out = []
    with mpmath.workprec(prec):
        for combo in itertools.product(*per_block):
            px = math.prod((c[0] for c in combo), start=1)
            pxt = math.prod((c[1] for c in combo), start=1)
            out.append((px, pxt, tuple(c[2] for c in combo)))
    return out


@functools.lru_cache(maxsize=64)
def _joint_sorted_ref(blocks: tuple, prec: int) -> tuple:
    regions = [r for r in reference_joint_regions(blocks, prec=prec) if r[0] > 0 or r[1] > 0]
    with mpmath.workprec(prec):
        return tuple(sorted(regions, key=functools.cmp_to_key(_ratio_cmp)))


def rho_lower_joint_reference(p_lower, blocks: Sequence[tuple], *,
                              prec: int = DEFAULT_PRECISION):
    """High-precision lower worst case, blocks ``(p_plus, p_minus, ra, rd)`` perturbed jointly."""
    p_lower = _check_ref_probability(p_lower, "p_lower")
    regions = _joint_sorted_ref(tuple(tuple(b) for b in blocks), prec)
    with mpmath.workprec(prec):
        return reference_worst_case(list(regions), p_lower, "lower", presorted=True)


def rho_upper_joint_reference(p_upper, blocks: Sequence[tuple], *,
                              prec: int = DEFAULT_PRECISION):
    """High-precision upper worst case, blocks ``(p_plus, p_minus, ra, rd)`` perturbed jointly."""
    p_upper = _check_ref_probability(p_upper, "p_upper")
    regions = _joint_sorted_ref(tuple(tuple(b) for b in blocks), prec)
    with mpmath.workprec(prec):
        return reference_worst_case(list(regions), p_upper, "upper", presorted=True)


# --------------------------------------------------------------------------- categorical
def _triplets(r: int, n_categories: int) -> list[tuple[int, int, int]]:
    """(same as x, same as x~, other) counts over r coordinates; 'other' needs K >= 3."""
    out = []
    for same_x in range(r + 1):
        for same_xt in range(r - same_x + 1):
            other = r - same_x - same_xt
            if other > 0 and n_categories < 3:
                continue
            out.append((same_x, same_xt, other))
    return out


def reference_categorical_regions(p_plus, p_minus, n_categories: int, ra: int, rd: int,
                                  rc: int = 0, *, prec: int = DEFAULT_PRECISION) -> list[tuple]:
    """Cells of the general discrete certificate, one per triplet combination (no grouping).

    Channel (see :func:`categorical_channels`): a ``0`` stays with ``1 - p_plus`` and becomes
    each of the ``K - 1`` non-zero values with ``p_plus / (K - 1)``; a non-zero value stays with
    ``1 - p_minus`` and becomes each of the other ``K - 1`` values with ``p_minus / (K - 1)``.
    The adversary makes ``ra`` zero -> non-zero, ``rd`` non-zero -> zero and ``rc`` non-zero ->
    other non-zero changes. For each change type, a triplet counts the coordinates where the
    outcome equals ``x_i``, equals ``x~_i``, or is neither.
    """
    p_plus = _check_ref_probability(p_plus, "p_plus")
    p_minus = _check_ref_probability(p_minus, "p_minus")
    k = check_nonnegative_int(n_categories, "n_categories")
    if k < 2:
        raise ValueError(f"n_categories must be at least 2, got {n_categories}")
    ra, rd, rc = (check_nonnegative_int(v, n) for v, n in ((ra, "ra"), (rd, "rd"), (rc, "rc")))
    if k == 2 and rc:
        raise ValueError("rc (non-zero -> other non-zero changes) needs n_categories >= 3")
    exact = _is_exact(p_plus, p_minus)
    out = []
    with mpmath.workprec(prec):
        pp, pm, one = _convert(p_plus, exact), _convert(p_minus, exact), _convert(1, exact)
        stay0, move0 = one - pp, pp / (k - 1)  # law of a zero: (stay, each non-zero value)
        stay1, move1 = one - pm, pm / (k - 1)  # law of a non-zero: (stay, each other value)
        other0 = one - stay0 - move0  # zero -> a non-zero value other than x~_i
        other1 = one - stay1 - move1

        # (P(z = x_i), P(z = x~_i), P(other)) under x and under x~ for each change type
        laws = {
            "a": ((stay0, move0, other0), (move1, stay1, other1)),  # x_i = 0, x~_i != 0
            "d": ((stay1, move1, other1), (move0, stay0, other0)),  # x_i != 0, x~_i = 0
            "c": ((stay1, move1, other1), (move1, stay1, other1)),  # both non-zero, different
        }

        def cell_mass(triplet, law):
            r = sum(triplet)
            coef = math.factorial(r) // math.prod(math.factorial(t) for t in triplet)
            return coef * math.prod((pr ** t for pr, t in zip(law, triplet)), start=one)

        for ta in _triplets(ra, k):
            for td in _triplets(rd, k):
                for tc in _triplets(rc, k):
                    px = pxt = one
                    for trip, key in ((ta, "a"), (td, "d"), (tc, "c")):
                        px = px * cell_mass(trip, laws[key][0])
                        pxt = pxt * cell_mass(trip, laws[key][1])
                    out.append((px, pxt, (ta, td, tc)))
    return out


@functools.lru_cache(maxsize=64)
def _categorical_sorted_ref(p_plus, p_minus, n_categories, ra, rd, rc, prec) -> tuple:
    regions = [r for r in reference_categorical_regions(p_plus, p_minus, n_categories, ra, rd,
                                                        rc, prec=prec) if r[0] > 0 or r[1] > 0]
    with mpmath.workprec(prec):
        return tuple(sorted(regions, key=functools.cmp_to_key(_ratio_cmp)))


def rho_lower_categorical_reference(p_lower, p_plus, p_minus, n_categories: int, ra: int,
                                    rd: int, rc: int = 0, *, prec: int = DEFAULT_PRECISION):
    """High-precision lower worst case of the general discrete certificate (scalar)."""
    p_lower = _check_ref_probability(p_lower, "p_lower")
    regions = _categorical_sorted_ref(p_plus, p_minus, n_categories, ra, rd, rc, prec)
    with mpmath.workprec(prec):
        return reference_worst_case(list(regions), p_lower, "lower", presorted=True)


def rho_upper_categorical_reference(p_upper, p_plus, p_minus, n_categories: int, ra: int,
                                    rd: int, rc: int = 0, *, prec: int = DEFAULT_PRECISION):
    """High-precision upper worst case of the general discrete certificate (scalar)."""
    p_upper = _check_ref_probability(p_upper, "p_upper")
    regions = _categorical_sorted_ref(p_plus, p_minus, n_categories, ra, rd, rc, prec)
    with mpmath.workprec(prec):
        return reference_worst_case(list(regions), p_upper, "upper", presorted=True)


# --------------------------------------------------------------------------- Lee et al.
def _check_lee(keep, n_categories: int, r: int) -> tuple[Fraction, int, int]:
    if not isinstance(keep, (Fraction, int)):
        raise TypeError(f"keep must be a Fraction (exact arithmetic), got {type(keep).__name__}")
    keep = Fraction(keep)
    if not 0 < keep < 1:
        raise ValueError(f"keep must be a probability strictly between 0 and 1, got {keep}")
    k = check_nonnegative_int(n_categories, "n_categories")
    if k < 2:
        raise ValueError(f"n_categories must be at least 2, got {n_categories}")
    return keep, k, check_nonnegative_int(r, "r")


@functools.lru_cache(maxsize=64)
def lee2019_regions(keep: Fraction, n_categories: int, r: int
                    ) -> tuple[tuple[Fraction, Fraction], ...]:
    """Lee et al. (2019)'s regions for uniform noise, exact, by decreasing likelihood ratio.

    Noise: each of the ``d`` coordinates keeps its value with probability ``keep`` and
    otherwise moves to one of the other ``K - 1`` values uniformly (our ``p_plus = p_minus =
    1 - keep``). ``x`` and ``x~`` differ in ``r`` coordinates; region ``L_{u,v}``: ``u`` of
    them equal ``x``, ``v`` equal ``x~``, ``r - u - v`` neither, with likelihood ratio
    ``(keep / move)^(u - v)``. Regions of the same ratio are merged. Returns ``(P_x, P_x~)``
    per ratio class, as Fractions.
    """
    keep, k, r = _check_lee(keep, n_categories, r)
    move = (1 - keep) / (k - 1)
    other = 1 - keep - move
    by_exponent: dict[int, list[Fraction]] = {}
    for u in range(r + 1):
        for v in range(r - u + 1):
            w = r - u - v
            if w and k < 3:
                continue
            coef = math.factorial(r) // (math.factorial(u) * math.factorial(v)
                                         * math.factorial(w))
            acc = by_exponent.setdefault(u - v, [Fraction(0), Fraction(0)])
            acc[0] += coef * keep ** u * move ** v * other ** w
            acc[1] += coef * move ** u * keep ** v * other ** w
    order = sorted(by_exponent, reverse=keep > move)  # decreasing ratio P_x / P_x~
    return tuple((by_exponent[e][0], by_exponent[e][1]) for e in order
                 if by_exponent[e][0] > 0 or by_exponent[e][1] > 0)


def lee2019_rho_lower(p_lower: Fraction, keep: Fraction, n_categories: int, r: int
                      ) -> Fraction:
    """Lee et al. (2019): the smallest ``P(f(phi(x~)) = y)`` over ``||x - x~||_0 <= r`` given
    ``P(f(phi(x)) = y) >= p_lower`` (exact greedy Neyman-Pearson fill over
    :func:`lee2019_regions`)."""
    if not isinstance(p_lower, (Fraction, int)) or not 0 <= p_lower <= 1:
        raise ValueError(f"p_lower must be a Fraction in [0, 1], got {p_lower!r}")
    acc_x = acc_xt = Fraction(0)
    for px, pxt in lee2019_regions(*_check_lee(keep, n_categories, r)):
        if px == 0:
            continue
        if acc_x + px <= p_lower:
            acc_x, acc_xt = acc_x + px, acc_xt + pxt
        else:
            return acc_xt + (p_lower - acc_x) * pxt / px
    return acc_xt


def lee2019_threshold(keep: Fraction, n_categories: int, r: int) -> Fraction:
    """The exact ``p*`` with ``lee2019_rho_lower(p*) = 1/2``: an input is certified at radius
    ``r`` iff its ``p_lower > p*`` (Lee et al. pre-compute this value once per radius). The
    fill is piecewise linear and increasing, so ``p*`` is found by walking the regions until
    their ``x~``-mass passes one half and inverting the last piece, exactly."""
    acc_x = acc_xt = Fraction(0)
    half = Fraction(1, 2)
    for px, pxt in lee2019_regions(*_check_lee(keep, n_categories, r)):
        if acc_xt + pxt >= half and pxt > 0:
            return acc_x + (half - acc_xt) * px / pxt
        acc_x, acc_xt = acc_x + px, acc_xt + pxt
    return Fraction(1)


# --------------------------------------------------------------------------- brute force
def binary_channels(p_plus, p_minus, d: int) -> list:
    """Per-coordinate channel ``T[i][v][z] = P(phi(x)_i = z | x_i = v)`` for binary noise.

    ``p_plus``/``p_minus`` may be scalars or length-``d`` sequences (different blocks).
    Entries are Fractions when the inputs are, else floats.
    """
    pp = list(p_plus) if isinstance(p_plus, (list, tuple, np.ndarray)) else [p_plus] * d
    pm = list(p_minus) if isinstance(p_minus, (list, tuple, np.ndarray)) else [p_minus] * d
    if len(pp) != d or len(pm) != d:
        raise ValueError(f"p_plus and p_minus need {d} entries")
    return [[[1 - a, a], [b, 1 - b]] for a, b in zip(pp, pm)]


def categorical_channels(p_plus, p_minus, n_categories: int, d: int) -> list:
    """Per-coordinate channel for K categories (see :func:`reference_categorical_regions`)."""
    k = n_categories
    rows = []
    for v in range(k):
        stay, move = (1 - p_plus, p_plus / (k - 1)) if v == 0 else (1 - p_minus,
                                                                       p_minus / (k - 1))
        rows.append([stay if z == v else move for z in range(k)])
    return [rows] * d


def binary_ball(x: Sequence[int], budgets: Sequence[tuple[Sequence[int], int, int]]
                ) -> list[tuple[int, ...]]:
    """Every binary ``x~`` that, inside each block ``(indices, ra, rd)``, adds at most ``ra``
    ones (at zeros of ``x``) and deletes at most ``rd`` ones; ``x`` itself included."""
    x = tuple(int(v) for v in x)
    per_block = []
    for indices, ra, rd in budgets:
        zeros = [i for i in indices if x[i] == 0]
        ones = [i for i in indices if x[i] == 1]
        changes = []
        for a in range(min(ra, len(zeros)) + 1):
            for b in range(min(rd, len(ones)) + 1):
                for add in itertools.combinations(zeros, a):
                    for dele in itertools.combinations(ones, b):
                        changes.append(add + dele)
        per_block.append(changes)
    out = []
    for combo in itertools.product(*per_block):
        xt = list(x)
        for flips in combo:
            for i in flips:
                xt[i] = 1 - xt[i]
        out.append(tuple(xt))
    return out


def categorical_ball(x: Sequence[int], n_categories: int, ra: int, rd: int, rc: int
                     ) -> list[tuple[int, ...]]:
    """Every ``x~`` with at most ``ra`` zero -> non-zero, ``rd`` non-zero -> zero and ``rc``
    non-zero -> other non-zero changes of ``x`` (values in ``0..K-1``)."""
    x = tuple(int(v) for v in x)
    d = len(x)
    out = []
    for xt in itertools.product(range(n_categories), repeat=d):
        n_a = sum(1 for i in range(d) if x[i] == 0 and xt[i] != 0)
        n_d = sum(1 for i in range(d) if x[i] != 0 and xt[i] == 0)
        n_c = sum(1 for i in range(d) if x[i] != 0 and xt[i] != 0 and xt[i] != x[i])
        if n_a <= ra and n_d <= rd and n_c <= rc:
            out.append(xt)
    return out


def brute_force_worst_case(p, x: Sequence[int], candidates: Sequence[Sequence[int]],
                           channels: list, bound: Literal["lower", "upper"] = "lower"):
    """Worst case over ``candidates`` by Neyman-Pearson over every single outcome.

    For each ``x~`` in ``candidates`` and each outcome ``z`` of the noise (all
    ``K ** d`` of them), ``P_x(z) = prod_i T[i][x_i][z_i]``; the best classifier for the
    adversary is found by sorting the outcomes by likelihood ratio and filling (a fractional
    knapsack, which is exactly the linear program ``min sum_z P_x~(z) h_z`` s.t.
    ``sum_z P_x(z) h_z >= p``, ``0 <= h <= 1``). Exact when ``p`` and the channel entries are
    Fractions (then slow: keep ``K ** d * len(candidates)`` small), float64 otherwise.

    Returns the minimum (``"lower"``) or maximum (``"upper"``) over ``candidates``.
    """
    d = len(x)
    k = len(channels[0])
    exact = isinstance(p, Fraction) or isinstance(channels[0][0][0], Fraction)
    if exact:
        outcomes = list(itertools.product(range(k), repeat=d))

        def law(point):
            return [math.prod((channels[i][point[i]][z[i]] for i in range(d)), start=Fraction(1))
                    for z in outcomes]

        px = law(x)
        values = []
        for xt in candidates:
            pxt = law(xt)
            values.append(reference_worst_case(list(zip(px, pxt)), Fraction(p), bound))
        return min(values) if bound == "lower" else max(values)

    table = np.asarray(channels, dtype=np.float64)  # (d, K, K)
    outcomes = np.array(list(itertools.product(range(k), repeat=d)), dtype=np.int64)  # (n, d)
    coords = np.arange(d)

    def law_np(points: np.ndarray) -> np.ndarray:  # (m, d) -> (m, n_outcomes)
        return np.prod(table[coords[None, None, :], points[:, None, :], outcomes[None, :, :]],
                       axis=2)

    px = law_np(np.asarray([x]))[0]
    pxt_all = law_np(np.asarray(candidates, dtype=np.int64))
    p = float(p)
    best = math.inf if bound == "lower" else -math.inf
    for pxt in pxt_all:
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.log(px) - np.log(pxt)
        lr = np.where((px > 0) & (pxt == 0), np.inf, lr)
        lr = np.where((px == 0) & (pxt > 0), -np.inf, lr)
        keep = (px > 0) | (pxt > 0)
        a, b, lr = px[keep], pxt[keep], lr[keep]
        if bound == "lower":
            order = np.argsort(-lr, kind="stable")
            a, b = a[order], b[order]
            b = np.where(a > 0, b, 0.0)
            before = np.concatenate([[0.0], np.cumsum(a)[:-1]])
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(a > 0, np.clip((p - before) / a, 0.0, 1.0), 0.0)
            val = float(np.sum(frac * b))
            best = min(best, val)
        else:
            order = np.argsort(lr, kind="stable")
            a, b = a[order], b[order]
            before = np.concatenate([[0.0], np.cumsum(a)[:-1]])
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(a > 0, np.clip((p - before) / a, 0.0, 1.0), 1.0)
            val = float(np.sum(frac * b))
            best = max(best, val)
    return best
