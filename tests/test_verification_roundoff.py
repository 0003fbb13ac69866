"""Soundness against round-off (issue 10, item 1): "verified" must hold for the network's
real-arithmetic function with the stored float32 weights taken exactly.

The independent check is exact rational arithmetic: for a network with a one-dimensional
input and one hidden layer, the margin is piecewise linear in the input with kinks only where
a (non-grafted) hidden neuron changes sign, so its exact minimum over the interval is the
minimum over the interval's ends and the kinks inside, evaluated with ``fractions.Fraction``.
Each case shifts the label's output bias (rounded down in float32) so that this exact minimum
is negative by ``delta`` (1e-7 .. 1e-4) of the logit scale: no method may say "verified".
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from certlab.verification.grafted import GraftedReLU
from certlab.verification.numerics import (MARGIN_TOLERANCE, float64_twin, magnitude_bounds,
                                           real_box, roundoff_tolerance)
from certlab.verification.verify import verify

torch.set_num_threads(1)

X0, EPS = 0.5, 0.3


def _fr(t: torch.Tensor) -> list:
    return [Fraction(float(v)) for v in t.detach().reshape(-1).tolist()]


def exact_logits(model: nn.Sequential, point: Fraction) -> list[Fraction]:
    """Logits of Linear(1, h) - act - Linear(h, K) at ``point`` in exact arithmetic."""
    w1, b1 = _fr(model[0].weight), _fr(model[0].bias)
    act = model[1]
    hidden = []
    for i, (w, b) in enumerate(zip(w1, b1)):
        z = w * point + b
        if isinstance(act, GraftedReLU) and bool(act.mask[i]):
            hidden.append(Fraction(float(act.slope[i].detach())) * z
                          + Fraction(float(act.intercept[i].detach())))
        else:
            hidden.append(max(z, Fraction(0)))
    w2 = model[2].weight.detach()
    b2 = _fr(model[2].bias)
    return [sum((Fraction(float(w2[k, i])) * hidden[i] for i in range(len(hidden))),
                Fraction(0)) + b2[k] for k in range(w2.shape[0])]


def exact_min_margin(model: nn.Sequential, label: int = 0) -> tuple[Fraction, Fraction]:
    """Exact ``min_x f_label(x) - max_j f_j(x)`` over [X0 - EPS, X0 + EPS] (the real box:
    0.5 and the double 0.3 taken exactly) and a minimiser."""
    lo, hi = Fraction(X0) - Fraction(EPS), Fraction(X0) + Fraction(EPS)
    points = [lo, hi]
    for w, b in zip(_fr(model[0].weight), _fr(model[0].bias)):
        if w != 0 and lo < -b / w < hi:
            points.append(-b / w)
    best = None
    for p in points:
        logits = exact_logits(model, p)
        m = logits[label] - max(v for k, v in enumerate(logits) if k != label)
        if best is None or m < best[0]:
            best = (m, p)
    return best


def borderline_net(seed: int, scale: float, delta: float, width: int = 8,
                   grafted: bool = False) -> tuple[nn.Sequential, Fraction]:
    """A Linear(1, width)-ReLU-Linear(width, 2) net with weights of size ``scale`` whose exact
    minimum margin (label 0) over the box is about ``-delta S`` (within a factor 2 and a
    float32 ulp of the bias; negative ``delta``: a positive margin), S the largest |logit|
    at the minimiser. Returns the net and that exact minimum."""
    gen = torch.Generator().manual_seed(seed)
    act: nn.Module = nn.ReLU()
    if grafted:
        act = GraftedReLU(torch.rand(width, generator=gen) < 0.3,
                          torch.rand(width, generator=gen) * 0.5,
                          (torch.rand(width, generator=gen) - 0.5) * scale)
    net = nn.Sequential(nn.Linear(1, width), act, nn.Linear(width, 2)).eval()
    with torch.no_grad():
        w1 = torch.randn(width, 1, generator=gen) * scale
        kinks = X0 + 3 * EPS * (2 * torch.rand(width, generator=gen) - 1)  # some outside
        net[0].weight.copy_(w1)
        net[0].bias.copy_(-w1[:, 0] * kinks)
        net[2].weight.copy_(torch.randn(2, width, generator=gen) * scale)
        net[2].bias.zero_()
    for _ in range(3):  # the shift changes the logit scale: iterate to a fixed point
        m, p = exact_min_margin(net)
        s = max(abs(v) for v in exact_logits(net, p)) or Fraction(1)
        target = Fraction(float(net[2].bias[0].detach())) - m - Fraction(delta) * s
        b0 = torch.tensor(float(target), dtype=torch.float32)
        if Fraction(float(b0)) > target:  # round down: the margin only gets smaller
            b0 = torch.nextafter(b0, torch.tensor(-math.inf))
        with torch.no_grad():
            net[2].bias[0] = b0
    m_new, p_new = exact_min_margin(net)
    s_new = max(abs(v) for v in exact_logits(net, p_new))
    ulp = Fraction(float(torch.finfo(torch.float32).eps)) * abs(Fraction(float(b0)))
    want = -Fraction(delta) * s_new
    assert want - abs(want) - 2 * ulp <= m_new <= want + abs(want) / 2, \
        (float(m_new), float(s_new))
    return net, m_new


def issue_repro_net() -> nn.Sequential:
    """The network of issue 10 (weights rounded to 2 decimals in the report), with the
    label's bias lowered so that its exact minimum margin is -1e-7 of the logit scale."""
    net = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([-80.19, -132.44, -24.84, 42.04, 113.60, 10.97,
                                          -55.26, -78.48])[:, None])
        net[0].bias.copy_(torch.tensor([37.44, 81.74, 13.64, -61.67, -47.91, 80.00, 10.14,
                                        -86.61]))
        net[2].weight.copy_(torch.tensor([
            [-8.37, -116.32, -62.93, -48.80, -71.33, 55.34, -6.31, -58.94],
            [40.96, 82.99, -164.30, -25.67, -98.07, -17.32, -128.94, 2.07]]))
        net[2].bias.copy_(torch.tensor([5217.05, 0.0]))
    m, p = exact_min_margin(net)
    s = max(abs(v) for v in exact_logits(net, p))
    target = Fraction(5217.05) - m - Fraction(1e-7) * s
    b0 = torch.tensor(float(target), dtype=torch.float32)
    if Fraction(float(b0)) > target:
        b0 = torch.nextafter(b0, torch.tensor(-math.inf))
    with torch.no_grad():
        net[2].bias[0] = b0
    assert exact_min_margin(net)[0] < 0
    return net


