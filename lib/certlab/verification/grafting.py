"""Choosing neurons to graft (Chen et al. 2022, Sec. 4) and the pruning baselines (Table 1).

Scores are global over all activation layers: every neuron of every activation layer gets
one entry, in forward order, flattened per layer (the layout of :func:`flatten_layers`).

* Instability score ``r_u`` (step 1): per neuron, the number of verification images on which
  it is unstable (``l < 0 < u``) under the verifier's intermediate bounds at ``eps``
  (:func:`certlab.verification.lirpa.unstable_neurons`), rank-normalised to [0, 1].
* Significance score ``r_s`` (step 2): mean ``|dL/dA|`` of the cross-entropy loss with respect
  to the activation output ``A(z)`` on training images (GAP, Ye et al. 2020; the authors'
  ``calculate_activation_mask_act_gradient``), or mean ``|A(z)|`` (activation magnitude, SAP,
  Dhillon et al. 2018), rank-normalised to [0, 1].
* Selection (step 3): ``argmax gamma * r_u - r_s`` with gamma decaying ``2 -> 1.5 -> 1 -> 0``
  over four equal stages (to graft 20%, take 5% at each gamma), without replacement.

Criteria (``graft(..., criterion=...)``; how neurons are chosen -> what replaces them):

- "grafting": gamma-decay ``gamma r_u - r_s`` (the paper) -> ``a z + b``, trainable;
- "grafting_zero": gamma-decay ``gamma r_u - r_s`` -> 0 (``a = b = 0``, fixed; Table 5);
- "random": uniformly at random (seeded) -> ``a z + b``, trainable;
- "sap": smallest mean activation magnitude (``-r_s``, SAP) -> 0 (pruned);
- "gap": smallest mean activation gradient (``-r_s``, GAP) -> 0 (pruned);
- "-r_s", "r_u-r_s", "2r_u-r_s": that fixed score (Table 2) -> ``a z + b``, trainable;
- "r_u": ``r_u`` (gamma -> infinity; ties broken by ``-r_s``) -> ``a z + b``, trainable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from certlab.utils import check_nonnegative_int, check_probability
from certlab.verification.attacks import clean_accuracy, pgd_attack
from certlab.verification.bab import margin_spec
from certlab.verification.lirpa import (bounded_input, cached_bounded_module,
                                       check_box_arguments, check_model, check_model_tensors,
                                       quiet, unstable_neurons, unstable_ratio)
from certlab.verification.models import (activation_indices, activation_shapes,
                                         check_supported, insert_grafted_relus)
from certlab.verification.numerics import (MARGIN_TOLERANCE, float64_default, float64_twin,
                                           real_box, roundoff_tolerance)
from certlab.verification.report import (CertificationReport, mean_verification_time,
                                         module_digest)
from certlab.verification.verify import verify

__all__ = [
    "CRITERIA",
    "PAPER_GAMMAS",
    "GraftingScores",
    "rank_normalize",
    "flatten_layers",
    "unflatten_layers",
    "stage_sizes",
    "select_neurons",
    "instability_counts",
    "significance_scores",
    "compute_scores",
    "graft",
    "crown_margin_lower_bounds",
    "crown_certification_threshold",
    "CertificationReport",
    "evaluate_certification",
    "module_digest",
]

#: gamma of each of the four equal selection stages (Chen et al. 2022, Sec. 4, step 3).
PAPER_GAMMAS: tuple[float, ...] = (2.0, 1.5, 1.0, 0.0)

#: criterion -> (how neurons are chosen, significance kind, grafted function)
CRITERIA: dict[str, tuple[str, str, str]] = {
    "grafting": ("gamma_decay", "gradient", "linear"),
    "grafting_zero": ("gamma_decay", "gradient", "zero"),
    "random": ("random", "gradient", "linear"),
    "sap": ("-r_s", "magnitude", "zero"),
    "gap": ("-r_s", "gradient", "zero"),
    "-r_s": ("-r_s", "gradient", "linear"),
    "r_u-r_s": ("r_u-r_s", "gradient", "linear"),
    "2r_u-r_s": ("2r_u-r_s", "gradient", "linear"),
    "r_u": ("r_u", "gradient", "linear"),
}


def rank_normalize(scores) -> np.ndarray:
    """Ranks of ``scores`` (1-d), scaled to [0, 1]: smallest -> 0, largest -> 1.

    Ties get their average rank (``scipy.stats.rankdata(method="average")``), so equal scores
    get equal normalised ranks. A single neuron gets 0.5. Returns float64 ``(n,)``.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("scores must be finite")
    n = arr.size
    if n == 0:
        return arr.copy()
    if n == 1:
        return np.array([0.5])
    return (rankdata(arr, method="average") - 1.0) / (n - 1.0)


