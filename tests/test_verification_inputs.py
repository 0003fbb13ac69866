"""Issue 10, verification items: no crashes from inside auto_LiRPA, clear errors for bad input
(meta-device tensors, non-finite grafting parameters, bad budgets of ``verify``)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from certlab.verification.bab import BranchAndBound
from certlab.verification.grafted import GraftedReLU
from certlab.verification.lirpa import bounds, input_box
from certlab.verification.verify import verify

torch.set_num_threads(1)


def grafted_net(seed: int, n_in: int = 4, hidden: int = 8) -> nn.Sequential:
    """Linear-GraftedReLU-Linear-ReLU-Linear, the shape on which alpha-CROWN used to raise
    a bare AssertionError (auto_LiRPA activation.py:598) for 2 of 10 random nets."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        GraftedReLU(torch.rand(hidden, generator=gen) < 0.5,
                    torch.rand(hidden, generator=gen) * 0.5,
                    torch.rand(hidden, generator=gen) - 0.5),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3)).eval()


@pytest.mark.parametrize("seed", range(10))
def test_alpha_crown_on_grafted_nets_works_and_is_sound(seed):
    # seed 3 crashed before the fix
    model = grafted_net(seed)
    x = torch.rand(1, 4, generator=torch.Generator().manual_seed(seed))
    res = bounds(model, x, 0.15, "alpha-crown")
    crown = bounds(model, x, 0.15, "crown")
    lower, upper = input_box(x, 0.15)
    gen = torch.Generator().manual_seed(seed + 1)
    samples = lower + (upper - lower) * torch.rand(2000, 4, generator=gen)
    with torch.no_grad():
        logits = model(samples)
    assert bool((logits >= res.logits.lower - 1e-5).all())
    assert bool((logits <= res.logits.upper + 1e-5).all())
    # alpha-CROWN optimises CROWN's slopes: never much looser on the lower bounds
    assert bool((res.logits.lower >= crown.logits.lower - 1e-4).all())


def test_meta_device_tensors_are_refused():
    with torch.device("meta"):
        meta_model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.tensor([[0.5, 0.5]])
    for call in (lambda: verify(meta_model, x, 0, 0.1),
                 lambda: bounds(meta_model, x, 0.1)):
        with pytest.raises(ValueError, match="meta"):
            call()
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x_meta = torch.empty(1, 2, device="meta")
    with pytest.raises((ValueError, TypeError), match="meta|finite|x must"):
        verify(model, x_meta, 0, 0.1)


@pytest.mark.parametrize("name,value", [("slope", math.nan), ("slope", math.inf),
                                        ("intercept", math.inf), ("intercept", -math.inf),
                                        ("intercept", math.nan)])
def test_grafted_relu_refuses_non_finite_scalars(name, value):
    with pytest.raises(ValueError, match=f"{name} must be finite"):
        GraftedReLU(torch.tensor([True, False]), **{name: value})


def test_verify_refuses_non_finite_parameters():
    # with an infinite intercept set after construction, verify once said "verified"
    model = nn.Sequential(nn.Linear(2, 2), GraftedReLU(torch.tensor([True, False])),
                          nn.Linear(2, 2)).eval()
    with torch.no_grad():
        model[1].intercept[0] = math.inf
    x = torch.tensor([[0.5, 0.5]])
    for method in ("bab", "milp", "alpha-crown"):
        with pytest.raises(ValueError, match="non-finite"):
            verify(model, x, 0, 0.1, method=method)
    with pytest.raises(ValueError, match="non-finite"):
        bounds(model, x, 0.1)


@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": -3}, "batch_size"),
    ({"batch_size": 1}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"attack_steps": -1}, "attack_steps"), ({"attack_restarts": 0}, "attack_restarts"),
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
    ({"max_domains": -1}, "max_domains"), ({"max_domains": 2.0}, "max_domains"),
    ({"timeout": None}, "max_domains"), ({"timeout": -5.0}, "timeout"),
    ({"timeout": math.nan}, "timeout"), ({"timeout": "10"}, "timeout"),
])
def test_verify_refuses_bad_budgets(kwargs, match):
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x = torch.tensor([[0.5, 0.5]])
    with pytest.raises((ValueError, TypeError), match=match):
        verify(model, x, 0, 0.1, **kwargs)


def test_branch_and_bound_refuses_bad_budgets():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x = torch.tensor([[0.5, 0.5]])
    lower, upper = input_box(x, 0.1)
    with pytest.raises(ValueError, match="batch_size"):
        BranchAndBound(model, x, 0, lower, upper, batch_size=1)
    bab = BranchAndBound(model, x, 0, lower, upper)
    with pytest.raises(ValueError, match="max_domains"):
        bab.run(None, max_domains=-2)


def test_float64_models_are_bounded_in_float64():
    # auto_LiRPA's alpha-CROWN allocated float32 buffers for float64 models and crashed
    model = grafted_net(3).double()
    x = torch.rand(1, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    before = torch.get_default_dtype()
    for method in ("ibp", "crown", "alpha-crown"):
        res = bounds(model, x, 0.15, method)
        assert res.logits.lower.dtype == torch.float64
    assert torch.get_default_dtype() == before  # the default dtype is restored
    assert verify(model, x, int(model(x).argmax()), 0.05, timeout=None, max_domains=50,
                  attack_steps=0).status in ("verified", "timeout", "falsified")
