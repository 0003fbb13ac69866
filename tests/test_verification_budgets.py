"""Deterministic work limits of ``verify`` / ``BranchAndBound`` (``max_domains``): hitting the
limit never certifies, the limit is respected exactly, and with ``timeout=None`` the outcome
does not depend on timing (two runs agree bitwise)."""

from __future__ import annotations

import pytest
import torch

from torch import nn

from certlab.verification.bab import BranchAndBound
from certlab.verification.lirpa import input_box
from certlab.verification.verify import verify

torch.set_num_threads(1)

EPS = 0.2


@pytest.fixture(scope="module")
def hard_case():
    """A property that holds but that alpha-CROWN alone cannot prove (BaB must branch)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                          nn.Linear(24, 3)).eval()
    x = torch.rand(1, 6, generator=torch.Generator().manual_seed(0))
    label = int(model(x).argmax())
    root = verify(model, x, label, EPS, method="alpha-crown", attack_steps=0)
    with torch.no_grad():  # push alpha-CROWN's bound to -0.02: the property needs branching
        model[-1].bias[label] -= root.lower_bound + 0.02
    full = verify(model, x, label, EPS, timeout=None, max_domains=10_000, attack_steps=0,
                  batch_size=8)
    assert full.status == "verified" and full.n_branches > 4, full
    assert verify(model, x, label, EPS, method="milp").status == "verified"  # independent
    return model, x, label, full


@pytest.mark.parametrize("limit", [0, 1, 2, 4])
def test_hitting_max_domains_never_verifies(hard_case, limit):
    model, x, label, full = hard_case
    assert limit < full.n_branches
    res = verify(model, x, label, EPS, timeout=None, max_domains=limit, attack_steps=0,
                 batch_size=8)
    assert res.status == "timeout", res
    assert res.detail == "domain limit reached"
    assert res.n_branches <= limit
    assert res.lower_bound <= 0 + 1e-5  # the bound at the stop does not prove the property


def test_max_domains_is_enough_when_it_covers_the_full_run(hard_case):
    model, x, label, full = hard_case
    res = verify(model, x, label, EPS, timeout=None, max_domains=full.n_branches,
                 attack_steps=0, batch_size=8)
    assert res.status == "verified" and res.n_branches == full.n_branches


def test_runs_without_a_wall_clock_limit_are_reproducible(hard_case):
    model, x, label, full = hard_case
    runs = [verify(model, x, label, EPS, timeout=None, max_domains=6, attack_steps=0,
                   batch_size=4) for _ in range(2)]
    assert runs[0].status == runs[1].status == "timeout"
    assert runs[0].n_branches == runs[1].n_branches == 6
    assert runs[0].lower_bound == runs[1].lower_bound
    assert [h["splits"] for h in runs[0].history] == [h["splits"] for h in runs[1].history]
    # a huge timeout together with max_domains gives the same result as no timeout
    big = verify(model, x, label, EPS, timeout=1e6, max_domains=6, attack_steps=0,
                 batch_size=4)
    assert (big.status, big.n_branches, big.lower_bound) == \
        (runs[0].status, runs[0].n_branches, runs[0].lower_bound)


def test_branch_and_bound_run_respects_max_domains(hard_case):
    model, x, label, _ = hard_case
    lower, upper = input_box(x, EPS)
    bab = BranchAndBound(model, x, label, lower, upper, batch_size=6)
    outcome = bab.run(None, max_domains=5)
    assert outcome.status == "timeout" and outcome.n_branches <= 5
    assert outcome.detail == "domain limit reached"
