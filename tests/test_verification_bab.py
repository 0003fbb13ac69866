"""Complete verification: on random small ReLU and grafted networks "bab" never answers
differently from the exact "milp"; the MILP itself matches brute-force enumeration of
activation patterns (scipy LPs); sampled points never beat a verified bound; counterexamples
are real; time-outs never certify; bad input is rejected."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from torch import nn

from certlab.verification.attacks import pgd_attack
from certlab.verification.grafted import GraftedReLU
from certlab.verification.lirpa import bounds, input_box
from certlab.verification.verify import STATUSES, exact_min_margins, verify

torch.set_num_threads(1)


def random_mlp(seed: int, n_in: int = 4, hidden: int = 12, n_out: int = 3,
               grafted: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    if grafted:
        gen = torch.Generator().manual_seed(seed + 100)
        act1: nn.Module = GraftedReLU(torch.rand(hidden, generator=gen) < 0.5,
                                      torch.rand(hidden, generator=gen) * 0.5,
                                      (torch.rand(hidden, generator=gen) - 0.5) * 0.2)
    else:
        act1 = nn.ReLU()
    return nn.Sequential(nn.Linear(n_in, hidden), act1, nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out)).eval()


def margins(model, xs, label):
    with torch.no_grad():
        logits = model(xs)
    others = logits.clone()
    others[:, label] = -math.inf
    return logits[:, label] - others.max(dim=1).values


def sampled_min_margin(model, x, label, eps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lower, upper = input_box(x, eps)
    uniform = lower + (upper - lower) * torch.rand(3000, *x.shape[1:], generator=gen)
    corners = torch.where(torch.rand(500, *x.shape[1:], generator=gen) < 0.5, upper, lower)
    adv = pgd_attack(model, x, torch.tensor([label]), eps, steps=30, restarts=3, seed=seed)
    return float(margins(model, torch.cat([uniform, corners, adv]), label).min())


# The reference optimum of these small MILPs takes about a second; the generous limit
# only keeps a heavily loaded machine (other tests on every core) from ending it unsolved.
EXACT_TIME_LIMIT = 600.0


def borderline_case(seed: int, grafted: bool, eps: float, fraction: float):
    """A random network whose label bias is shifted so that the exact minimum margin over the
    ball (from the MILP) is ``fraction * (exact - alpha-CROWN root bound)``: for
    ``0 < fraction < 1`` the property holds but alpha-CROWN alone cannot prove it (BaB must
    branch); for ``fraction < 0`` it is violated on a region."""
    model = random_mlp(seed, hidden=16, grafted=grafted)
    x = torch.rand(1, 4, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        label = int(model(x).argmax())
        model[-1].bias[label] += 5.0  # make the property hold, then measure its exact margin
    lower, upper = input_box(x, eps)
    pre = bounds(model, x, eps, "crown").pre_activations
    exact = exact_min_margins(model, x, label, lower, upper, [b.lower for b in pre],
                              [b.upper for b in pre], decide_only=False,
                              time_limit=EXACT_TIME_LIMIT)
    assert exact.solved and exact.counterexample is None
    root = verify(model, x, label, eps, method="alpha-crown", attack_steps=0).lower_bound
    gap = exact.lower_bound - root
    with torch.no_grad():
        model[-1].bias[label] -= exact.lower_bound - fraction * gap
    return model, x, label, gap


def exact_optimum(model, x, label, eps) -> float:
    """The exact minimum margin over the ball (MILP solved to optimality)."""
    lower, upper = input_box(x, eps)
    pre = bounds(model, x, eps, "crown").pre_activations
    exact = exact_min_margins(model, x, label, lower, upper, [b.lower for b in pre],
                              [b.upper for b in pre], decide_only=False,
                              time_limit=EXACT_TIME_LIMIT)
    assert exact.solved
    return exact.lower_bound if exact.counterexample is None else -math.inf


CASES = [(seed, eps, grafted, fraction, attack)
         for seed, grafted in [(0, False), (1, False), (6, True), (3, True)]
         for eps, fraction, attack in [(0.3, 0.5, True), (0.3, -0.5, False)]]


@pytest.fixture(scope="module")
def compared():
    rows = []
    for seed, eps, grafted, fraction, attack in CASES:
        model, x, label, gap = borderline_case(seed, grafted, eps, fraction)
        steps = 30 if attack else 0
        r_bab = verify(model, x, label, eps, method="bab", timeout=20.0, attack_steps=steps,
                       batch_size=16)
        r_milp = verify(model, x, label, eps, method="milp", timeout=20.0)
        rows.append((model, x, label, eps, r_bab, r_milp))
    return rows


def test_bab_agrees_with_milp(compared):
    decided = 0
    statuses = set()
    for model, x, label, eps, r_bab, r_milp in compared:
        assert r_bab.status in STATUSES and r_milp.status in STATUSES
        if r_bab.status in ("verified", "falsified") and r_milp.status in ("verified",
                                                                           "falsified"):
            decided += 1
            assert r_bab.status == r_milp.status, (eps, r_bab, r_milp)
        statuses.add(r_milp.status)
    assert decided >= len(compared) - 1
    assert {"verified", "falsified"} <= statuses  # both outcomes are exercised
    assert any(r[4].n_branches > 0 for r in compared)  # and branching happens


def test_bab_falsifies_without_the_attack(compared):
    # the fraction < 0 cases run without PGD: falsifications there come from BaB itself
    found = [r for r, case in zip(compared, CASES) if not case[4] and r[4].status == "falsified"]
    assert found
    assert all(r[4].n_branches > 0 for r in found)


def test_sampled_points_never_beat_verified_bounds(compared):
    for model, x, label, eps, r_bab, r_milp in compared:
        sampled = sampled_min_margin(model, x, label, eps)
        for res in (r_bab, r_milp):
            if res.status == "verified":
                assert res.lower_bound > 0
                assert sampled >= res.lower_bound - 1e-5, (res, sampled)
        if r_bab.status == "verified":
            # BaB's bound is a lower bound of the exact optimum
            assert r_bab.lower_bound <= exact_optimum(model, x, label, eps) + 1e-5


def test_counterexamples_are_real(compared):
    n = 0
    for model, x, label, eps, r_bab, r_milp in compared:
        lower, upper = input_box(x, eps)
        for res in (r_bab, r_milp):
            if res.status == "falsified":
                n += 1
                cex = res.counterexample
                assert cex is not None and cex.shape == x.shape
                assert bool((cex >= lower).all() and (cex <= upper).all())
                assert bool((cex - x).abs().max() <= eps + 1e-7)
                assert float(margins(model, cex, label)[0]) <= 0.0
            else:
                assert res.counterexample is None
    assert n > 0


def _enumerated_min_margins(model, x, label, eps):
    """Exact minimum margins of a one-hidden-layer ReLU net by enumerating all activation
    patterns and solving one scipy LP per pattern and class (independent of ortools)."""
    w1, b1 = model[0].weight.detach().double().numpy(), model[0].bias.detach().double().numpy()
    w2, b2 = model[2].weight.detach().double().numpy(), model[2].bias.detach().double().numpy()
    lower, upper = input_box(x, eps)
    box = list(zip(lower.double().numpy()[0], upper.double().numpy()[0]))
    best = {j: math.inf for j in range(w2.shape[0]) if j != label}
    for pattern in itertools.product([0.0, 1.0], repeat=w1.shape[0]):
        p = np.array(pattern)
        # active: w1 x + b1 >= 0 ; inactive: w1 x + b1 <= 0  ->  A_ub x <= b_ub
        sign = np.where(p > 0, -1.0, 1.0)
        a_ub, b_ub = sign[:, None] * w1, -sign * b1
        for j in best:
            c_out = w2[label] - w2[j]
            cost = (c_out * p) @ w1
            const = (c_out * p) @ b1 + b2[label] - b2[j]
            lp = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=box, method="highs")
            if lp.status == 0:
                best[j] = min(best[j], lp.fun + const)
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_milp_matches_brute_force_enumeration(seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    x = torch.rand(1, 2, generator=torch.Generator().manual_seed(seed))
    label, eps = 0, 0.3
    lower, upper = input_box(x, eps)
    res = bounds(model, x, eps, "crown")
    exact = exact_min_margins(model, x, label, lower, upper,
                              [b.lower for b in res.pre_activations],
                              [b.upper for b in res.pre_activations], decide_only=False)
    brute = _enumerated_min_margins(model, x, label, eps)
    expected = [brute[j] for j in sorted(brute)]
    if exact.counterexample is None:
        assert exact.solved
        assert np.allclose(exact.spec_bounds, expected, atol=1e-6)
    else:
        assert exact.lower_bound <= min(expected) + 1e-6
    direct = verify(model, x, label, eps, method="milp")
    assert direct.lower_bound <= min(expected) + 1e-6
    assert direct.status == ("verified" if min(expected) > 1e-5 else "falsified")


@pytest.mark.parametrize("grafted", [False, True])
def test_small_conv_net_bab_agrees_with_milp(grafted):
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(8)
    act = (GraftedReLU(torch.rand(3, 4, 4, generator=gen) < 0.5, 0.3, 0.02) if grafted
           else nn.ReLU())
    model = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), act, nn.Flatten(),
                          nn.Linear(48, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        label = int(model(x).argmax())
    for eps in (0.02, 0.1):
        r_bab = verify(model, x, label, eps, method="bab", timeout=20.0, attack_steps=0)
        r_milp = verify(model, x, label, eps, method="milp", timeout=20.0)
        assert r_bab.status == r_milp.status
        assert r_bab.lower_bound <= exact_optimum(model, x, label, eps) + 1e-5


def test_timeout_never_certifies():
    # a case that needs thousands of branches (its root bound is about -0.035)
    torch.manual_seed(5)
    mask = torch.rand(16) < 0.5
    model = nn.Sequential(nn.Linear(4, 16), GraftedReLU(mask, 0.3, 0.05), nn.Linear(16, 16),
                          nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.rand(1, 4)
    with torch.no_grad():
        label = int(model(x).argmax())
    res = verify(model, x, label, 0.3, method="bab", timeout=0.5, attack_steps=0)
    assert res.status == "timeout"
    assert res.counterexample is None
    assert res.lower_bound < 0
    assert res.lower_bound <= sampled_min_margin(model, x, label, 0.3) + 1e-5


def test_input_validation():
    model = random_mlp(0)
    x = torch.rand(1, 4)
    with pytest.raises(ValueError, match="eps"):
        verify(model, x, 0, -0.1)
    with pytest.raises(ValueError, match=r"x must lie inside"):
        verify(model, x + 1.5, 0, 0.1)
    with pytest.raises(ValueError, match=r"label must lie in \[0, 2\]"):
        verify(model, x, 3, 0.1)
    with pytest.raises(ValueError, match="label"):
        verify(model, x, -1, 0.1)
    with pytest.raises(TypeError, match="label"):
        verify(model, x, 1.5, 0.1)
    with pytest.raises(ValueError, match="method"):
        verify(model, x, 0, 0.1, method="gurobi")
    with pytest.raises(ValueError, match="timeout"):
        verify(model, x, 0, 0.1, timeout=0)
    with pytest.raises(ValueError, match="one input"):
        verify(model, torch.rand(2, 4), 0, 0.1)
    with pytest.raises(TypeError, match=r"layer 1 \(Sigmoid"):
        verify(nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)), x, 0, 0.1)


def test_misclassified_input_is_its_own_counterexample():
    model = random_mlp(0)
    x = torch.rand(1, 4)
    with torch.no_grad():
        wrong = int(model(x).argmin())
    res = verify(model, x, wrong, 0.0, method="bab")
    assert res.status == "falsified" and torch.equal(res.counterexample, x)


# --------------------------------------------------------------------------------------------
# BoundedModule cache (certlab.verification.lirpa.cached_bounded_module) and time limits
# --------------------------------------------------------------------------------------------

def _flip_bias(model: nn.Sequential, label: int, delta: float, how: str) -> None:
    """Lower the label's logit bias by ``delta`` in one of the ways user code changes weights:
    in place through ``.data`` (bypasses the version counter), by assigning a new Parameter,
    or by replacing the whole layer."""
    if how == "data":
        model[-1].bias.data[label] -= delta
    elif how == "parameter":
        bias = model[-1].bias.detach().clone()
        bias[label] -= delta
        model[-1].bias = nn.Parameter(bias)
    else:
        old = model[-1]
        new = nn.Linear(old.in_features, old.out_features)
        with torch.no_grad():
            new.weight.copy_(old.weight)
            new.bias.copy_(old.bias)
            new.bias[label] -= delta
        model[-1] = new


@pytest.mark.parametrize("how", ["data", "parameter", "layer"])
def test_cache_is_invalidated_when_weights_change(how):
    from certlab.verification import lirpa

    model, x, label, gap = borderline_case(0, False, 0.3, 0.5)
    first = verify(model, x, label, 0.3, method="bab", timeout=20.0, attack_steps=0,
                   batch_size=16)
    assert first.status == "verified"
    assert model in lirpa._NET_CACHE  # the module is cached ...
    again = verify(model, x, label, 0.3, method="bab", timeout=20.0, attack_steps=0,
                   batch_size=16)
    # ... and reused: same answer, same bound, same search
    assert (again.status, again.lower_bound, again.n_branches) == \
        (first.status, first.lower_bound, first.n_branches)
    # exact margin was 0.5 * gap > 0; lowering the bias by gap makes it -0.5 * gap < 0
    _flip_bias(model, label, gap, how)
    flipped = verify(model, x, label, 0.3, method="bab", timeout=20.0, attack_steps=0,
                     batch_size=16)
    exact = verify(model, x, label, 0.3, method="milp", timeout=20.0)
    assert exact.status == "falsified"
    assert flipped.status == "falsified", flipped
    assert float(margins(model, flipped.counterexample, label)[0]) <= 0.0
    # bounds of the cached module equal those of a freshly built one
    cached = bounds(model, x, 0.3, "crown")
    lirpa.clear_bounded_module_cache()
    fresh = bounds(model, x, 0.3, "crown")
    assert torch.equal(cached.logits.lower, fresh.logits.lower)


def test_cached_module_is_reset_after_branch_and_bound():
    """A BaB run leaves beta split constraints and optimised slopes in the module; a later
    call on the same (cached) module must not see them."""
    from certlab.verification import lirpa

    from certlab.verification.numerics import float64_twin

    model, x, label, _ = borderline_case(1, True, 0.3, 0.5)
    lirpa.clear_bounded_module_cache()
    # BaB bounds the model's float64 twin: its cached module is the one BaB leaves changed
    cases = [(model, x), (float64_twin(model), x.double())]
    fresh = [{m: bounds(net, xx, 0.3, m) for m in ("crown", "alpha-crown")}
             for net, xx in cases]
    res = verify(model, x, label, 0.3, method="bab", timeout=20.0, attack_steps=0,
                 batch_size=16)
    assert res.n_branches > 0  # splits (beta) were used
    for (net, xx), refs in zip(cases, fresh):
        for method, ref in refs.items():
            again = bounds(net, xx, 0.3, method)
            assert torch.equal(again.logits.lower, ref.logits.lower), method
            for a, b in zip(again.pre_activations, ref.pre_activations):
                assert torch.equal(a.lower, b.lower) and torch.equal(a.upper, b.upper), method


def test_cache_does_not_keep_models_alive():
    import gc
    import weakref

    from certlab.verification import lirpa

    model = random_mlp(3)
    bounds(model, torch.rand(1, 4), 0.1, "crown")
    ref = weakref.ref(model)
    assert model in lirpa._NET_CACHE
    del model
    gc.collect()
    assert ref() is None


def test_deadline_interrupts_the_root_and_never_certifies():
    import time

    from certlab.verification.bab import BranchAndBound

    model, x, label, _ = borderline_case(3, True, 0.3, 0.5)  # alpha-CROWN cannot prove it
    lower, upper = input_box(x, 0.3)
    bab = BranchAndBound(model, x, label, lower, upper)
    root = bab.root(time.perf_counter())  # deadline already passed: stop at once
    assert bab.root_interrupted
    assert root.lower_bound <= sampled_min_margin(model, x, label, 0.3) + 1e-5
    for method in ("bab", "alpha-crown"):
        res = verify(model, x, label, 0.3, method=method, timeout=1e-3, attack_steps=0)
        assert res.status == "timeout", (method, res)
        assert res.counterexample is None
