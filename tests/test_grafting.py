"""Tests for the grafting pipeline: models, neuron selection, scores, training, fine-tuning."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from certlab.verification.attacks import clean_accuracy, robust_accuracy
from certlab.verification.grafted import GraftedReLU
from certlab.verification.report import (TABLE1_COLUMNS, CertificationReport, headline_key,
                                         headline_values, merge_slice_values, module_digest)
from certlab.verification.grafting import (PAPER_GAMMAS, GraftingScores,
                                           crown_margin_lower_bounds, evaluate_certification,
                                           graft, instability_counts, rank_normalize,
                                           select_neurons, significance_scores, stage_sizes)
from certlab.verification.lirpa import unstable_neurons, unstable_ratio
from certlab.verification.models import (activation_shapes, check_supported, convbig_mnist,
                                         count_neurons, grafted_layers, insert_grafted_relus,
                                         mlp, small_cnn)
from certlab.verification.training import (fast_adversarial_training, finetune_grafted,
                                           grafting_parameter_groups)

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------

def test_model_builders_and_neuron_counts():
    assert count_neurons(convbig_mnist(), (1, 28, 28)) == [32 * 784, 32 * 196, 64 * 196,
                                                           64 * 49, 512, 512]
    assert convbig_mnist()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    cnn = small_cnn(channels=(4, 8), hidden=16)
    assert activation_shapes(cnn, (1, 28, 28)) == [(4, 14, 14), (8, 7, 7), (16,)]
    assert cnn(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert count_neurons(mlp(784, (20, 10), flatten=True), (1, 28, 28)) == [20, 10]
    assert count_neurons(small_cnn(image_size=14, channels=(4, 8), hidden=16),
                         (1, 14, 14)) == [4 * 49, 8 * 9, 16]
    with pytest.raises(ValueError, match="image_size"):
        small_cnn(image_size=3, channels=(4, 8))


def test_unsupported_layer_is_named():
    with pytest.raises(TypeError, match=r"layer 1 \(Tanh"):
        check_supported(nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="nn.Sequential"):
        check_supported(nn.Linear(2, 2))
    x = torch.rand(4, 2)
    with pytest.raises(TypeError, match="Tanh"):
        graft(nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2)), 0.5, "random",
              x_train=x, y_train=torch.zeros(4, dtype=torch.long))


def test_insert_grafted_relus_forward_and_validation():
    torch.manual_seed(0)
    model = mlp(3, (4, 5), num_classes=2, flatten=False)
    masks = [torch.tensor([True, False, True, False]), None]
    g = insert_grafted_relus(model, masks, (3,), slope=0.25, intercept=-0.1)
    assert isinstance(model[1], nn.ReLU), "input model must not change"
    layers = grafted_layers(g)
    assert isinstance(g[1], GraftedReLU) and isinstance(g[3], nn.ReLU)
    assert layers[1] is None and torch.equal(layers[0].mask, masks[0])
    x = torch.randn(7, 3)
    z = model[0](x)
    expected_h = torch.where(masks[0], 0.25 * z - 0.1, F.relu(z))
    assert torch.allclose(g[1](z), expected_h)
    assert torch.allclose(g(x), model[4](model[3](model[2](expected_h))))
    with pytest.raises(ValueError, match="safe zone"):
        insert_grafted_relus(model, masks, (3,), slope=0.7)
    with pytest.raises(ValueError, match="safe zone"):
        insert_grafted_relus(model, masks, (3,), intercept=0.6)
    with pytest.raises(ValueError, match=r"masks\[0\] has shape"):
        insert_grafted_relus(model, [torch.zeros(5, dtype=torch.bool), None], (3,))
    with pytest.raises(ValueError, match="one entry per activation layer"):
        insert_grafted_relus(model, [None], (3,))


# ------------------------------------------------------------------------------------------
# scores and selection
# ------------------------------------------------------------------------------------------

def test_rank_normalize():
    assert np.allclose(rank_normalize([3.0, 1.0, 2.0]), [1.0, 0.0, 0.5])
    # ties share their average rank; the range is exactly [0, 1]
    r = rank_normalize([5, 5, 0, 7])
    assert np.allclose(r, [(1.5) / 3, 1.5 / 3, 0.0, 1.0])
    r = rank_normalize(np.random.default_rng(0).normal(size=100))
    assert r.min() == 0.0 and r.max() == 1.0
    assert np.allclose(np.sort(r), np.linspace(0, 1, 100))
    assert np.allclose(rank_normalize([2.0]), [0.5])
    with pytest.raises(ValueError, match="one-dimensional"):
        rank_normalize(np.zeros((2, 2)))


@pytest.mark.parametrize("n", [1, 7, 10, 101])
@pytest.mark.parametrize("fraction", [0.0, 0.13, 0.3, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("rule", ["gamma_decay", "-r_s", "r_u", "r_u-r_s", "random"])
def test_selection_picks_exactly_the_fraction(n, fraction, rule):
    rng = np.random.default_rng(n)
    r_u = rank_normalize(rng.integers(0, 5, size=n))
    r_s = rank_normalize(rng.normal(size=n))
    chosen = select_neurons(r_u, r_s, fraction, rule=rule, seed=1)
    assert chosen.dtype == bool and chosen.shape == (n,)
    assert chosen.sum() == round(fraction * n)


def test_gamma_schedule_stages_by_hand():
    """Four equal stages of one neuron each with gamma 2, 1.5, 1, 0 (worked by hand):
    gamma=2 picks 1 (2*0.9-0.5=1.3), gamma=1.5 picks 2 (0.7), gamma=1 picks 3 (0.3),
    gamma=0 picks 4 (-r_s = -0.1)."""
    r_u = np.array([1.0, 0.9, 0.6, 0.3, 0.0, 0.5, 0.2, 0.1])
    r_s = np.array([0.9, 0.5, 0.2, 0.0, 0.1, 0.6, 0.3, 0.8])
    chosen = select_neurons(r_u, r_s, 0.5)
    assert set(np.flatnonzero(chosen)) == {1, 2, 3, 4}
    # ... which differs from every single fixed criterion
    assert set(np.flatnonzero(select_neurons(r_u, r_s, 0.5, rule="2r_u-r_s"))) == {0, 1, 2, 3}
    assert set(np.flatnonzero(select_neurons(r_u, r_s, 0.5, rule="-r_s"))) == {2, 3, 4, 6}
    assert set(np.flatnonzero(select_neurons(r_u, r_s, 0.5, rule="r_u"))) == {0, 1, 2, 5}
    assert stage_sizes(10) == [3, 3, 2, 2] and stage_sizes(3) == [1, 1, 1, 0]
    assert PAPER_GAMMAS == (2.0, 1.5, 1.0, 0.0)


def test_single_stage_gamma_equals_fixed_criterion():
    rng = np.random.default_rng(3)
    r_u, r_s = rng.random(50), rng.random(50)
    for gamma, rule in ((0.0, "-r_s"), (1.0, "r_u-r_s"), (2.0, "2r_u-r_s")):
        assert np.array_equal(select_neurons(r_u, r_s, 0.3, gammas=(gamma,)),
                              select_neurons(r_u, r_s, 0.3, rule=rule))


def test_selection_is_global_across_layers():
    """All instability in layer 1 and none in layer 0: 'r_u' grafts only layer 1, with
    uneven per-layer ratios and the exact global count."""
    torch.manual_seed(0)
    model = mlp(4, (10, 30), num_classes=2, flatten=False)
    shapes = [(10,), (30,)]
    counts = np.concatenate([np.zeros(10), np.arange(30) + 1.0])
    sig = np.random.default_rng(0).random(40)
    scores = GraftingScores(counts, rank_normalize(counts), sig, rank_normalize(sig), shapes)
    x = torch.rand(5, 4)
    y = torch.zeros(5, dtype=torch.long)
    grafted, masks = graft(model, 0.5, "r_u", x_train=x, y_train=y, scores=scores)
    assert [m.shape for m in masks] == [(10,), (30,)]
    assert masks[0].sum() == 0 and masks[1].sum() == 20
    assert torch.equal(masks[1], torch.arange(30) >= 10)  # the 20 most unstable
    # the paper's criterion also picks globally: exactly 20 in all, per-layer shares differ
    _, masks = graft(model, 0.5, "grafting", x_train=x, y_train=y, scores=scores)
    assert sum(int(m.sum()) for m in masks) == 20
    assert masks[0].float().mean() != masks[1].float().mean()


def test_significance_scores_match_closed_form():
    """One hidden layer: A = ReLU(W1 x + b1), logits = W2 A + b2, so
    dL/dA = W2^T (softmax(logits) - onehot(y)) per sample."""
    torch.manual_seed(0)
    model = mlp(5, (7,), num_classes=3, flatten=False)
    x, y = torch.rand(11, 5), torch.randint(0, 3, (11,))
    a = F.relu(model[0](x))
    p = torch.softmax(model[2](a), 1)
    grad = (p - F.one_hot(y, 3).float()) @ model[2].weight
    got = significance_scores(model, x, y, kind="gradient", batch_size=4)
    assert torch.allclose(got[0], grad.abs().mean(0), atol=1e-6)
    got = significance_scores(model, x, y, kind="magnitude")
    assert torch.allclose(got[0], a.abs().mean(0), atol=1e-6)


def test_instability_counts_first_layer_exact():
    """Pre-activation bounds of the first Linear layer over a box are exact:
    l = W c - |W| r + b (c, r centre and radius of the clipped box)."""
    torch.manual_seed(1)
    model = mlp(6, (12, 8), num_classes=3, flatten=False)
    x = torch.rand(9, 6)
    eps = 0.1
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    c, r = (lo + hi) / 2, (hi - lo) / 2
    w, b = model[0].weight, model[0].bias
    l = c @ w.T - r @ w.abs().T + b
    u = c @ w.T + r @ w.abs().T + b
    expected = ((l < 0) & (u > 0)).sum(0)
    for method in ("ibp", "crown"):
        counts = instability_counts(model, x, eps, method=method, batch_size=4)
        assert torch.equal(counts[0], expected)
        assert counts[1].shape == (8,) and counts[1].max() <= 9


def test_grafting_reduces_unr_on_toy_net():
    torch.manual_seed(0)
    model = mlp(8, (16, 16), num_classes=3, flatten=False)
    x = torch.rand(20, 8)
    y = torch.randint(0, 3, (20,))
    eps = 0.05
    before = unstable_ratio(unstable_neurons(model, x, eps, "crown"))
    assert before > 0.1
    grafted, masks = graft(model, 0.5, "grafting", x_train=x, y_train=y, x_verify=x, eps=eps)
    after_masks = unstable_neurons(grafted, x, eps, "crown")
    for m, g in zip(after_masks, masks):
        assert not (m & g.unsqueeze(0)).any(), "grafted neurons must never count as unstable"
    after = unstable_ratio(after_masks)
    assert after < before
    full, _ = graft(model, 1.0, "random", x_train=x, y_train=y)
    assert unstable_ratio(unstable_neurons(full, x, eps, "crown")) == 0.0


def test_baseline_criteria_functions():
    torch.manual_seed(0)
    model = mlp(8, (16, 16), num_classes=3, flatten=False)
    x, y = torch.rand(12, 8), torch.randint(0, 3, (12,))
    for criterion in ("sap", "gap", "grafting_zero"):
        g, masks = graft(model, 0.5, criterion, x_train=x, y_train=y, x_verify=x, eps=0.05)
        for layer in grafted_layers(g):
            assert torch.all(layer.slope == 0) and torch.all(layer.intercept == 0)
            assert not layer.slope.requires_grad and not layer.intercept.requires_grad
        assert sum(int(m.sum()) for m in masks) == 16
    # SAP prunes the neurons with the smallest mean activation magnitude
    _, masks = graft(model, 0.25, "sap", x_train=x, y_train=y)
    mag = torch.cat([s.reshape(-1) for s in significance_scores(model, x, y,
                                                                   kind="magnitude")])
    flat = torch.cat([m.reshape(-1) for m in masks])
    assert mag[flat].max() <= mag[~flat].min()
    g, _ = graft(model, 0.5, "random", x_train=x, y_train=y, seed=3)
    for layer in grafted_layers(g):
        assert torch.all(layer.slope == 0.4) and torch.all(layer.intercept == 0)
        assert layer.slope.requires_grad


def test_graft_bad_input():
    model = mlp(4, (6,), num_classes=2, flatten=False)
    x, y = torch.rand(5, 4), torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match="fraction"):
        graft(model, 1.5, "random", x_train=x, y_train=y)
    with pytest.raises(ValueError, match="fraction"):
        graft(model, -0.1, "random", x_train=x, y_train=y)
    with pytest.raises(ValueError, match="criterion"):
        graft(model, 0.5, "hydra", x_train=x, y_train=y)
    with pytest.raises(ValueError, match="x_verify and eps"):
        graft(model, 0.5, "grafting", x_train=x, y_train=y)
    with pytest.raises(ValueError, match="eps"):
        graft(model, 0.5, "grafting", x_train=x, y_train=y, x_verify=x, eps=-0.1)
    with pytest.raises(ValueError, match="slope"):
        graft(model, 0.5, "random", x_train=x, y_train=y, slope=0.9)
    g, _ = graft(model, 0.5, "random", x_train=x, y_train=y)
    with pytest.raises(ValueError, match="already contains GraftedReLU"):
        graft(g, 0.5, "random", x_train=x, y_train=y)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------

def _blobs(n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    centres = torch.tensor([[0.25, 0.25], [0.75, 0.75]])
    x = (centres[y] + 0.08 * torch.randn(n, 2, generator=gen)).clamp(0, 1)
    return x, y


def test_fast_adversarial_training_reduces_loss_and_learns():
    torch.manual_seed(0)
    x, y = _blobs(256, 0)
    model = mlp(2, (16,), num_classes=2, flatten=False)
    ra_before = robust_accuracy(model, (x, y), 0.05, steps=10)
    hist = fast_adversarial_training(model, (x, y), 0.05, epochs=6, lr=0.1, batch_size=32,
                                     seed=0, progress=False)
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert all(g >= 0 for g in hist.grad_align)
    # lr at the last of 8 iterations per epoch: x0.1 from iteration 24/48 and 36/48 on
    assert hist.lr == [[0.1]] * 3 + [[pytest.approx(0.01)]] + [[pytest.approx(0.001)]] * 2
    assert not model.training
    x_test, y_test = _blobs(200, 1)
    assert clean_accuracy(model, (x_test, y_test)) > 0.95
    assert robust_accuracy(model, (x_test, y_test), 0.05, steps=10) > max(ra_before, 0.9)


def test_training_is_seeded():
    x, y = _blobs(64, 2)
    out = []
    for _ in range(2):
        torch.manual_seed(5)
        model = mlp(2, (8,), num_classes=2, flatten=False)
        fast_adversarial_training(model, (x, y), 0.05, epochs=2, batch_size=16, seed=3,
                                  progress=False)
        out.append(model(x))
    assert torch.equal(out[0], out[1])


def test_training_bad_input():
    x, y = _blobs(16, 0)
    model = mlp(2, (4,), num_classes=2, flatten=False)
    with pytest.raises(ValueError, match="eps"):
        fast_adversarial_training(model, (x, y), -0.1, epochs=1, progress=False)
    with pytest.raises(ValueError, match="milestones"):
        fast_adversarial_training(model, (x, y), 0.1, epochs=1, milestones=(1.5,),
                                  progress=False)
    with pytest.raises(ValueError, match=r"\[x_min, x_max\]"):
        fast_adversarial_training(model, (x + 5, y), 0.1, epochs=1, progress=False)
    with pytest.raises(TypeError, match="train_data"):
        fast_adversarial_training(model, x, 0.1, epochs=1, progress=False)
    with pytest.raises(ValueError, match="eps_warmup"):
        fast_adversarial_training(model, (x, y), 0.1, epochs=1, eps_warmup=2.0,
                                  progress=False)
    with pytest.raises(ValueError, match="lr_graft"):
        finetune_grafted(model, (x, y), 0.1, epochs=1, lr_graft=-1.0, progress=False)


def _grafted_toy():
    torch.manual_seed(0)
    x, y = _blobs(32, 4)
    model = mlp(2, (8, 8), num_classes=2, flatten=False)
    masks = [torch.arange(8) % 2 == 0, torch.arange(8) < 3]
    return insert_grafted_relus(model, masks, (2,)), masks, x, y


def test_parameter_groups_lrs_and_weight_decay():
    g, _, _, _ = _grafted_toy()
    groups = grafting_parameter_groups(g, lr_graft=0.01, lr_weights=1e-3, weight_decay=5e-4)
    by_name = {grp["name"]: grp for grp in groups}
    graft_params = {id(p) for layer in grafted_layers(g) for p in (layer.slope,
                                                                  layer.intercept)}
    assert {id(p) for p in by_name["graft"]["params"]} == graft_params
    assert by_name["graft"]["lr"] == 0.01 and by_name["graft"]["weight_decay"] == 0.0
    weights = {id(p) for p in g.parameters()} - graft_params
    assert {id(p) for p in by_name["weights"]["params"]} == weights
    assert by_name["weights"]["lr"] == 1e-3 and by_name["weights"]["weight_decay"] == 5e-4
    only = grafting_parameter_groups(g, train_weights=False)
    assert [grp["name"] for grp in only] == ["graft"]


def test_finetune_one_step_uses_the_right_lrs():
    """eps = 0 and one full batch: one SGD step on plain cross entropy, so the update is
    -lr * grad (momentum buffer starts at the gradient) with weight decay on weights only."""
    g, masks, x, y = _grafted_toy()
    ref = copy.deepcopy(g)
    loss = F.cross_entropy(ref(x), y)
    names = [n for n, _ in ref.named_parameters()]
    grads = dict(zip(names, torch.autograd.grad(loss, list(ref.parameters()))))
    before = {n: p.detach().clone() for n, p in ref.named_parameters()}
    finetune_grafted(g, (x, y), 0.0, epochs=1, batch_size=len(x), lr_graft=0.01,
                     lr_weights=1e-3, weight_decay=5e-4, progress=False)
    for n, p in g.named_parameters():
        if n.endswith(("slope", "intercept")):
            expected = before[n] - 0.01 * grads[n]
        else:
            expected = before[n] - 1e-3 * (grads[n] + 5e-4 * before[n])
        assert torch.allclose(p.detach(), expected, atol=1e-7), n
    # slopes/intercepts of non-grafted neurons receive no gradient and stay put
    for layer, m in zip(grafted_layers(g), masks):
        assert torch.all(layer.slope[~m] == 0.4) and torch.all(layer.intercept[~m] == 0.0)


def test_finetune_without_weights_changes_only_slopes_and_intercepts():
    g, masks, x, y = _grafted_toy()
    before = {n: p.detach().clone() for n, p in g.named_parameters()}
    hist = finetune_grafted(g, (x, y), 0.05, epochs=2, batch_size=8, train_weights=False,
                            progress=False)
    assert len(hist.loss) == 2 and hist.lr[-1][0] < 0.01
    for n, p in g.named_parameters():
        changed = not torch.equal(p.detach(), before[n])
        assert changed == n.endswith(("slope", "intercept")), n
    # grafting zero: a, b frozen at 0, weights still trained
    torch.manual_seed(0)
    model = mlp(2, (8, 8), num_classes=2, flatten=False)
    zero = insert_grafted_relus(model, masks, (2,), slope=0.0, intercept=0.0, trainable=False)
    finetune_grafted(zero, (x, y), 0.05, epochs=1, batch_size=8, progress=False)
    for layer in grafted_layers(zero):
        assert torch.all(layer.slope == 0) and torch.all(layer.intercept == 0)
    assert not torch.equal(zero[0].weight, model[0].weight)


# ------------------------------------------------------------------------------------------
# evaluation (Table 1 columns)
# ------------------------------------------------------------------------------------------

def _loose_toy():
    """A random 6-32-32-3 ReLU net, labels = its predictions: at eps = 0.08 some images are
    certified by CROWN, some broken by PGD and some need the complete verifier."""
    torch.manual_seed(0)
    model = mlp(6, (32, 32), num_classes=3, flatten=False)
    x = torch.rand(40, 6)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def test_crown_margin_bounds_are_sound_against_sampling_and_milp():
    from certlab.verification.verify import verify

    model, x, y = _loose_toy()
    eps = 0.08
    lb = crown_margin_lower_bounds(model, x[:10], y[:10], eps)
    assert lb.shape == (10, 2)
    gen = torch.Generator().manual_seed(0)
    for i in range(10):
        pts = (x[i] + eps * (2 * torch.rand(5000, 6, generator=gen) - 1)).clamp(0, 1)
        with torch.no_grad():
            logits = model(pts)
        others = [j for j in range(3) if j != int(y[i])]
        sampled = (logits[:, y[i], None] - logits[:, others]).min(0).values
        assert (lb[i] <= sampled + 1e-5).all()
    certified = torch.nonzero(lb.min(1).values > 0).flatten()
    assert len(certified) >= 2
    for i in certified[:3]:
        assert verify(model, x[i:i + 1], int(y[i]), eps, method="milp",
                      timeout=20).status == "verified"
    with pytest.raises(ValueError, match="labels"):
        crown_margin_lower_bounds(model, x[:3], torch.tensor([0, 1, 5]), eps)


def test_evaluate_certification_statuses_agree_with_milp():
    from certlab.verification.verify import verify

    model, x, y = _loose_toy()
    eps = 0.08
    rep = evaluate_certification(model, x, y, eps, n_verify=12, timeout=20,
                                 attack_steps=20, verify_method="milp")
    assert rep.sa == clean_accuracy(model, (x, y)) == 1.0
    assert 0 <= rep.ra <= rep.sa and 0 < rep.unr < 1
    assert len(rep.statuses) == len(rep.stages) == len(rep.times) == 12
    assert {"crown", "attack", "verify"} <= set(rep.stages)
    for i, (status, stage) in enumerate(zip(rep.statuses, rep.stages)):
        exact = verify(model, x[i:i + 1], int(y[i]), eps, method="milp", timeout=20).status
        assert exact in ("verified", "falsified")
        assert status == exact, (i, stage)
    assert rep.va == rep.statuses.count("verified") / 12
    assert rep.mean_time == pytest.approx(np.mean(
        [t for t, s in zip(rep.times, rep.stages) if s in ("crown", "verify")]))
    lower_only = evaluate_certification(model, x, y, eps, n_verify=12, timeout=1,
                                        attack_steps=20, verify_method=None)
    assert lower_only.va < rep.va and "unknown" in lower_only.statuses
    with pytest.raises(ValueError, match="n_verify"):
        evaluate_certification(model, x[:5], y[:5], eps, n_verify=6, timeout=1)
    with pytest.raises(ValueError, match="timeout"):
        evaluate_certification(model, x[:5], y[:5], eps, n_verify=2, timeout=0)
    with pytest.raises(ValueError, match="verify_method"):
        evaluate_certification(model, x[:5], y[:5], eps, n_verify=2, timeout=1,
                               verify_method="exhaustive")


def test_evaluate_certification_with_a_deterministic_budget():
    model, x, y = _loose_toy()
    eps = 0.08
    full = evaluate_certification(model, x, y, eps, n_verify=12, timeout=None,
                                  max_domains=300, attack_steps=20, verify_method="bab")
    none = evaluate_certification(model, x, y, eps, n_verify=12, timeout=None,
                                  max_domains=0, attack_steps=20, verify_method="bab")
    assert full.statuses[:] == evaluate_certification(
        model, x, y, eps, n_verify=12, timeout=None, max_domains=300, attack_steps=20,
        verify_method="bab").statuses  # machine-independent: reproducible
    for s_full, s_none, stage in zip(full.statuses, none.statuses, none.stages):
        if stage == "verify" and s_none == "verified":
            # with no domain to bound only the root's alpha-CROWN can verify
            assert s_full == "verified"
        assert s_none in ("verified", "falsified", "timeout", "unknown")
    assert none.va <= full.va
    with pytest.raises(ValueError, match="max_domains"):
        evaluate_certification(model, x[:5], y[:5], eps, n_verify=2, timeout=None)
    with pytest.raises(ValueError, match="max_domains"):
        evaluate_certification(model, x[:5], y[:5], eps, n_verify=2, timeout=None,
                               max_domains=-1)


def test_split_evaluation_merges_to_the_whole():
    """Verifying images 0-4 and 5-11 in two pieces and merging their records gives the
    statuses, VA, UNR, SA and RA of one evaluation of images 0-11 (deterministic budget)."""
    model, x, y = _loose_toy()
    eps = 0.08
    kw = dict(timeout=None, max_domains=300, attack_steps=20, verify_method="bab")
    whole = evaluate_certification(model, x, y, eps, n_verify=12, **kw)
    first = evaluate_certification(model, x, y, eps, n_verify=5, **kw)
    second = evaluate_certification(model, x, y, eps, n_verify=7, verify_start=5, **kw)
    digest = module_digest(model)
    merged = CertificationReport.merge([second.to_record(digest), first.to_record(digest)])
    assert merged.statuses == whole.statuses and merged.stages == whole.stages
    assert merged.va == whole.va and (merged.sa, merged.ra) == (whole.sa, whole.ra)
    assert merged.unr == pytest.approx(whole.unr, rel=1e-12)
    assert merged.verify_start == 0 and second.verify_start == 5
    assert json.loads(json.dumps(first.to_record(digest))) == first.to_record(digest)
    # pieces that do not fit together are refused
    with pytest.raises(ValueError, match="not consecutive"):
        CertificationReport.merge([first.to_record(digest), first.to_record(digest)])
    other = {**second.to_record(digest), "model_digest": "0" * 16}
    with pytest.raises(ValueError, match="model_digest"):
        CertificationReport.merge([first.to_record(digest), other])
    with pytest.raises(ValueError, match="missing"):
        CertificationReport.merge([{"unr": 0.1}])
    with pytest.raises(ValueError, match="verify_start"):
        evaluate_certification(model, x, y, eps, n_verify=7, verify_start=len(x) - 6, **kw)


def test_module_digest_tells_models_apart():
    model, _, _ = _loose_toy()
    twin = copy.deepcopy(model)
    assert module_digest(twin) == module_digest(model)
    with torch.no_grad():
        next(twin.parameters()).view(-1)[0] += 1e-7
    assert module_digest(twin) != module_digest(model)


def test_headline_values_and_slice_values():
    """Table 1's stored names, finite values only, and the merge of stored slice values."""
    model, x, y = _loose_toy()
    kw = dict(timeout=None, max_domains=300, attack_steps=20, verify_method="bab")
    first = evaluate_certification(model, x, y, 0.08, n_verify=5, **kw)
    second = evaluate_certification(model, x, y, 0.08, n_verify=7, verify_start=5, **kw)
    whole = evaluate_certification(model, x, y, 0.08, n_verify=12, **kw)
    assert headline_key("grafting 50%", "va") == "grafting_50_va"
    with pytest.raises(ValueError, match="Table 1 column"):
        headline_key("baseline", "accuracy")
    values = headline_values({"baseline": whole})
    assert values["baseline_va"] == 100 * whole.va and values["baseline_sa"] == 100 * whole.sa
    assert set(values) <= {f"baseline_{c}" for c in TABLE1_COLUMNS}
    nan_time = CertificationReport(0.1, 0.0, 0.5, 0.0, float("nan"), ["falsified"], ["attack"],
                                   [0.1], [])
    assert "m_time" not in headline_values({"m": nan_time})
    with pytest.raises(TypeError, match="CertificationReport"):
        headline_values({"m": {"va": 1.0}})
    digest = module_digest(model)
    pieces = [{"per_image": {"baseline": first.to_record(digest)}},
              {"per_image": {"baseline": second.to_record(digest)}}]
    merged = merge_slice_values(pieces)["headline"]
    assert merged["baseline_va"] == values["baseline_va"]
    assert merged["baseline_unr"] == pytest.approx(values["baseline_unr"], rel=1e-12)
    assert merge_slice_values([pieces[0], {"headline": {}}]) is None
    with pytest.raises(ValueError, match="different models"):
        merge_slice_values([pieces[0], {"per_image": {"other": second.to_record(digest)}}])
