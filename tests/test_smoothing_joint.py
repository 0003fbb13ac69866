"""Joint certificate for two independently smoothed blocks (graph structure + attributes)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from certlab.smoothing.certificate import rho_lower, rho_upper
from certlab.smoothing.joint import (BinaryBlock, certify_joint, joint_regions, rho_lower_joint,
                                     rho_upper_joint)
from certlab.smoothing.reference import (binary_ball, binary_channels, brute_force_worst_case,
                                         rho_lower_joint_reference, rho_upper_joint_reference)
from certlab.smoothing.regions import binary_regions

TOL = 1e-12

# d = 10: block A (e.g. edges) = coordinates 0..4, block B (attributes) = 5..9
X = (1, 1, 0, 0, 0, 1, 1, 1, 0, 0)
BLOCK_A = range(0, 5)
BLOCK_B = range(5, 10)


def _product_order_fill(p, *blocks):
    """The reference code's joint fill: product regions taken in product order (no re-sort)."""
    regs = [binary_regions(*b.as_tuple()) for b in blocks]
    px = np.multiply.outer(regs[0].px, regs[1].px).ravel()
    pxt = np.multiply.outer(regs[0].px_tilde, regs[1].px_tilde).ravel()
    acc_x = acc_xt = 0.0
    for a, b in zip(px, pxt):
        if acc_x + a >= p:
            return acc_xt + (p - acc_x) * b / a
        acc_x, acc_xt = acc_x + a, acc_xt + b
    return acc_xt


def _brute(p, block_a, block_b, bound="lower"):
    channels = binary_channels([block_a.p_plus] * 5 + [block_b.p_plus] * 5,
                               [block_a.p_minus] * 5 + [block_b.p_minus] * 5, 10)
    ball = binary_ball(X, [(BLOCK_A, block_a.ra, block_a.rd), (BLOCK_B, block_b.ra, block_b.rd)])
    return brute_force_worst_case(p, X, ball, channels, bound)


JOINT_CASES = [
    (BinaryBlock(0.05, 0.4, 1, 1), BinaryBlock(0.01, 0.6, 1, 2)),
    (BinaryBlock(0.001, 0.4, 0, 2), BinaryBlock(0.01, 0.6, 0, 2)),
    (BinaryBlock(0.3, 0.3, 1, 1), BinaryBlock(0.7, 0.6, 2, 1)),
    (BinaryBlock(0.0, 0.5, 2, 1), BinaryBlock(0.2, 0.0, 1, 2)),
]


@pytest.mark.slow
@pytest.mark.parametrize("block_a,block_b", JOINT_CASES)
def test_joint_equals_brute_force(block_a, block_b):
    for p in (0.55, 0.8, 0.95, 0.999):
        lo_brute = _brute(p, block_a, block_b, "lower")
        lo = rho_lower_joint(p, block_a, block_b)
        assert lo <= lo_brute + TOL  # sound
        assert lo == pytest.approx(lo_brute, abs=TOL)  # tight
    for p in (0.01, 0.2, 0.45):
        up_brute = _brute(p, block_a, block_b, "upper")
        up = rho_upper_joint(p, block_a, block_b)
        assert up >= up_brute - TOL
        assert up == pytest.approx(up_brute, abs=TOL)


def test_product_order_overstates_robustness():
    """Without the re-sort, the fill is not a Neyman-Pearson solution: it reports a larger
    worst-case probability than the true one (brute force), i.e. too much robustness."""
    block_a, block_b = JOINT_CASES[1]
    overstated = 0
    for p in (0.7, 0.8, 0.9):
        truth = _brute(p, block_a, block_b)
        assert rho_lower_joint(p, block_a, block_b) == pytest.approx(truth, abs=TOL)
        unsorted = _product_order_fill(p, block_a, block_b)
        assert unsorted >= truth - TOL
        overstated += unsorted > truth + 1e-6
    assert overstated >= 2


def test_joint_regions_are_sorted_and_complete():
    block_a, block_b = BinaryBlock(0.001, 0.4, 2, 3), BinaryBlock(0.01, 0.6, 4, 5)
    regions = joint_regions(block_a, block_b)
    assert regions.n_regions <= 6 * 10 and regions.labels.shape[1] == 2
    assert np.all(np.diff(regions.log_ratio) <= 0)
    assert abs(regions.px.sum() - 1) < 1e-13 and abs(regions.px_tilde.sum() - 1) < 1e-13


