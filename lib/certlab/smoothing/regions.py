"""Constant likelihood-ratio regions and the greedy Neyman-Pearson fill (Bojchevski et al., 2020).

Sparsity-aware noise :math:`\\phi` flips every ``0`` of a binary input to ``1`` with probability
``p_plus`` and every ``1`` to ``0`` with probability ``p_minus``, independently. Let
:math:`\\tilde x` add ``ra`` ones to :math:`x` and delete ``rd`` ones. Only the ``ra + rd``
coordinates where :math:`x` and :math:`\\tilde x` differ matter (the others have the same law
under both), and an outcome :math:`z` is characterised by ``q``, the number of those coordinates
that :math:`\\phi(x)` flipped. This splits the outcome space into ``ra + rd + 1`` regions
:math:`\\mathcal R_q` with the constant likelihood ratio (the paper's regions)

.. math::

    \\frac{P(\\phi(x) = z)}{P(\\phi(\\tilde x) = z)} =
    \\Big(\\frac{p_+}{1 - p_-}\\Big)^{q - r_d} \\Big(\\frac{p_-}{1 - p_+}\\Big)^{q - r_a},
    \\qquad z \\in \\mathcal R_q .

Their masses are Poisson-binomial distributions: under :math:`x`, ``q`` is the sum of ``ra``
Bernoulli(``p_plus``) and ``rd`` Bernoulli(``p_minus``) variables; under :math:`\\tilde x` it
is the sum of ``ra`` Bernoulli(``1 - p_minus``) and ``rd`` Bernoulli(``1 - p_plus``) variables.

Numerics (why this module does not use the paper's recursion). The classic Poisson-binomial
recursion alternates signs and loses all accuracy in double precision near ``ra = rd = 30``;
dividing :math:`P_x(\\mathcal R_q)` by a ratio of size :math:`10^{\\pm 100}` loses more.
Here both masses are convolutions of two binomial pmfs with non-negative terms, each pmf
evaluated directly (relative error about :math:`10^{-14}`), and never divided by a ratio. The
greedy fill then uses the *suffix* sums of :math:`P_x` (the mass not yet taken) for the lower
bound and the *prefix* sums for the upper bound; both are well conditioned (the derivative of
the result with respect to the summed mass is at most one over the mass, see
:func:`worst_case_probability`), so the result is accurate to about :math:`10^{-13}` absolute
for every budget, checked against 1000-bit arithmetic in ``certlab.smoothing.reference``.

Masses below the double range (radii in the thousands) underflow to zero; a region whose
:math:`P_x` underflows is then skipped by the lower fill and taken for free by the upper fill, so
underflow can only make the certificate more conservative.

Zero probabilities (``p_plus`` or ``p_minus`` in ``{0, 1}``) need no special case: a region can
then have :math:`P_x = 0` (ratio 0), :math:`P_{\\tilde x} = 0` (ratio infinity) or both (empty);
every outcome with positive mass under either law in a region has the same ratio, so the
regions stay exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

import numpy as np
from scipy import stats

from certlab.utils import check_nonnegative_int, check_probability

__all__ = [
    "MAX_RADIUS",
    "MAX_CONVOLUTION_WORK",
    "LikelihoodRatioRegions",
    "binomial_pmf",
    "binary_regions",
    "clear_region_caches",
    "region_log_ratios",
    "sorted_regions",
    "worst_case_probability",
]


def _scalar_probability(value, name: str) -> float:
    arr = check_probability(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar probability, got an array of shape {arr.shape}")
    return float(arr)


#: Largest ``ra + rd`` (regions of one cell) accepted: tables of ``ra + rd + 1`` masses.
MAX_RADIUS = 1_000_000
#: Largest ``(ra + 1) * (rd + 1)``: the cost of the exact convolution of the two binomial
#: pmfs that gives the region masses (about one second of CPU time at the limit).
MAX_CONVOLUTION_WORK = 10**9


def _format_count(value) -> str:
    """A (possibly astronomically large) count or size for error messages."""
    return f"{float(value):.3g}" if value < 1e300 else "more than 1e300"


def _check_radius_work(ra: int, rd: int) -> None:
    """Refuse a cell whose region tables are too large to build (limits named)."""
    if ra + rd > MAX_RADIUS:
        raise ValueError(f"ra + rd = {ra + rd} is above the limit MAX_RADIUS={MAX_RADIUS} "
                         "(certlab.smoothing.regions): refused up front")
    if (ra + 1) * (rd + 1) > MAX_CONVOLUTION_WORK:
        raise ValueError(f"(ra + 1) * (rd + 1) = {_format_count((ra + 1) * (rd + 1))} is above "
                         "the limit "
                         f"MAX_CONVOLUTION_WORK={MAX_CONVOLUTION_WORK:.0e} of the exact region "
                         "masses (certlab.smoothing.regions): refused up front")


def _binomial_coefficients(n: int) -> np.ndarray:
    """``C(n, j)``, ``j = 0..n``, correctly rounded, ``inf`` where above ``2**1000``.

    Exact integers are carried from both ends (the coefficients are symmetric and unimodal)
    only while they stay below ``2**1000``: at most a few hundred steps for large ``n``, so the
    cost is ``O(n)`` instead of the ``O(n^2)`` bit operations of the full integer sequence.
    """
    coef = np.full(n + 1, np.inf)
    c = 1
    for j in range(n // 2 + 1):
        if c >= 2**1000:
            break
        coef[j] = coef[n - j] = float(c)
        c = c * (n - j) // (j + 1)
    return coef


@lru_cache(maxsize=4096)
def _binomial_pmf_cached(n: int, p: float) -> np.ndarray:
    k = np.arange(n + 1, dtype=np.float64)
    q = 1.0 - p  # exact for p >= 0.5; relative error <= 2**-53 otherwise
    with np.errstate(under="ignore", over="ignore", divide="ignore", invalid="ignore"):
        # exact integer coefficients, correctly rounded (scipy.special.binom loses ~1e-13
        # relative accuracy above n = 150); inf where a double cannot hold them
        coef = _binomial_coefficients(n)
        pk = np.power(p, k)
        qk = np.power(q, n - k)
        pmf = coef * pk * qk
        # Intermediate under- or overflow (tiny p**k, huge binomial coefficient): redo those
        # entries in log space. Entries that are truly zero (p in {0, 1}) stay exactly zero.
        redo = ((pk < 1e-280) & (p > 0.0)) | ((qk < 1e-280) & (q > 0.0)) | (coef > 1e280)
        if np.any(redo):
            # scipy's Boost-based pmf: relative error about 1e-13 even for n in the thousands
            pmf = np.where(redo, stats.binom.pmf(k, n, p), pmf)
    pmf.setflags(write=False)
    return pmf


def binomial_pmf(n: int, p: float) -> np.ndarray:
    """The pmf of Binomial(``n``, ``p``) at ``0..n``, shape ``(n + 1,)``, read-only (cached).

    Exact zeros where ``p`` is 0 or 1; relative error about 1e-15 elsewhere (products of a
    correctly rounded binomial coefficient and two powers), about 1e-13 where a power would
    underflow or the coefficient overflow (scipy's Boost pmf is used there).
    """
    n = check_nonnegative_int(n, "n")
    p = _scalar_probability(p, "p")
    return _binomial_pmf_cached(n, p)


@dataclass(frozen=True)
class LikelihoodRatioRegions:
    """Regions of constant likelihood ratio, sorted by decreasing ratio.

    Attributes:
        px: :math:`P(\\phi(x) \\in \\mathcal R_i)`, shape ``(m,)``.
        px_tilde: :math:`P(\\phi(\\tilde x) \\in \\mathcal R_i)`, shape ``(m,)``.
        log_ratio: :math:`\\log(P_x / P_{\\tilde x})` of each region, shape ``(m,)``;
            ``+inf`` where only :math:`P_x > 0`, ``-inf`` where only :math:`P_{\\tilde x} > 0`.
            Non-increasing. Regions empty under both laws are dropped.
        labels: an integer label per region (``q`` for binary regions), shape ``(m, k)``;
            informative only (for plots and tests).

    Masses sum to one up to rounding. Instances are immutable; the cumulative sums used by
    :func:`worst_case_probability` are computed once and cached.
    """

    px: np.ndarray
    px_tilde: np.ndarray
    log_ratio: np.ndarray
    labels: np.ndarray

    @property
    def n_regions(self) -> int:
        return int(self.px.shape[0])

    @property
    def ratio(self) -> np.ndarray:
        """:math:`P_x / P_{\\tilde x}` per region (``inf`` where :math:`P_{\\tilde x} = 0`)."""
        return np.exp(self.log_ratio)

    @cached_property
    def _lower_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Lower fill: regions in decreasing-ratio order. Regions with P_x = 0 are never worth
        # taking (they add no P_x mass), so their P_x~ is zeroed (this also keeps an exact
        # p_lower = 1 sound).
        a = self.px
        b = np.where(a > 0, self.px_tilde, 0.0)
        # suffix[j] = sum_{i >= j} a_i, j = 0..m (suffix[m] = 0)
        suffix = np.concatenate([np.cumsum(a[::-1])[::-1], [0.0]])
        b_prefix = np.concatenate([[0.0], np.cumsum(b)])
        return suffix, b_prefix, b

    @cached_property
    def _upper_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        # Upper fill: increasing-ratio order (regions with P_x = 0 come first and are free).
        a = self.px[::-1]
        b = self.px_tilde[::-1]
        a_prefix = np.concatenate([[0.0], np.cumsum(a)])
        b_prefix = np.concatenate([[0.0], np.cumsum(b)])
        return a_prefix, b_prefix, a, b


def region_log_ratios(px: np.ndarray, px_tilde: np.ndarray) -> np.ndarray:
    """``log(px / px_tilde)`` with ``+inf`` where only ``px > 0`` and ``-inf`` where only
    ``px_tilde > 0`` (``nan`` where both are zero). Shapes ``(m,)`` -> ``(m,)``."""
    px = np.asarray(px, dtype=np.float64)
    px_tilde = np.asarray(px_tilde, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(px) - np.log(px_tilde)
    out = np.where((px > 0) & (px_tilde == 0), np.inf, out)
    out = np.where((px == 0) & (px_tilde > 0), -np.inf, out)
    out = np.where((px == 0) & (px_tilde == 0), np.nan, out)
    return out


def sorted_regions(px: np.ndarray, px_tilde: np.ndarray, labels: np.ndarray,
                   log_ratio: np.ndarray | None = None) -> LikelihoodRatioRegions:
    """Drop empty regions and sort the rest by decreasing likelihood ratio (stable sort).

    ``log_ratio`` may be given when it is known more accurately than from the masses (e.g.
    analytically); it must be ``+inf``/``-inf`` exactly where one mass is zero.
    """
    px = np.asarray(px, dtype=np.float64)
    px_tilde = np.asarray(px_tilde, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if log_ratio is None:
        log_ratio = region_log_ratios(px, px_tilde)
    keep = (px > 0) | (px_tilde > 0)
    px, px_tilde, labels, log_ratio = px[keep], px_tilde[keep], labels[keep], log_ratio[keep]
    order = np.argsort(-log_ratio, kind="stable")
    arrays = [px[order], px_tilde[order], log_ratio[order], labels[order]]
    for arr in arrays:
        arr.setflags(write=False)
    return LikelihoodRatioRegions(*arrays)


@lru_cache(maxsize=65536)
def _binary_regions_cached(p_plus: float, p_minus: float, ra: int, rd: int
                           ) -> LikelihoodRatioRegions:
    _check_radius_work(ra, rd)
    # Masses of q = (#flips among the ra added coordinates) + (#flips among the rd deleted ones)
    px = np.convolve(_binomial_pmf_cached(ra, p_plus), _binomial_pmf_cached(rd, p_minus))
    px_tilde = np.convolve(_binomial_pmf_cached(ra, 1.0 - p_minus),
                           _binomial_pmf_cached(rd, 1.0 - p_plus))
    q = np.arange(ra + rd + 1)
    # The ratio is monotone in q (ratio_{q+1} / ratio_q = p+ p- / ((1-p+)(1-p-))): decreasing
    # when p+ + p- < 1, increasing when p+ + p- > 1, constant (and both laws equal) when the
    # sum is exactly 1. The sign of p+ + p- - 1 is computed exactly (math.fsum).
    excess = math.fsum((p_plus, p_minus, -1.0))
    log_ratio = region_log_ratios(px, px_tilde)
    if excess == 0.0:
        # phi(x) and phi(x~) have the same law: one region with ratio 1.
        regions = LikelihoodRatioRegions(np.array([1.0]), np.array([1.0]), np.array([0.0]),
                                         np.array([[-1]]))
        for arr in (regions.px, regions.px_tilde, regions.log_ratio, regions.labels):
            arr.setflags(write=False)
        return regions
    # Sort by the exact monotone order of q (not by the rounded log ratios), then drop empties.
    order = q if excess < 0 else q[::-1]
    px, px_tilde, log_ratio, q = px[order], px_tilde[order], log_ratio[order], q[order]
    keep = (px > 0) | (px_tilde > 0)
    arrays = [px[keep], px_tilde[keep], log_ratio[keep], q[keep][:, None]]
    for arr in arrays:
        arr.setflags(write=False)
    return LikelihoodRatioRegions(*arrays)


def binary_regions(p_plus: float, p_minus: float, ra: int, rd: int) -> LikelihoodRatioRegions:
    """The ``ra + rd + 1`` constant likelihood-ratio regions of sparsity-aware binary noise.

    Args:
        p_plus: probability that the noise flips a ``0`` to ``1``, in ``[0, 1]``.
        p_minus: probability that the noise flips a ``1`` to ``0``, in ``[0, 1]``.
        ra: ones added by the adversary (non-negative int).
        rd: ones deleted by the adversary (non-negative int).

    Returns:
        :class:`LikelihoodRatioRegions` sorted by decreasing ratio; ``labels[:, 0]`` is ``q``,
        the number of the ``ra + rd`` differing coordinates that :math:`\\phi(x)` flips.
        Regions that are empty under both laws are dropped; when ``p_plus + p_minus == 1``
        both laws coincide and a single region with ratio one (label ``-1``) is returned.
    """
    p_plus = _scalar_probability(p_plus, "p_plus")
    p_minus = _scalar_probability(p_minus, "p_minus")
    ra = check_nonnegative_int(ra, "ra")
    rd = check_nonnegative_int(rd, "rd")
    return _binary_regions_cached(p_plus, p_minus, ra, rd)


def worst_case_probability(regions: LikelihoodRatioRegions, p, bound: Literal["lower", "upper"]
                           ) -> np.ndarray:
    """The Neyman-Pearson worst case over classifiers, by a greedy fill of sorted regions.

    ``bound="lower"``: given :math:`P(f(\\phi(x)) = y) \\ge p`, the smallest possible
    :math:`P(f(\\phi(\\tilde x)) = y)`: take whole regions in decreasing-ratio order while their
    :math:`P_x` mass stays below ``p``, then the needed fraction of the next one (the
    paper's certificate). ``bound="upper"``: given :math:`P(f(\\phi(x)) = y) \\le p`, the
    largest possible :math:`P(f(\\phi(\\tilde x)) = y)`: the same fill in increasing-ratio
    order.

    Accuracy. The lower fill computes the still-missing mass as ``suffix - (1 - p)`` (suffix
    sums of :math:`P_x` over the regions not yet taken); the upper fill uses prefix sums. In
    both cases the region being split has a ratio that bounds the summed mass times the
    conversion factor :math:`P_{\\tilde x}/P_x` by one, so a relative error ``e`` in the masses
    moves the result by at most about ``2 e`` (no cancellation is amplified).

    Args:
        regions: sorted regions (e.g. from :func:`binary_regions`).
        p: probabilities, any shape, already validated to lie in ``[0, 1]``.
        bound: ``"lower"`` or ``"upper"``.

    Returns:
        float64 array of the shape of ``p``.
    """
    p = np.asarray(p, dtype=np.float64)
    shape = p.shape
    flat = p.reshape(-1)
    if bound == "lower":
        suffix, b_prefix, b = regions._lower_tables
        m = regions.n_regions
        u = 1.0 - flat  # exact for p >= 0.5; for p < 0.5 the fill is well conditioned anyway
        # whole regions j = 0..k-1: suffix[j + 1] >= u  (suffix is non-increasing)
        k = np.searchsorted(-suffix[1:], -u, side="right")
        out = b_prefix[k].copy()
        part = k < m
        kk = k[part]
        a_k = regions.px[kk]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(a_k > 0, (suffix[kk] - u[part]) / a_k, 0.0)
        out[part] += np.clip(frac, 0.0, 1.0) * b[kk]
        out[flat == 0.0] = 0.0
    elif bound == "upper":
        a_prefix, b_prefix, a, b = regions._upper_tables
        m = regions.n_regions
        # whole regions i = 0..k-1: a_prefix[i + 1] <= p  (a_prefix is non-decreasing)
        k = np.searchsorted(a_prefix[1:], flat, side="right")
        out = b_prefix[k].copy()
        part = k < m
        kk = k[part]
        a_k = a[kk]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(a_k > 0, (flat[part] - a_prefix[kk]) / a_k, 1.0)
        out[part] += np.clip(frac, 0.0, 1.0) * b[kk]
    else:
        raise ValueError(f"bound must be 'lower' or 'upper', got {bound!r}")
    return np.clip(out, 0.0, 1.0).reshape(shape)


def clear_region_caches() -> None:
    """Forget cached binomial tables and binary regions (for cold-start timings)."""
    _binomial_pmf_cached.cache_clear()
    _binary_regions_cached.cache_clear()
