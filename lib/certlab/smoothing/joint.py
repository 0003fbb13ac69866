"""Joint certificate: several binary blocks (e.g. graph structure and attributes) perturbed at once.

Each block (the upper triangle of the adjacency matrix, the attribute matrix, ...) is smoothed
independently with its own ``(p_plus, p_minus)``, and the adversary has a separate budget
``(ra, rd)`` in each block. Since the noise is independent across blocks, the likelihood ratio of
an outcome is the product of the block ratios, and the regions of the joint problem are the
Cartesian product of the block regions (masses and ratios multiply), as in the paper's joint
certificate for graph structure and attributes.

The product regions are **not** sorted by ratio in the product order: the ratio of region
``(q_1, q_2)`` is :math:`c_1^{q_1} c_2^{q_2}` (times constants), which is in general not
monotone in the product (lexicographic) order. They must be re-sorted before the greedy fill;
the reference implementation of the paper fills them in product order, which is not a
Neyman-Pearson solution and overstates robustness (the tests show such a case against
brute-force enumeration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from certlab.smoothing.certificate import DEFAULT_MARGIN, _check_margin, _validated_bounds
from certlab.smoothing.regions import (LikelihoodRatioRegions, _binary_regions_cached,
                                       _format_count, _scalar_probability, sorted_regions,
                                       worst_case_probability)
from certlab.utils import check_nonnegative_int, check_probability

__all__ = [
    "MAX_JOINT_REGIONS",
    "BinaryBlock",
    "joint_regions",
    "rho_lower_joint",
    "rho_upper_joint",
    "certify_joint",
]


@dataclass(frozen=True)
class BinaryBlock:
    """One independently smoothed binary block of the input and the adversary's budget in it.

    Attributes:
        p_plus: noise probability of flipping a ``0`` of this block to ``1``, in ``[0, 1]``.
        p_minus: noise probability of flipping a ``1`` of this block to ``0``, in ``[0, 1]``.
        ra: ones the adversary may add in this block (non-negative int).
        rd: ones the adversary may delete in this block (non-negative int).

    Example: ``BinaryBlock(p_plus=0.001, p_minus=0.4, ra=0, rd=2)`` for edges and
    ``BinaryBlock(0.01, 0.6, ra=1, rd=3)`` for attributes.
    """

    p_plus: float
    p_minus: float
    ra: int
    rd: int

    def __post_init__(self):
        object.__setattr__(self, "p_plus", _scalar_probability(self.p_plus, "p_plus"))
        object.__setattr__(self, "p_minus", _scalar_probability(self.p_minus, "p_minus"))
        object.__setattr__(self, "ra", check_nonnegative_int(self.ra, "ra"))
        object.__setattr__(self, "rd", check_nonnegative_int(self.rd, "rd"))

    def as_tuple(self) -> tuple[float, float, int, int]:
        return (self.p_plus, self.p_minus, self.ra, self.rd)


#: Largest number of product regions of a joint certificate (``48 + 16 * n_blocks`` bytes
#: each while they are built and sorted: well below 1 GiB and a few seconds at the limit).
MAX_JOINT_REGIONS = 2 * 10**6


def _check_blocks(blocks) -> tuple[BinaryBlock, ...]:
    if len(blocks) == 0:
        raise ValueError("at least one BinaryBlock is needed")
    for i, block in enumerate(blocks):
        if not isinstance(block, BinaryBlock):
            raise TypeError(f"blocks[{i}] must be a BinaryBlock, got {type(block).__name__}")
    n_regions = math.prod(b.ra + b.rd + 1 for b in blocks)
    if n_regions > MAX_JOINT_REGIONS:
        budgets = [(b.ra, b.rd) for b in blocks[:8]]
        raise ValueError(f"{len(blocks)} blocks with budgets (ra, rd) {budgets}"
                         f"{' ...' if len(blocks) > 8 else ''} give up to "
                         f"{_format_count(n_regions)} product regions (about "
                         f"{_format_count(n_regions * (48 + 16 * len(blocks)))} bytes), above "
                         f"the limit MAX_JOINT_REGIONS={MAX_JOINT_REGIONS:.0e} "
                         "(certlab.smoothing.joint): refused up front")
    return tuple(blocks)


@lru_cache(maxsize=4096)
def _joint_regions_cached(blocks: tuple[BinaryBlock, ...]) -> LikelihoodRatioRegions:
    px = np.ones(1)
    pxt = np.ones(1)
    log_ratio = np.zeros(1)
    labels = np.zeros((1, 0), dtype=np.int64)
    for block in blocks:
        reg = _binary_regions_cached(*block.as_tuple())
        px = np.multiply.outer(px, reg.px).reshape(-1)
        pxt = np.multiply.outer(pxt, reg.px_tilde).reshape(-1)
        with np.errstate(invalid="ignore"):
            # inf + (-inf) = nan only where the product is empty under both laws (dropped)
            log_ratio = np.add.outer(log_ratio, reg.log_ratio).reshape(-1)
        labels = np.concatenate([np.repeat(labels, reg.n_regions, axis=0),
                                 np.tile(reg.labels, (labels.shape[0], 1))], axis=1)
    # Underflowed products: keep the ratio consistent with the masses that the fill sees.
    log_ratio = np.where((px > 0) & (pxt == 0), np.inf, log_ratio)
    log_ratio = np.where((px == 0) & (pxt > 0), -np.inf, log_ratio)
    # RE-SORT by ratio (the product order is not the ratio order).
    return sorted_regions(px, pxt, labels, log_ratio=log_ratio)


def joint_regions(*blocks: BinaryBlock) -> LikelihoodRatioRegions:
    """Product regions of independently smoothed blocks, sorted by decreasing ratio.

    Returns :class:`~certlab.smoothing.regions.LikelihoodRatioRegions` with at most
    :math:`\\prod_b (r_{a,b} + r_{d,b} + 1)` regions; ``labels[:, b]`` is the ``q`` of block
    ``b`` (``-1`` for a block whose noise ignores the input, ``p_plus + p_minus == 1``).
    """
    return _joint_regions_cached(_check_blocks(blocks))


def rho_lower_joint(p_lower, *blocks: BinaryBlock):
    """Smallest top-class probability when every block is perturbed within its budget.

    Args:
        p_lower: lower bound on :math:`P(f(\\phi(x)) = y)`, scalar or array, in ``[0, 1]``.
        *blocks: one :class:`BinaryBlock` per independently smoothed part of the input, e.g.
            ``rho_lower_joint(p, structure_block, attribute_block)``.

    Returns:
        float (scalar input) or array of the shape of ``p_lower``; with a single block it
        equals :func:`certlab.smoothing.rho_lower`.
    """
    p = check_probability(p_lower, "p_lower")
    out = worst_case_probability(joint_regions(*blocks), p, "lower")
    return float(out) if out.ndim == 0 else out


def rho_upper_joint(p_upper, *blocks: BinaryBlock):
    """Largest probability of a class with :math:`P(f(\\phi(x)) = y) \\le` ``p_upper`` when every
    block is perturbed within its budget (see :func:`rho_lower_joint`)."""
    p = check_probability(p_upper, "p_upper")
    out = worst_case_probability(joint_regions(*blocks), p, "upper")
    return float(out) if out.ndim == 0 else out


def certify_joint(p_lower, *blocks: BinaryBlock, p_upper=None, margin: float = DEFAULT_MARGIN):
    """Joint certification decision: ``rho_lower_joint(p_lower) - 0.5 > margin`` (binary rule)
    or ``rho_lower_joint(p_lower) - rho_upper_joint(p_upper) > margin`` (multi-class rule).

    Returns a bool (scalar input) or a bool array of the broadcast shape of the bounds.
    """
    low, up = _validated_bounds(p_lower, p_upper)
    margin = _check_margin(margin)
    regions = joint_regions(*blocks)
    rho = worst_case_probability(regions, low, "lower")
    threshold = 0.5 if up is None else worst_case_probability(regions, up, "upper")
    out = rho - threshold > margin
    return bool(out) if np.ndim(out) == 0 else out
