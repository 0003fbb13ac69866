"""Fast adversarial training with GradAlign, and fine-tuning of grafted networks.

Chen et al. (2022), Sec. 4, Eq. (2): ``L = L_FAT + lambda * R_GA`` with ``lambda = 0.2``.

* ``L_FAT`` (Wong et al. 2020): cross entropy at ``x + delta``, where ``delta`` is one
  gradient-sign step of length ``alpha = 1.25 eps`` from a uniform random start in the
  eps-ball, projected back onto ``[x - eps, x + eps] ∩ [x_min, x_max]``.
* ``R_GA`` (Andriushchenko & Flammarion 2020): ``1 - mean_i cos(g_i(x), g_i(x + eta))``, the
  cosine between input gradients of the loss at the clean point and at a uniformly random
  point ``eta`` of the ball; the second gradient keeps its graph (double backprop).

Schedules (paper settings, Sec. 5): SGD, momentum 0.9, weight decay 5e-4, lr 0.1 decayed
x0.1 at epochs 100 and 150 of 200 (``milestones=(0.5, 0.75)`` as fractions of training);
grafting fine-tune: lr 0.01 for the grafted slopes and intercepts (no weight decay), 1e-3 for
the weights, cosine annealing over 100 epochs, same adversarial loss. Learning rates are
updated per iteration so that short CPU-scale runs follow the same shape of schedule.

Written here (no library in the stack provides FAT/GradAlign); the loops are short and
follow the authors' public ``gradalign.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from certlab.utils import check_nonnegative_int, resolve_device, seed_everything
from certlab.verification.grafted import GraftedReLU

__all__ = [
    "TrainingHistory",
    "fast_adversarial_training",
    "finetune_grafted",
    "grafting_parameter_groups",
    "gradalign_regularizer",
    "fgsm_random_start",
]


@dataclass
class TrainingHistory:
    """Per-epoch mean training loss (total, cross entropy, GradAlign term) and learning rates
    at the end of each epoch (one entry per parameter group)."""

    loss: list[float] = field(default_factory=list)
    ce: list[float] = field(default_factory=list)
    grad_align: list[float] = field(default_factory=list)
    lr: list[list[float]] = field(default_factory=list)


def _to_tensors(data) -> tuple[torch.Tensor, torch.Tensor]:
    if (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)):
        x, y = data
    else:
        raise TypeError("train_data must be a tuple (inputs, labels) of tensors, got "
                        f"{type(data).__name__}")
    if x.dim() < 2 or y.shape != (x.shape[0],):
        raise ValueError(f"inputs must be (N, ...) and labels (N,), got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("train_data is empty")
    return x, y.long()


def _check_common(eps: float, epochs: int, batch_size: int, x: torch.Tensor,
                  x_min: float, x_max: float) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
        raise TypeError(f"eps must be a finite number, got {eps!r}")
    if eps < 0:
        raise ValueError(f"eps must be non-negative, got {eps}")
    check_nonnegative_int(epochs, "epochs")
    if check_nonnegative_int(batch_size, "batch_size") < 1:
        raise ValueError("batch_size must be at least 1")
    if not x_min < x_max:
        raise ValueError(f"x_min ({x_min}) must be smaller than x_max ({x_max})")
    if x.min().item() < x_min or x.max().item() > x_max:
        raise ValueError(f"train inputs must lie in [x_min, x_max] = [{x_min}, {x_max}]")


def fgsm_random_start(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                      alpha: float, x_min: float, x_max: float,
                      generator: torch.Generator) -> torch.Tensor:
    """FGSM with a uniform random start (Wong et al. 2020): returns ``x + delta`` (B, ...)
    inside ``[x - eps, x + eps] ∩ [x_min, x_max]``."""
    lower = torch.clamp(x - eps, min=x_min)
    upper = torch.clamp(x + eps, max=x_max)
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_adv = (x + (2 * noise - 1) * eps).clamp(lower, upper).requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y)
    grad, = torch.autograd.grad(loss, x_adv)
    return torch.minimum(torch.maximum(x_adv.detach() + alpha * grad.sign(), lower), upper)


def gradalign_regularizer(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
                          x_min: float, x_max: float,
                          generator: torch.Generator) -> torch.Tensor:
    """GradAlign (Andriushchenko & Flammarion 2020): ``1 - mean_i cos(g_i(x), g_i(x+eta))``
    with ``g_i`` the input gradient of the cross entropy of sample ``i`` and ``eta`` uniform in
    the eps-ball (clipped to the box). Differentiable in the model parameters (scalar)."""
    x0 = x.detach().clone().requires_grad_(True)
    g1, = torch.autograd.grad(F.cross_entropy(model(x0), y), x0)
    g1 = g1.detach()
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x1 = (x + (2 * noise - 1) * eps).clamp(x_min, x_max).detach().requires_grad_(True)
    g2, = torch.autograd.grad(F.cross_entropy(model(x1), y), x1, create_graph=True)
    cos = F.cosine_similarity(g1.flatten(1), g2.flatten(1), dim=1, eps=1e-12)
    return 1.0 - cos.mean()


def _adversarial_epochs(model, optimizer, lr_at, x, y, eps, *, epochs, batch_size, alpha,
                        grad_align, x_min, x_max, seed, device, progress, desc,
                        eps_warmup: float = 0.0):
    dev = resolve_device(device)
    rng = seed_everything(seed)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    model.to(dev)
    x, y = x.to(dev), y.to(dev)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    total = max(epochs * steps_per_epoch, 1)
    history = TrainingHistory()
    it = 0
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        model.train()
        perm = torch.as_tensor(rng.permutation(n), device=dev)
        sums = np.zeros(3)
        for start in range(0, n, batch_size):
            for group, lr in zip(optimizer.param_groups, lr_at(it / total)):
                group["lr"] = lr
            idx = perm[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            eps_t = eps * min(1.0, it / (eps_warmup * total)) if eps_warmup > 0 else eps
            x_in = (fgsm_random_start(model, xb, yb, eps_t, alpha * eps_t, x_min, x_max, gen)
                    if eps_t > 0 else xb)
            ce = F.cross_entropy(model(x_in), yb)
            reg = (gradalign_regularizer(model, xb, yb, eps_t, x_min, x_max, gen)
                   if grad_align > 0 and eps_t > 0 else torch.zeros((), device=dev))
            loss = ce + grad_align * reg
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += np.array([loss.item(), ce.item(), reg.item()]) * len(idx)
            it += 1
        history.loss.append(float(sums[0] / n))
        history.ce.append(float(sums[1] / n))
        history.grad_align.append(float(sums[2] / n))
        history.lr.append([g["lr"] for g in optimizer.param_groups])
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
    model.eval()
    return history


def fast_adversarial_training(model: nn.Module, train_data, eps: float, *, epochs: int = 200,
                              lr: float = 0.1, momentum: float = 0.9,
                              weight_decay: float = 5e-4,
                              milestones: Sequence[float] = (0.5, 0.75),
                              lr_decay: float = 0.1, batch_size: int = 128,
                              alpha: float = 1.25, grad_align: float = 0.2,
                              eps_warmup: float = 0.0, x_min: float = 0.0,
                              x_max: float = 1.0, seed: int = 0,
                              device: str | torch.device = "cpu",
                              progress: bool = True) -> TrainingHistory:
    """Train ``model`` in place with FAT + GradAlign (Chen et al. 2022, Eq. 2).

    Args:
        train_data: ``(x, y)`` tensors, ``x`` of shape ``(N, *shape)`` in ``[x_min, x_max]``.
        eps: training radius (L-infinity); ``eps = 0`` is standard training.
        epochs: passes over the data; the learning rate is ``lr`` times ``lr_decay`` per
            milestone passed, ``milestones`` given as fractions of the whole run
            (paper: 200 epochs, x0.1 at epochs 100 and 150 = ``(0.5, 0.75)``).
        alpha: FGSM step in units of ``eps`` (paper 1.25).
        grad_align: GradAlign weight lambda (paper 0.2; 0 disables it).
        eps_warmup: fraction of training over which the radius ramps linearly from 0 to
            ``eps`` (paper: 0, no ramp). Not in the paper: at CPU scale (a few hundred SGD
            steps) FAT at the full MNIST radius from a random initialisation stalls at chance
            accuracy, a short ramp avoids this.
    Returns the per-epoch :class:`TrainingHistory`; ``model`` ends in eval mode.
    """
    x, y = _to_tensors(train_data)
    _check_common(eps, epochs, batch_size, x, x_min, x_max)
    if not isinstance(eps_warmup, (int, float)) or not 0.0 <= eps_warmup <= 1.0:
        raise ValueError(f"eps_warmup must be a fraction in [0, 1], got {eps_warmup!r}")
    ms = sorted(float(m) for m in milestones)
    if any(not 0.0 <= m <= 1.0 for m in ms):
        raise ValueError(f"milestones must be fractions of training in [0, 1], got {milestones}")
    for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay),
                        ("alpha", alpha), ("grad_align", grad_align), ("lr_decay", lr_decay)):
        if not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                weight_decay=weight_decay)

    def lr_at(t: float) -> list[float]:
        return [lr * lr_decay ** sum(t >= m for m in ms)]

    return _adversarial_epochs(model, optimizer, lr_at, x, y, float(eps), epochs=epochs,
                               batch_size=batch_size, alpha=alpha, grad_align=grad_align,
                               x_min=x_min, x_max=x_max, seed=seed, device=device,
                               progress=progress, desc="FAT+GradAlign",
                               eps_warmup=float(eps_warmup))


def grafting_parameter_groups(model: nn.Module, *, lr_graft: float = 0.01,
                              lr_weights: float = 1e-3, weight_decay: float = 5e-4,
                              train_weights: bool = True) -> list[dict]:
    """SGD parameter groups for grafting fine-tuning: ``{"params": [slopes, intercepts],
    "lr": lr_graft, "weight_decay": 0, "name": "graft"}`` and, when ``train_weights``, the
    other trainable parameters with ``lr_weights`` and ``weight_decay`` (name "weights").
    Parameters with ``requires_grad=False`` (grafting zero) are left out."""
    graft_ids: set[int] = set()
    graft_params: list[nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, GraftedReLU):
            for name in ("slope", "intercept"):
                p = getattr(module, name)
                if isinstance(p, nn.Parameter):
                    graft_ids.add(id(p))
                    if p.requires_grad:
                        graft_params.append(p)
    weights = [p for p in model.parameters() if id(p) not in graft_ids and p.requires_grad]
    groups = []
    if graft_params:
        groups.append({"params": graft_params, "lr": lr_graft, "weight_decay": 0.0,
                       "name": "graft"})
    if train_weights and weights:
        groups.append({"params": weights, "lr": lr_weights, "weight_decay": weight_decay,
                       "name": "weights"})
    return groups


def finetune_grafted(model: nn.Module, train_data, eps: float, *, epochs: int = 100,
                     lr_graft: float = 0.01, lr_weights: float = 1e-3, momentum: float = 0.9,
                     weight_decay: float = 5e-4, train_weights: bool = True,
                     batch_size: int = 128, alpha: float = 1.25, grad_align: float = 0.2,
                     x_min: float = 0.0, x_max: float = 1.0, seed: int = 0,
                     device: str | torch.device = "cpu",
                     progress: bool = True) -> TrainingHistory:
    """Fine-tune a grafted model in place (Chen et al. 2022, Sec. 5 "Training details").

    SGD on two parameter groups (:func:`grafting_parameter_groups`): the grafted slopes and
    intercepts at ``lr_graft`` without weight decay, the other weights at ``lr_weights``
    with ``weight_decay`` (frozen when ``train_weights=False``: the "w.o. tuning weight" row
    of Table 3); both follow a cosine annealing schedule to 0 over the run. The loss is the
    same FAT + GradAlign loss as :func:`fast_adversarial_training`. Slopes and intercepts are
    not clamped during training (the paper's safe zone is for the initialisation only).
    Returns the per-epoch :class:`TrainingHistory`.
    """
    x, y = _to_tensors(train_data)
    _check_common(eps, epochs, batch_size, x, x_min, x_max)
    for name, value in (("lr_graft", lr_graft), ("lr_weights", lr_weights),
                        ("momentum", momentum), ("weight_decay", weight_decay),
                        ("alpha", alpha), ("grad_align", grad_align)):
        if not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    groups = grafting_parameter_groups(model, lr_graft=lr_graft, lr_weights=lr_weights,
                                       weight_decay=weight_decay, train_weights=train_weights)
    if not groups:
        raise ValueError("model has no trainable parameters to fine-tune")
    base = [g["lr"] for g in groups]
    optimizer = torch.optim.SGD(groups, lr=base[0], momentum=momentum)

    def lr_at(t: float) -> list[float]:
        return [b * 0.5 * (1.0 + math.cos(math.pi * t)) for b in base]

    return _adversarial_epochs(model, optimizer, lr_at, x, y, float(eps), epochs=epochs,
                               batch_size=batch_size, alpha=alpha, grad_align=grad_align,
                               x_min=x_min, x_max=x_max, seed=seed, device=device,
                               progress=progress, desc="grafting fine-tune")
