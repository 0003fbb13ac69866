"""Branch and bound options of issue 13: several splits per parent while the batch is not
full, margins proved at the root dropped from the children, children's optimisation stopped
once proved, filtered smart branching and CROWN's (not re-optimised) intermediate bounds at the root. Every option keeps BaB's verdict equal to the exact MILP's
on borderline networks (the property holds, or fails, by a fraction of alpha-CROWN's gap),
never reports a bound above the exact optimum, and bad options are rejected by name."""

from __future__ import annotations

import math

import pytest
import torch
from test_verification_bab import CASES, borderline_case, exact_optimum

from certlab.verification.bab import BranchAndBound
from certlab.verification.lirpa import input_box
from certlab.verification.verify import BAB_OPTIONS, verify

torch.set_num_threads(1)

OPTION_SETS = {
    "defaults": {},
    "the loop before issue 13": {"max_split_depth": 1, "prune_verified_margins": False,
                                 "iterations": 20, "early_stop": False},
    "fsb": {"branching": "fsb", "fsb_candidates": 4},
    "CROWN intermediates at the root": {"optimize_intermediate": False},
}


@pytest.fixture(scope="module")
def cases():
    out = []
    for seed, eps, grafted, fraction, _ in CASES:
        model, x, label, _ = borderline_case(seed, grafted, eps, fraction)
        milp = verify(model, x, label, eps, method="milp", timeout=20.0)
        out.append((model, x, label, eps, milp, exact_optimum(model, x, label, eps)))
    return out


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_every_option_set_agrees_with_the_milp(cases, name):
    branched = 0
    for model, x, label, eps, milp, optimum in cases:
        res = verify(model, x, label, eps, attack_steps=0, batch_size=16, timeout=None,
                     max_domains=4000, bab_options=OPTION_SETS[name])
        assert res.status in ("verified", "falsified"), (name, res)
        assert res.status == milp.status, (name, res, milp)
        if res.status == "verified":
            assert res.lower_bound <= optimum + 1e-6
        branched += res.n_branches > 0
    assert branched >= len(cases) // 2  # the options are exercised, not skipped


def _bab(model, x, label, eps, **options) -> BranchAndBound:
    lower, upper = input_box(x, eps)
    return BranchAndBound(model, x, label, lower, upper, batch_size=16, **options)


def test_several_splits_per_parent_reach_the_verdict_in_fewer_batches(cases):
    fewer = 0
    for model, x, label, eps, milp, _ in cases:
        runs = {depth: _bab(model, x, label, eps, max_split_depth=depth).run(
            None, max_domains=4000) for depth in (1, 6)}
        if milp.status == "verified" and runs[1].n_iterations > 1:
            assert runs[6].status == runs[1].status == "verified"
            assert runs[6].n_iterations <= runs[1].n_iterations
            fewer += runs[6].n_iterations < runs[1].n_iterations
    assert fewer >= 1


def test_split_depth_fills_the_batch():
    model, x, label, _ = borderline_case(0, False, 0.3, 0.5)
    eps = 0.3
    bab = _bab(model, x, label, eps)
    assert [bab.split_depth(n, 64) for n in (1, 2, 3, 16, 32, 40)] == [6, 5, 4, 2, 1, 1]
    assert _bab(model, x, label, eps, max_split_depth=2).split_depth(1, 64) == 2
    assert bab.split_depth(1, 3) == 1  # a budget smaller than 4 children: one split


def test_choose_neurons_lists_distinct_unstable_neurons_best_first():
    model, x, label, _ = borderline_case(1, False, 0.3, 0.5)
    bab = _bab(model, x, label, 0.3)
    root = bab.root(None)
    picks = bab.choose_neurons(root, root.lA, 5)
    assert len(picks) == len(set(picks)) == 5
    masks = bab.unstable_candidates(root)
    assert all(bool(masks[k][idx]) for k, idx in picks)
    assert picks[0] == bab.choose_neuron(root, root.lA)
    score, gap, offsets = bab.neuron_scores(root, root.lA)
    keys = [float(score[offsets[k] + idx]) for k, idx in picks]
    positive = [v for v in keys if v > 0]
    assert positive == sorted(positive, reverse=True) and keys[:len(positive)] == positive
    everything = bab.choose_neurons(root, root.lA, 10_000)
    assert len(everything) == sum(int(m.sum()) for m in masks)


def test_margins_proved_at_the_root_are_not_bounded_again():
    # a 3-class net whose root proves one margin but not the other
    for seed in range(20):
        model, x, label, _ = borderline_case(seed, False, 0.3, 0.3)
        bab = _bab(model, x, label, 0.3)
        root = bab.root(None)
        proved = root.spec_lower > bab.tol
        if 0 < int(proved.sum()) < proved.numel():
            break
    else:
        pytest.skip("no case with some margins proved at the root")
    outcome = bab.run(None, max_domains=4000)
    assert outcome.status == "verified"
    assert bab.branch_rows.tolist() == torch.nonzero(~proved).flatten().tolist()
    # the same run without pruning proves the same, with every margin bounded
    full = _bab(model, x, label, 0.3, prune_verified_margins=False)
    assert full.run(None, max_domains=4000).status == "verified"
    assert full.branch_rows.tolist() == list(range(proved.numel()))


def test_bab_options_are_validated_by_name():
    model, x, label, _ = borderline_case(0, False, 0.3, 0.5)
    assert {"branching", "max_split_depth", "prune_verified_margins",
            "optimize_intermediate", "iterations"} <= set(BAB_OPTIONS)
    with pytest.raises(ValueError, match=r"unknown bab_options \['depth'\]"):
        verify(model, x, label, 0.3, bab_options={"depth": 2})
    with pytest.raises(TypeError, match="bab_options must be a mapping"):
        verify(model, x, label, 0.3, bab_options=[("branching", "fsb")])
    with pytest.raises(ValueError, match="branching must be one of"):
        verify(model, x, label, 0.3, bab_options={"branching": "random"})
    with pytest.raises(ValueError, match="max_split_depth must be an integer >= 1"):
        verify(model, x, label, 0.3, bab_options={"max_split_depth": 0})
    with pytest.raises(TypeError, match="prune_verified_margins must be True or False"):
        verify(model, x, label, 0.3, bab_options={"prune_verified_margins": 1})
    with pytest.raises(TypeError, match="early_stop must be True or False"):
        verify(model, x, label, 0.3, bab_options={"early_stop": "yes"})
    assert math.isfinite(verify(model, x, label, 0.3, timeout=5.0).lower_bound)