METHODS = ("bab", "alpha-crown", "milp")


def run_all(net):
    x = torch.tensor([[X0]])
    return {m: verify(net, x, 0, EPS, method=m, timeout=None if m != "milp" else 30.0,
                      max_domains=64, attack_steps=0) for m in METHODS}


def test_issue_10_repro_is_never_verified():
    net = issue_repro_net()
    for method, res in run_all(net).items():
        assert res.status != "verified", (method, res)
        if res.status == "falsified":
            x = res.counterexample
            assert float(x.min()) >= X0 - EPS and float(x.max()) <= X0 + EPS


@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0, 1000.0])
@pytest.mark.parametrize("delta", [1e-7, 1e-6, 1e-5, 1e-4])
@pytest.mark.parametrize("seed", [0, 1])
def test_negative_exact_margin_is_never_verified(scale, delta, seed):
    # (scale 100, delta 1e-7, seed 0) was "verified" by bab before the fix, as was the repro
    net, exact = borderline_net(seed, scale, delta, grafted=seed == 1)
    for method, res in run_all(net).items():
        assert res.status != "verified", (method, scale, delta, float(exact), res)
        # every reported bound is a lower bound of the exact minimum (up to round-off)
        assert res.lower_bound <= float(exact) + 1e-9 * scale ** 2, (method, res)


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_positive_exact_margin_above_tolerance_is_still_verified(scale):
    # the same nets with a clearly positive margin (1e-2 of the logit scale) are verified:
    # the tolerance is not so large that it blocks real certificates
    net, exact = borderline_net(7, scale, -1e-2)
    assert exact > 0
    results = run_all(net)
    assert results["bab"].status == "verified"
    assert results["milp"].status == "verified"


def test_tolerance_scales_with_magnitudes_and_has_the_floor():
    x = torch.tensor([[X0]])
    lower, upper = real_box(x, EPS, 0.0, 1.0)
    assert float(lower) <= X0 - EPS and float(upper) >= X0 + EPS
    small, _ = borderline_net(1, 1.0, 1e-4)
    big, _ = borderline_net(1, 1000.0, 1e-4)
    t_small = roundoff_tolerance(float64_twin(small), lower, upper)
    t_big = roundoff_tolerance(float64_twin(big), lower, upper)
    assert 0 < t_small < MARGIN_TOLERANCE
    assert t_big > 1e5 * t_small  # magnitudes grow like scale ** 2
    # float32 round-off of such a net is far above the old absolute 1e-5
    assert roundoff_tolerance(big, lower, upper, dtype=torch.float32) > 1e-3
    # the magnitude bounds really bound the values over the box
    pre, logits = magnitude_bounds(big, lower, upper)
    xs = torch.linspace(float(lower), float(upper), 101, dtype=torch.float64)[:, None]
    with torch.no_grad():
        assert bool((float64_twin(big)(xs).abs() <= logits).all())
        assert bool((float64_twin(big)[0](xs).abs() <= pre[0]).all())