def test_single_block_and_empty_budget_reduce_to_binary():
    block = BinaryBlock(0.01, 0.6, 2, 5)
    p = np.linspace(0, 1, 33)
    np.testing.assert_allclose(rho_lower_joint(p, block), rho_lower(p, 0.01, 0.6, 2, 5),
                               atol=1e-15)
    untouched = BinaryBlock(0.001, 0.4, 0, 0)
    np.testing.assert_allclose(rho_lower_joint(p, untouched, block),
                               rho_lower(p, 0.01, 0.6, 2, 5), atol=1e-14)
    np.testing.assert_allclose(rho_upper_joint(p, block, untouched),
                               rho_upper(p, 0.01, 0.6, 2, 5), atol=1e-14)


def test_same_noise_blocks_add_their_budgets():
    """Two blocks with the same noise are one block with the summed budget."""
    p = np.linspace(0.5, 1, 21)
    np.testing.assert_allclose(
        rho_lower_joint(p, BinaryBlock(0.01, 0.6, 1, 2), BinaryBlock(0.01, 0.6, 2, 3)),
        rho_lower(p, 0.01, 0.6, 3, 5), atol=1e-14)


@pytest.mark.parametrize("block_a,block_b", [
    (BinaryBlock(0.001, 0.4, 10, 20), BinaryBlock(0.01, 0.6, 15, 30)),
    (BinaryBlock(0.3, 0.3, 25, 25), BinaryBlock(0.8, 0.7, 5, 40)),
])
def test_joint_matches_high_precision_reference(block_a, block_b):
    rng = np.random.default_rng(0)
    ps = np.concatenate([rng.uniform(0, 1, 8), 1 - 10.0 ** -rng.uniform(1, 14, 6), [0.0, 1.0]])
    lo = rho_lower_joint(ps, block_a, block_b)
    up = rho_upper_joint(ps, block_a, block_b)
    blocks = [block_a.as_tuple(), block_b.as_tuple()]
    for p, lo_i, up_i in zip(ps, lo, up):
        assert abs(mpmath.mpf(float(lo_i)) - rho_lower_joint_reference(float(p), blocks)) < TOL
        assert abs(mpmath.mpf(float(up_i)) - rho_upper_joint_reference(float(p), blocks)) < TOL


def test_certify_joint():
    a, b = BinaryBlock(0.001, 0.4, 0, 1), BinaryBlock(0.01, 0.6, 0, 1)
    p = np.array([0.3, 0.7, 0.99])
    expected = rho_lower_joint(p, a, b) > 0.5 + 1e-12
    np.testing.assert_array_equal(certify_joint(p, a, b), expected)
    assert certify_joint(0.99, a, b, p_upper=0.01) is True
    assert certify_joint(0.6, a, b, p_upper=0.4) is False
    # p_lower + p_upper > 1 cannot come from bounds that hold together (issue 10)
    with pytest.raises(ValueError, match="p_lower \\+ p_upper must not exceed 1"):
        certify_joint(0.6, a, b, p_upper=0.55)


def test_bad_blocks():
    with pytest.raises(ValueError, match="p_plus"):
        BinaryBlock(1.5, 0.4, 0, 1)
    with pytest.raises(ValueError, match="p_minus"):
        BinaryBlock(0.1, -0.4, 0, 1)
    with pytest.raises(ValueError, match="rd"):
        BinaryBlock(0.1, 0.4, 0, -1)
    with pytest.raises(TypeError, match="ra"):
        BinaryBlock(0.1, 0.4, 0.5, 1)
    with pytest.raises(TypeError, match="BinaryBlock"):
        rho_lower_joint(0.9, (0.1, 0.4, 0, 1))
    with pytest.raises(ValueError, match="at least one"):
        rho_lower_joint(0.9)
    with pytest.raises(ValueError, match="p_lower"):
        rho_lower_joint(1.1, BinaryBlock(0.1, 0.4, 0, 1))


def test_too_many_product_regions_are_refused_up_front():
    from certlab.smoothing.joint import MAX_JOINT_REGIONS

    # issue 10: 8 blocks gave a raw MemoryError; the count is (ra + rd + 1) per block
    block = BinaryBlock(0.01, 0.6, 3, 3)
    assert 7**8 > MAX_JOINT_REGIONS
    for fn in (rho_lower_joint, rho_upper_joint, certify_joint):
        with pytest.raises(ValueError, match="MAX_JOINT_REGIONS"):
            fn(0.9, *[block] * 8)
    with pytest.raises(ValueError, match="MAX_JOINT_REGIONS"):
        joint_regions(*[BinaryBlock(0.01, 0.6, 10**6, 0)] * 100)
    # just below the limit still works and agrees with one block when the other is idle
    assert rho_lower_joint(0.9, block, BinaryBlock(0.01, 0.6, 0, 0)) == \
        pytest.approx(rho_lower(0.9, 0.01, 0.6, 3, 3), abs=1e-14)