def flatten_layers(per_layer: Sequence[torch.Tensor | np.ndarray]) -> np.ndarray:
    """Concatenate per-layer arrays (any shapes) into one global 1-d array, layer by layer."""
    return np.concatenate([np.asarray(torch.as_tensor(a).detach().cpu()).reshape(-1)
                           for a in per_layer]) if len(per_layer) else np.zeros(0)


def unflatten_layers(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[torch.Tensor]:
    """Inverse of :func:`flatten_layers`: split a global 1-d array into per-layer tensors."""
    sizes = [int(np.prod(s)) for s in shapes]
    flat = np.asarray(flat)
    if flat.shape != (sum(sizes),):
        raise ValueError(f"flat has shape {flat.shape}, the layers hold {sum(sizes)} neurons")
    out, start = [], 0
    for s, k in zip(shapes, sizes):
        out.append(torch.as_tensor(flat[start:start + k].copy()).reshape(s))
        start += k
    return out


def stage_sizes(n_select: int, n_stages: int = len(PAPER_GAMMAS)) -> list[int]:
    """Split ``n_select`` neurons into ``n_stages`` equal stages (the first
    ``n_select % n_stages`` stages take one more)."""
    if n_select < 0 or n_stages < 1:
        raise ValueError(f"need n_select >= 0 and n_stages >= 1, got {n_select}, {n_stages}")
    base, extra = divmod(int(n_select), int(n_stages))
    return [base + (1 if i < extra else 0) for i in range(n_stages)]


def _top_k(keys: list[np.ndarray], available: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` available neurons that are largest in lexicographic order of
    ``keys`` (primary first); remaining ties go to the smaller index."""
    idx = np.flatnonzero(available)
    # np.lexsort sorts ascending by the LAST key first; we want descending by keys[0], ...
    order = np.lexsort(tuple([idx] + [-k_[idx] for k_ in reversed(keys)]))
    return idx[order[:k]]


def select_neurons(r_u, r_s, fraction: float, *, rule: str = "gamma_decay",
                   gammas: Sequence[float] = PAPER_GAMMAS,
                   seed: int | None = None) -> np.ndarray:
    """Choose ``round(fraction * n)`` of ``n`` neurons (Chen et al. 2022, Sec. 4, step 3).

    Args:
        r_u, r_s: normalised instability and significance scores, 1-d of length n (global
            across layers).
        fraction: share of neurons to choose, in [0, 1].
        rule: "gamma_decay" (``argmax gamma r_u - r_s`` in ``len(gammas)`` equal stages,
            without replacement), "-r_s", "r_u-r_s", "2r_u-r_s", "r_u" (gamma -> inf: ``r_u``
            with ties broken by ``-r_s``), or "random" (seeded).
        gammas: the stage gammas for "gamma_decay" (paper: 2, 1.5, 1, 0).

    Returns a boolean array ``(n,)`` with exactly ``round(fraction * n)`` True entries.
    Remaining ties are broken towards the smaller index (deterministic).
    """
    fraction = float(check_probability(fraction, "fraction"))
    r_u = np.asarray(r_u, dtype=np.float64)
    r_s = np.asarray(r_s, dtype=np.float64)
    if r_u.ndim != 1 or r_u.shape != r_s.shape:
        raise ValueError(f"r_u and r_s must be 1-d of the same length, got {r_u.shape} and "
                         f"{r_s.shape}")
    n = r_u.size
    k = int(round(fraction * n))
    chosen = np.zeros(n, dtype=bool)
    if rule == "random":
        rng = np.random.default_rng(seed)
        chosen[rng.choice(n, size=k, replace=False)] = True
        return chosen
    fixed = {"-r_s": 0.0, "r_u-r_s": 1.0, "2r_u-r_s": 2.0}
    if rule in fixed:
        chosen[_top_k([fixed[rule] * r_u - r_s], ~chosen, k)] = True
    elif rule == "r_u":
        chosen[_top_k([r_u, -r_s], ~chosen, k)] = True
    elif rule == "gamma_decay":
        gammas = [float(g) for g in gammas]
        if not gammas or any(not math.isfinite(g) for g in gammas):
            raise ValueError(f"gammas must be a non-empty sequence of finite numbers, "
                             f"got {gammas}")
        for gamma, k_stage in zip(gammas, stage_sizes(k, len(gammas))):
            chosen[_top_k([gamma * r_u - r_s], ~chosen, k_stage)] = True
    else:
        raise ValueError(f"rule must be 'gamma_decay', '-r_s', 'r_u-r_s', '2r_u-r_s', 'r_u' or "
                         f"'random', got {rule!r}")
    return chosen


def _as_batch_tensor(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                        f"{type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch (N, ...), got {tuple(x.shape)}")
    return x


def instability_counts(model: nn.Module, x_verify: torch.Tensor, eps: float, *,
                       method: str = "crown", x_min: float = 0.0, x_max: float = 1.0,
                       batch_size: int = 64) -> list[torch.Tensor]:
    """Per activation layer, how many of the images ``x_verify`` ``(N, *input_shape)`` make
    each neuron unstable under the ``method`` intermediate bounds at ``eps`` (int64 tensors of
    the layer's per-sample shape; grafted neurons count 0)."""
    check_supported(model)
    x_verify = _as_batch_tensor(x_verify, "x_verify")
    counts: list[torch.Tensor] | None = None
    for start in range(0, x_verify.shape[0], batch_size):
        masks = unstable_neurons(model, x_verify[start:start + batch_size], eps, method,
                                 x_min=x_min, x_max=x_max)
        c = [m.sum(0).long().cpu() for m in masks]
        counts = c if counts is None else [a + b for a, b in zip(counts, c)]
    assert counts is not None
    return counts


def significance_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                        kind: str = "gradient", batch_size: int = 256) -> list[torch.Tensor]:
    """Per activation layer, per-neuron significance on training images ``x`` ``(N, ...)``:
    ``kind="gradient"``: mean over images of ``|dL/dA|``, the gradient of the summed
    cross-entropy with respect to the activation output (GAP); ``kind="magnitude"``: mean of
    ``|A(z)|`` (SAP). Float tensors of each layer's per-sample shape."""
    if kind not in ("gradient", "magnitude"):
        raise ValueError(f"kind must be 'gradient' or 'magnitude', got {kind!r}")
    idx = activation_indices(model)
    x = _as_batch_tensor(x, "x")
    y = torch.as_tensor(y).long()
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    sums: list[torch.Tensor] | None = None
    was_training = model.training
    model.eval()
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        acts: list[torch.Tensor] = []
        h = xb.detach().requires_grad_(kind == "gradient")
        with torch.set_grad_enabled(kind == "gradient"):
            for i, layer in enumerate(model):
                h = layer(h)
                if i in idx:
                    acts.append(h)
        if kind == "gradient":
            loss = F.cross_entropy(h, yb.to(h.device), reduction="sum")
            grads = torch.autograd.grad(loss, acts)
            vals = [g.abs().sum(0).detach().cpu() for g in grads]
        else:
            vals = [a.abs().sum(0).detach().cpu() for a in acts]
        sums = vals if sums is None else [s + v for s, v in zip(sums, vals)]
    model.train(was_training)
    assert sums is not None
    return [s / x.shape[0] for s in sums]


@dataclass
class GraftingScores:
    """Global (flattened over layers) raw and normalised scores.

    ``counts``: unstable-image counts ``(n,)``; ``r_u``: rank-normalised counts;
    ``significance``: raw significance ``(n,)``; ``r_s``: rank-normalised; ``shapes``: the
    per-sample shape of each activation layer (to unflatten)."""

    counts: np.ndarray
    r_u: np.ndarray
    significance: np.ndarray
    r_s: np.ndarray
    shapes: list[tuple[int, ...]]


def compute_scores(model: nn.Module, *, x_verify: torch.Tensor | None, eps: float | None,
                   x_train: torch.Tensor, y_train: torch.Tensor, kind: str = "gradient",
                   bound_method: str = "crown", x_min: float = 0.0,
                   x_max: float = 1.0) -> GraftingScores:
    """``r_u`` (from ``x_verify`` at ``eps``; zeros when ``x_verify`` is None) and ``r_s``
    (from ``(x_train, y_train)``, ``kind`` "gradient" or "magnitude"), both global."""
    shapes = activation_shapes(model, tuple(x_train.shape[1:]))
    if x_verify is not None:
        if eps is None:
            raise ValueError("eps is required to compute instability scores")
        counts = flatten_layers(instability_counts(model, x_verify, eps, method=bound_method,
                                                   x_min=x_min, x_max=x_max))
    else:
        counts = np.zeros(sum(int(np.prod(s)) for s in shapes))
    sig = flatten_layers(significance_scores(model, x_train, y_train, kind=kind))
    return GraftingScores(counts, rank_normalize(counts), sig, rank_normalize(sig), shapes)


def graft(model: nn.Module, fraction: float, criterion: str = "grafting", *,
          x_train: torch.Tensor | None = None, y_train: torch.Tensor | None = None,
          x_verify: torch.Tensor | None = None, eps: float | None = None,
          bound_method: str = "crown", slope: float = 0.4, intercept: float = 0.0,
          gammas: Sequence[float] = PAPER_GAMMAS, scores: GraftingScores | None = None,
          x_min: float = 0.0, x_max: float = 1.0,
          seed: int = 0) -> tuple[nn.Sequential, list[torch.Tensor]]:
    """Graft ``round(fraction * n)`` of the ``n`` ReLU neurons of ``model`` (global over
    layers) according to ``criterion`` (see the module docstring / :data:`CRITERIA`).

    Args:
        model: plain ReLU ``nn.Sequential`` (Linear, Conv2d, Flatten, ReLU); not modified.
        fraction: share of all neurons to graft, in [0, 1].
        x_train, y_train: training images ``(N, *input_shape)`` and labels for ``r_s`` (the
            paper uses 1000); always required (they also fix the input shape).
        x_verify, eps: verification images and radius for ``r_u`` (needed by the criteria
            that use ``r_u``); bounds from ``bound_method`` ("ibp", "crown", "alpha-crown").
        slope, intercept: initial ``a``, ``b`` of the grafted linear functions (paper 0.4, 0;
            safe zone ``a in [0, 0.5]``, ``b in [-0.5, 0.5]``). Ignored by the zero criteria.
        scores: precomputed :class:`GraftingScores` (skips the score computation; their
            significance kind must suit the criterion).
        seed: for ``criterion="random"``.

    Returns ``(grafted_model, masks)``: a new model in which the chosen neurons are
    ``GraftedReLU`` linear functions, and one boolean mask per activation layer (shape of one
    sample's activation, True = grafted).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
    fraction = float(check_probability(fraction, "fraction"))
    check_supported(model)
    if any(not isinstance(model[i], nn.ReLU) for i in activation_indices(model)):
        raise ValueError("model already contains GraftedReLU layers: graft a plain ReLU model")
    rule, kind, function = CRITERIA[criterion]
    needs_ru = rule in ("gamma_decay", "r_u-r_s", "2r_u-r_s", "r_u")
    if x_train is None or y_train is None:
        raise ValueError("x_train and y_train are required (significance scores and the "
                         "input shape)")
    if scores is None:
        if needs_ru and (x_verify is None or eps is None):
            raise ValueError(f"criterion {criterion!r} uses instability scores r_u: pass "
                             f"x_verify and eps")
        scores = compute_scores(model, x_verify=x_verify if needs_ru else None, eps=eps,
                                x_train=x_train, y_train=y_train, kind=kind,
                                bound_method=bound_method, x_min=x_min, x_max=x_max)
    shapes = activation_shapes(model, tuple(x_train.shape[1:]))
    if [tuple(s) for s in scores.shapes] != [tuple(s) for s in shapes]:
        raise ValueError("scores were computed for a model with different activation shapes")
    chosen = select_neurons(scores.r_u, scores.r_s, fraction, rule=rule, gammas=gammas,
                            seed=seed)
    masks = [m.bool() for m in unflatten_layers(chosen, shapes)]
    if function == "zero":
        grafted = insert_grafted_relus(model, masks, tuple(x_train.shape[1:]), slope=0.0,
                                       intercept=0.0, trainable=False)
    else:
        grafted = insert_grafted_relus(model, masks, tuple(x_train.shape[1:]), slope=slope,
                                       intercept=intercept, trainable=True)
    return grafted, masks



# ------------------------------------------------------------------------------------------
# Evaluation: the columns of Table 1 (UNR, VA, SA, RA, time)
# ------------------------------------------------------------------------------------------

def crown_margin_lower_bounds(model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                              eps: float, *, x_min: float = 0.0,
                              x_max: float = 1.0) -> torch.Tensor:
    """Sound CROWN lower bounds on every margin ``f_y(x') - f_j(x')`` over
    ``B_inf(x, eps) ∩ [x_min, x_max]``, for a batch in one auto_LiRPA call.

    ``x`` is ``(B, *input_shape)``, ``labels`` ``(B,)``; returns float64 ``(B, K - 1)`` (the
    specification rows of :func:`certlab.verification.bab.margin_spec`). Computed in float64
    on the model's float64 twin over the input set rounded outwards (as :func:`certlab.
    verification.verify.verify` does); a bound certifies only above
    :func:`crown_certification_threshold`. Used as the cheap incomplete first stage of
    :func:`evaluate_certification` (alpha,beta-CROWN also bounds every image before
    branching).
    """
    check_model(model)
    x = _as_batch_tensor(x, "x")
    check_box_arguments(x, eps, x_min, x_max)
    check_model_tensors(model, x)
    labels = torch.as_tensor(labels).long()
    lower, upper = real_box(x, eps, x_min, x_max)
    with torch.no_grad():
        n_classes = model(x[:1]).shape[1]
    if labels.shape != (x.shape[0],) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must have shape ({x.shape[0]},) with values in "
                         f"[0, {n_classes}), got {labels.tolist()}")
    twin = float64_twin(model)
    x64 = x.detach().double()
    spec = torch.cat([margin_spec(int(y), n_classes) for y in labels]).to(x64)
    with quiet(), torch.no_grad(), float64_default():
        net = cached_bounded_module(twin, x64)
        lb, _ = net.compute_bounds(x=(bounded_input(x64, lower, upper),), C=spec,
                                   method="CROWN", bound_upper=False)
    return lb.detach()


def crown_certification_threshold(model: nn.Module, x: torch.Tensor, eps: float, *,
                                  x_min: float = 0.0, x_max: float = 1.0) -> float:
    """The value a bound of :func:`crown_margin_lower_bounds` must exceed to certify, for
    every image of the batch ``x``: ``max(1e-5, round-off bound)`` (see
    :mod:`certlab.verification.numerics`; the largest over the batch)."""
    lower, upper = real_box(_as_batch_tensor(x, "x"), eps, x_min, x_max)
    return max(MARGIN_TOLERANCE, roundoff_tolerance(float64_twin(model), lower, upper))


def evaluate_certification(model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor,
                           eps: float, *, n_verify: int, timeout: float | None,
                           attack_steps: int = 100, attack_restarts: int = 1,
                           bound_method: str = "crown", verify_method: str | None = "bab",
                           x_min: float = 0.0, x_max: float = 1.0, seed: int = 0,
                           batch_size: int = 512, max_domains: int | None = None,
                           verify_start: int = 0, progress: bool = False
                           ) -> CertificationReport:
    """UNR, VA, SA, RA and verification time of ``model`` (Chen et al. 2022, Table 1).

    SA and RA (PGD-``attack_steps`` with ``attack_restarts`` restarts) use all of
    ``(x_test, y_test)`` (attacked in batches of ``batch_size``, seeds ``seed + batch
    index``); UNR, VA and time the ``n_verify`` images from index ``verify_start`` on (by
    default the first ``n_verify``; a long run can be split into slices and its pieces'
    reports merged with :meth:`CertificationReport.merge`). Each verification
    image goes through, in order: misclassified -> "falsified"; PGD counterexample ->
    "falsified" (these two are excluded from the time, as in the paper); batched CROWN margin
    bounds all positive -> "verified" (a sound certificate; time = its share of the batched
    call); otherwise :func:`certlab.verification.verify.verify` with ``verify_method`` and
    ``timeout`` (its status: "verified", "falsified", "timeout" or "unknown"), without a
    second PGD attack (``attack_steps=0``: the batch attack above already ran). With
    ``verify_method=None`` these images are "unknown" (VA is then CROWN-verified accuracy, a
    lower bound on the complete verifier's VA).

    ``timeout`` (seconds per image, or None) and ``max_domains`` (branch-and-bound domains
    per image, or None) are passed to ``verify``; with a wall-clock ``timeout`` alone VA
    depends on the machine's speed, with ``timeout=None`` and ``max_domains`` it does not
    (up to float round-off). ``timeout=None`` needs ``max_domains`` for "bab".
    """
    import time as _time

    from tqdm.auto import tqdm

    x_test = _as_batch_tensor(x_test, "x_test")
    y_test = torch.as_tensor(y_test).long()
    n_verify = check_nonnegative_int(n_verify, "n_verify")
    verify_start = check_nonnegative_int(verify_start, "verify_start")
    if not 1 <= n_verify <= x_test.shape[0]:
        raise ValueError(f"n_verify must lie in [1, {x_test.shape[0]}], got {n_verify}")
    if verify_start + n_verify > x_test.shape[0]:
        raise ValueError(f"verify_start + n_verify must not exceed the {x_test.shape[0]} test "
                         f"images, got {verify_start} + {n_verify}")
    if verify_method not in (None, "bab", "milp", "alpha-crown"):
        raise ValueError(f"verify_method must be 'bab', 'milp', 'alpha-crown' or None, got "
                         f"{verify_method!r}")
    if timeout is not None and (isinstance(timeout, bool) or
                                not isinstance(timeout, (int, float)) or
                                not math.isfinite(timeout) or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got "
                         f"{timeout!r}")
    if max_domains is not None:
        check_nonnegative_int(max_domains, "max_domains")
    if timeout is None and max_domains is None and verify_method == "bab":
        raise ValueError("timeout=None needs max_domains (a deterministic budget) for "
                         "verify_method='bab'")
    if check_nonnegative_int(batch_size, "batch_size") < 1:
        raise ValueError("batch_size must be at least 1")
    model.eval()
    sa = clean_accuracy(model, (x_test, y_test))
    clean_parts, robust_parts = [], []
    for b, start in enumerate(range(0, x_test.shape[0], batch_size)):
        xb, yb = x_test[start:start + batch_size], y_test[start:start + batch_size]
        x_adv = pgd_attack(model, xb, yb, eps, steps=attack_steps, restarts=attack_restarts,
                           x_min=x_min, x_max=x_max, seed=seed + b)
        with torch.no_grad():
            ok = model(xb).argmax(1) == yb
            clean_parts.append(ok.cpu())
            robust_parts.append((ok & (model(x_adv).argmax(1) == yb)).cpu())
    clean_ok, robust_ok = torch.cat(clean_parts), torch.cat(robust_parts)
    ra = float(robust_ok.float().mean())

    xv = x_test[verify_start:verify_start + n_verify]
    yv = y_test[verify_start:verify_start + n_verify]
    clean_ok = clean_ok[verify_start:verify_start + n_verify]
    robust_ok = robust_ok[verify_start:verify_start + n_verify]
    masks = unstable_neurons(model, xv, eps, bound_method, x_min=x_min, x_max=x_max)
    unr = unstable_ratio(masks)
    counts = [m.sum(0).long().cpu() for m in masks]

    statuses: list[str] = []
    stages: list[str] = []
    times: list[float] = []
    candidates = [i for i in range(n_verify) if bool(robust_ok[i])]
    crown_ok = torch.zeros(n_verify, dtype=torch.bool)
    crown_time = 0.0
    if candidates:
        start = _time.perf_counter()
        lb = crown_margin_lower_bounds(model, xv[candidates], yv[candidates], eps,
                                       x_min=x_min, x_max=x_max)
        threshold = crown_certification_threshold(model, xv[candidates], eps, x_min=x_min,
                                                  x_max=x_max)
        crown_time = (_time.perf_counter() - start) / len(candidates)
        crown_ok[candidates] = (lb.min(dim=1).values > threshold).cpu()
    for i in tqdm(range(n_verify), desc="verify", disable=not progress, leave=False):
        if not bool(clean_ok[i]):
            statuses.append("falsified"), stages.append("misclassified"), times.append(0.0)
        elif not bool(robust_ok[i]):
            statuses.append("falsified"), stages.append("attack"), times.append(0.0)
        elif bool(crown_ok[i]):
            statuses.append("verified"), stages.append("crown"), times.append(crown_time)
        elif verify_method is None:
            statuses.append("unknown"), stages.append("crown"), times.append(crown_time)
        else:
            res = verify(model, xv[i:i + 1], int(yv[i]), eps, x_min=x_min, x_max=x_max,
                         timeout=timeout, method=verify_method, seed=seed, attack_steps=0,
                         max_domains=max_domains)
            statuses.append(res.status), stages.append("verify")
            times.append(crown_time + res.time)
    return CertificationReport(
        unr=unr, va=statuses.count("verified") / n_verify, sa=sa, ra=ra,
        mean_time=mean_verification_time(times, stages), statuses=statuses,
        stages=stages, times=times, unstable_counts=counts, verify_start=verify_start)
