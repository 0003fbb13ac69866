"""Complete verification of L-infinity robustness: ``verify``.

``verify(model, x, label, eps, method=...)`` decides whether every input of
``X = {x' : ||x' - x||_inf <= eps} ∩ [x_min, x_max]`` is classified as ``label``, i.e. whether
the margins ``f_label(x') - f_j(x')`` (``j != label``) are positive on ``X``.

Methods:

- ``"bab"``: PGD attack first (a counterexample ends the search), alpha-CROWN at the root,
  then branch and bound with beta-CROWN split constraints
  (:class:`certlab.verification.bab.BranchAndBound`), as in alpha,beta-CROWN
  {cite}`wang2021betacrown` which the paper {cite}`chen2022grafting` uses.
- ``"milp"``: the exact mixed-integer program of Tjeng et al. (2019)
  (:func:`certlab.verification.exact_milp.exact_min_margins`), solved with SCIP through
  ortools; for small networks only.
- ``"alpha-crown"``: PGD attack plus alpha-CROWN alone (incomplete; for comparisons).

Statuses: "verified" (certified for the network's real-arithmetic function with the stored
weights taken exactly: the certified lower bound on the minimum margin exceeds the round-off
tolerance, see below), "falsified" (``counterexample`` is an input of ``X`` whose margin is
<= 0, checked with the model in its own dtype and in float64), "timeout" (the time limit or
the ``max_domains`` budget was reached first, also when the time limit cut the "alpha-crown"
optimisation short) and "unknown" (from the incomplete "alpha-crown" method, or when the
bound or the exact solvers end inside the numerical tolerance band). A time-out never gives
"verified".

Round-off (:mod:`certlab.verification.numerics`): all bounds are computed in float64 on a
float64 twin of the model, over the input set rounded outwards, and a margin is certified
only above a tolerance that grows with the magnitudes of the network's values over the box
(at least ``1e-5``); bounds within it give "unknown"/"timeout", never "verified".

Machine dependence: with a wall-clock ``timeout`` alone, how far the branch and bound gets
depends on the machine's speed (and its load), so verified counts near the limit differ
between a fast and a slow machine. With ``timeout=None`` and ``max_domains=N`` the work is
fixed (at most N branch-and-bound domains, 20 alpha steps at the root, 10 alpha/beta steps
per batch, a seeded attack), so verdicts are machine-independent up to float round-off.

Cost per call: the auto_LiRPA ``BoundedModule`` is built once per model and reused while the
model's layers and weights are unchanged (:func:`certlab.verification.lirpa.
cached_bounded_module`); "bab" skips alpha-CROWN when CROWN already proves the property and
stops the root's optimisation when it does, and the time limit is checked at every
optimisation step (see :mod:`certlab.verification.bab`).
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from certlab.utils import check_nonnegative_int
from certlab.verification.attacks import pgd_attack
from certlab.verification.bab import BranchAndBound
from certlab.verification.exact_milp import ExactResult, exact_min_margins, linearize_model
from certlab.verification.lirpa import (as_batch, check_box_arguments, check_model,
                                       check_model_tensors, compute_lirpa_bounds)
from certlab.verification.numerics import (MARGIN_TOLERANCE, checked_counterexample,
                                           float64_default, float64_twin, real_box)

__all__ = ["VerificationResult", "ExactResult", "verify", "exact_min_margins",
           "linearize_model", "VERIFY_METHODS", "STATUSES"]

VERIFY_METHODS = ("bab", "milp", "alpha-crown")
STATUSES = ("verified", "falsified", "timeout", "unknown")


@dataclass
class VerificationResult:
    """Outcome of :func:`verify`.

    Attributes:
        status: "verified", "falsified", "timeout" or "unknown" (see the module docstring).
        lower_bound: certified lower bound on ``min_{x' in X} min_j f_label(x') - f_j(x')``
            (for "falsified" by BaB: the bound at the moment the counterexample was found;
            ``-inf`` when no bound was computed, e.g. a PGD hit before any bound).
        counterexample: ``(1, *input_shape)`` input of X with margin <= 0, or None.
        time: wall-clock seconds.
        n_branches: number of branch-and-bound domains bounded (0 for other methods).
        method: the method used.
        root_lower_bound: alpha-CROWN's bound at the root (BaB and alpha-crown), else None.
        detail: a short explanation (which stage decided, why a time-out).
        history: BaB's per-iteration record (iteration, open domains, bound, time).
    """

    status: str
    lower_bound: float
    counterexample: torch.Tensor | None
    time: float
    n_branches: int
    method: str
    root_lower_bound: float | None = None
    detail: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.status == "verified"


# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------

def _check_int(value: Any, name: str, minimum: int) -> int:
    value = check_nonnegative_int(value, name)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_verify_arguments(model, x, label, eps, x_min, x_max, timeout, method, batch_size,
                            attack_steps, attack_restarts, seed, max_domains):
    check_model(model)
    check_box_arguments(x, eps, x_min, x_max)
    check_model_tensors(model, x)
    if not isinstance(method, str) or method not in VERIFY_METHODS:
        raise ValueError(f"method must be one of {list(VERIFY_METHODS)}, got {method!r}")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a finite number of seconds > 0 or None, got "
                             f"{timeout!r}")
    if max_domains is not None:
        max_domains = _check_int(max_domains, "max_domains", 0)
    if timeout is None and max_domains is None and method == "bab":
        raise ValueError("timeout=None needs max_domains (a deterministic budget) for "
                         "method='bab': without either the branch and bound is unbounded")
    _check_int(batch_size, "batch_size", 2)
    _check_int(attack_steps, "attack_steps", 0)
    _check_int(attack_restarts, "attack_restarts", 1)
    _check_int(seed, "seed", 0)
    xb = as_batch(model, x)
    if xb.shape[0] != 1:
        raise ValueError(f"x must be one input (optionally with a batch dimension of 1), got "
                         f"shape {tuple(x.shape)}")
    with torch.no_grad():
        try:
            n_classes = int(model(xb).shape[-1])
        except RuntimeError as exc:
            raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model: {exc}") \
                from exc
    if isinstance(label, torch.Tensor):
        if label.numel() != 1:
            raise ValueError(f"label must be a single class index, got shape "
                             f"{tuple(label.shape)}")
        label = int(label.item())
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise TypeError(f"label must be an integer class index, got {label!r}")
    if not 0 <= label < n_classes:
        raise ValueError(f"label must lie in [0, {n_classes - 1}] (the model has {n_classes} "
                         f"classes), got {label}")
    if n_classes < 2:
        raise ValueError("the model must have at least 2 output classes")
    return xb, int(label), max_domains


#: the :class:`BranchAndBound` settings ``verify(bab_options=...)`` may change.
BAB_OPTIONS = tuple(
    name for name, parameter in inspect.signature(BranchAndBound).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    and name not in ("batch_size", "margin_tolerance"))


def _check_bab_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``bab_options`` as a dict; unknown names raise ``ValueError`` naming them (the
    values are checked by :class:`BranchAndBound`)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"bab_options must be a mapping (dict) or None, got "
                        f"{type(options).__name__}")
    unknown = sorted(str(k) for k in options if k not in BAB_OPTIONS)
    if unknown:
        raise ValueError(f"unknown bab_options {unknown}; allowed: {list(BAB_OPTIONS)}")
    return dict(options)


def _import_once() -> None:
    """Import what the first alpha-CROWN call would import lazily: ``torch.optim``'s first
    optimizer imports ``torch._dynamo`` (and sympy), 1-2 s once per process. Done before
    :func:`verify` starts its clock so that the first call's time limit is spent on
    verification, not on imports (later calls find the modules loaded)."""
    import torch._dynamo  # noqa: F401


def verify(model: nn.Sequential, x: torch.Tensor, label: int, eps: float, *,
           x_min: float = 0.0, x_max: float = 1.0, timeout: float | None = 60.0,
           method: str = "bab", batch_size: int = 64, attack_steps: int = 50,
           attack_restarts: int = 3, seed: int = 0,
           max_domains: int | None = None,
           bab_options: Mapping[str, Any] | None = None) -> VerificationResult:
    """Decide robustness of ``model`` at ``x`` for ``label`` on the L-infinity ball.

    Args:
        model: ``nn.Sequential`` of Linear, Conv2d, Flatten, ReLU and GraftedReLU layers
            ending with the logits' Linear layer; finite parameters, not on the meta device.
        x: one input, ``input_shape`` or ``(1, *input_shape)``, inside [x_min, x_max].
        label: the true class, in ``[0, n_classes)``.
        eps: L-infinity radius, >= 0. The input set is ``B_inf(x, eps) ∩ [x_min, x_max]``.
        timeout: seconds (> 0), or None for no wall-clock limit (then "bab" needs
            ``max_domains``; "milp" runs SCIP without a time limit); reaching it gives
            "timeout", never "verified". It is checked between the stages, between BaB
            iterations and at every alpha/beta optimisation step (also inside the root's
            alpha-CROWN), so calls end within about one optimisation step of it; a bound
            completed by then that proves the property still gives "verified" (it is a
            valid certificate). Verdicts that depend on the timeout depend on the machine's
            speed; see ``max_domains``.
        method: "bab" (default), "milp" or "alpha-crown" (see the module docstring).
        batch_size: BaB domains per bounding call (an integer >= 2).
        attack_steps, attack_restarts, seed: the PGD attack run first ("bab",
            "alpha-crown"; ``certlab.verification.attacks.pgd_attack``); ``attack_steps=0``
            skips the attack (BaB alone must then find counterexamples). Integers
            ``>= 0``, ``>= 1`` and ``>= 0``.
        max_domains: deterministic work limit of "bab": at most this many branch-and-bound
            domains are bounded (``VerificationResult.n_branches <= max_domains``); reaching
            it gives "timeout" (detail "domain limit reached"), never "verified". The number
            of alpha/beta optimisation steps is fixed (20 at the root, 10 per batch), so
            with ``timeout=None`` (or one far above the run time) the verdict does not
            depend on the machine (up to float round-off). None: no limit. Ignored by
            "milp" and "alpha-crown" (which do not branch).
        bab_options: settings of the branch and bound (:data:`BAB_OPTIONS`, the keyword
            arguments of :class:`certlab.verification.bab.BranchAndBound` other than
            ``batch_size``), e.g. ``{"branching": "fsb"}`` or the pre-issue-13 loop
            ``{"max_split_depth": 1, "prune_verified_margins": False, "iterations": 20}``;
            None: the defaults. Unknown names raise ``ValueError``.

    Returns:
        :class:`VerificationResult`.

    Raises:
        TypeError, ValueError: bad arguments (named in the message), including non-finite
            or meta-device parameters, ``batch_size < 2``, ``attack_steps < 0``,
            ``attack_restarts < 1``, ``seed < 0``, ``max_domains < 0``, and
            ``timeout=None`` without ``max_domains`` for "bab".
    """
    xb, label, max_domains = _check_verify_arguments(
        model, x, label, eps, x_min, x_max, timeout, method, batch_size, attack_steps,
        attack_restarts, seed, max_domains)
    options = _check_bab_options(bab_options)
    model = model.eval()
    if method != "milp":
        _import_once()
    twin = float64_twin(model)
    start = time.perf_counter()
    deadline = None if timeout is None else start + float(timeout)
    lower, upper = real_box(xb, eps, x_min, x_max)  # float64, rounded outwards

    def result(status, bound, cex=None, n_branches=0, root=None, detail="", history=None):
        return VerificationResult(status, float(bound), cex, time.perf_counter() - start,
                                  n_branches, method, root, detail, history or [])

    def time_left(default: float) -> float:
        return default if deadline is None else max(0.1, deadline - time.perf_counter())

    # The clean input itself.
    cex = checked_counterexample(model, xb, label, lower, upper)
    if cex is not None:
        return result("falsified", -math.inf, cex, detail="x itself is misclassified")
    if method in ("bab", "alpha-crown") and eps > 0 and attack_steps > 0:
        x_adv = pgd_attack(model, xb, torch.tensor([label], device=xb.device), float(eps),
                           steps=attack_steps, restarts=attack_restarts, x_min=x_min,
                           x_max=x_max, seed=seed)
        cex = checked_counterexample(model, x_adv, label, lower, upper)
        if cex is not None:
            return result("falsified", -math.inf, cex, detail="PGD attack")
    if method == "milp":
        x64 = xb.double()
        with float64_default():
            bres, _ = compute_lirpa_bounds(twin, x64, lower, upper, "crown")
            ires, _ = compute_lirpa_bounds(twin, x64, lower, upper, "ibp")
        pre_l = [torch.maximum(a.lower, b.lower) for a, b in
                 zip(bres.pre_activations, ires.pre_activations)]
        pre_u = [torch.minimum(a.upper, b.upper) for a, b in
                 zip(bres.pre_activations, ires.pre_activations)]
        # examine the margins from the weakest CROWN bound up: a violated one is found first
        crown_margin = bres.logits.lower[0, label] - bres.logits.upper[0]
        order = [int(j) for j in torch.argsort(crown_margin) if int(j) != label]
        exact = exact_min_margins(model, xb, label, lower, upper, pre_l, pre_u,
                                  time_limit=time_left(1e9), spec_order=order)
        if exact.counterexample is not None:
            return result("falsified", exact.lower_bound, exact.counterexample,
                          detail="MILP solution")
        if exact.proved:
            # infeasibility proofs give no optimum: report the better of the two bounds
            crown_bound = float((bres.logits.lower[0, label] - torch.cat(
                [bres.logits.upper[0, :label], bres.logits.upper[0, label + 1:]])).min())
            return result("verified", max(exact.lower_bound, crown_bound),
                          detail="MILP proof")
        if not exact.solved:
            return result("timeout", exact.lower_bound, detail="MILP time limit")
        return result("unknown", exact.lower_bound,
                      detail=f"MILP optimum inside the numerical tolerance band "
                             f"(0, {exact.tolerance:.3g}]")
    bab = BranchAndBound(model, xb, label, lower, upper, batch_size=batch_size,
                         margin_tolerance=MARGIN_TOLERANCE, **options)
    if method == "alpha-crown":
        root = bab.root(deadline)
        if root.lower_bound > bab.tol:
            return result("verified", root.lower_bound, root=root.lower_bound,
                          detail="alpha-CROWN at the root (incomplete)")
        if bab.root_interrupted:
            return result("timeout", root.lower_bound, root=root.lower_bound,
                          detail="time limit reached during alpha-CROWN")
        detail = "alpha-CROWN at the root (incomplete)"
        if root.lower_bound > 0:
            detail += f"; bound within the round-off tolerance {bab.tol:.3g}"
        return result("unknown", root.lower_bound, root=root.lower_bound, detail=detail)
    outcome = bab.run(deadline, max_domains=max_domains)
    return result(outcome.status, outcome.lower_bound, outcome.counterexample,
                  outcome.n_branches, outcome.root_lower_bound, outcome.detail or
                  ("alpha-CROWN at the root" if outcome.n_branches == 0 and
                   outcome.status == "verified" else "branch and bound"), outcome.history)
