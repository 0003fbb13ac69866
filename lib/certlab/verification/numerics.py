"""Round-off control for the verifier: what a "verified" answer may rely on.

A "verified" answer is a claim about the network's *real-arithmetic* function with the stored
weights taken exactly, over the *real* input set ``{x' : |x' - x|_inf <= eps} ∩ [x_min,
x_max]``. Bounds computed in float32 carry round-off errors that grow with the magnitudes of
the quantities involved, not with the margin: logits of size 2.6e3 are rounded by about 2.4e-4
in float32, so a fixed absolute tolerance (the earlier ``1e-5``) is unsound for large weights.
The verifier therefore

1. bounds in **float64** on a float64 twin of the model (:func:`float64_twin`; float32 weights
   convert to float64 exactly) under :func:`float64_default` (auto_LiRPA allocates some of
   its buffers with the default dtype), on a box rounded outwards (:func:`real_box`);
2. certifies a margin only when its bound exceeds :func:`roundoff_tolerance`, a bound on the
   accumulated round-off of that computation: ``gamma * S`` with ``S`` a bound on the
   magnitude of every quantity of the forward pass over the box (the absolute-value
   propagation of :func:`magnitude_bounds`, times 2 for the margin), and
   ``gamma = 16 * depth * width * u`` with ``u`` the unit round-off of the dtype
   (the classical ``n u`` dot-product bound, Higham 2002, Sec. 3.1, with a factor 16 for the
   relaxation intercepts, intermediate bounds and the final minimisation), but never below
   the absolute floor :data:`MARGIN_TOLERANCE`;
3. for the MILP, certifies only margins above :func:`milp_tolerance`, which scales the
   solver's feasibility tolerance (:data:`MILP_FEASIBILITY_TOLERANCE`, set on SCIP) by the
   same magnitudes;
4. accepts a counterexample only when it lies in the real input set (checked in float64) and
   its margin is <= 0 both for the model as given (its own dtype) and for the float64 twin
   (:func:`checked_counterexample`).

For the book's MNIST networks (``S`` up to about 1e4) the float64 tolerance is below 1e-7, so
the floor ``1e-5`` decides as before; for networks with weights of size 100 or more it grows
with the magnitudes and bounds within it give "unknown" instead of a wrong "verified".
"""

from __future__ import annotations

import contextlib
import copy
import math
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from certlab.verification.grafted import GraftedReLU
from certlab.verification.lirpa import _state_unchanged, _structure_signature
from certlab.verification.lirpa_patches import default_dtype

__all__ = ["MARGIN_TOLERANCE", "MILP_FEASIBILITY_TOLERANCE", "unit_roundoff", "model_dtype",
           "float64_twin", "float64_default", "real_box", "magnitude_bounds",
           "roundoff_tolerance", "milp_tolerance", "margins", "checked_counterexample"]

#: absolute floor of every certification threshold (margins must exceed it).
MARGIN_TOLERANCE = 1e-5
#: SCIP's feasibility tolerance in the exact MILP (``numerics/feastol``; SCIP's default 1e-6).
MILP_FEASIBILITY_TOLERANCE = 1e-9


def unit_roundoff(dtype: torch.dtype) -> float:
    """Unit round-off ``u`` of a floating dtype (2^-24 for float32, 2^-53 for float64)."""
    return float(torch.finfo(dtype).eps) / 2.0


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 if it has none)."""
    for p in model.parameters():
        if torch.is_floating_point(p):
            return p.dtype
    return torch.float32


# --------------------------------------------------------------------------------------------
# float64 twin and scope
# --------------------------------------------------------------------------------------------

_TWINS: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def float64_twin(model: nn.Sequential) -> nn.Sequential:
    """A float64 copy of ``model`` (the model itself if it is float64 already), in eval mode.

    Kept per model object (weakly) and rebuilt when the model's layers or any parameter or
    buffer changed since (bitwise comparison, as for the BoundedModule cache), so that the
    auto_LiRPA module built on the twin is cached too.
    """
    if model_dtype(model) == torch.float64:
        return model.eval()
    structure = _structure_signature(model)
    entry = _TWINS.get(model)
    if entry is not None and entry[0] == structure and _state_unchanged(model, entry[1]):
        return entry[2]
    twin = copy.deepcopy(model).double().eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    state = [(name, t.detach().clone()) for name, t in model.state_dict(keep_vars=True).items()]
    _TWINS[model] = (structure, state, twin)
    return twin


def float64_default() -> contextlib.AbstractContextManager:
    """Make float64 torch's default dtype inside the block (auto_LiRPA allocates its best
    bounds with the default dtype); restores the previous default afterwards."""
    return default_dtype(torch.float64)


def real_box(x: torch.Tensor, eps: float, x_min: float, x_max: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The input set ``B_inf(x, eps) ∩ [x_min, x_max]`` as a float64 box containing the
    real one: ``x - eps`` / ``x + eps`` are rounded outwards by one float64 ulp (``x`` is
    converted exactly). Returns ``(lower, upper)`` of the shape of ``x``."""
    xd = x.detach().double()
    low = torch.nextafter(xd - float(eps), torch.full_like(xd, -math.inf))
    up = torch.nextafter(xd + float(eps), torch.full_like(xd, math.inf))
    if eps == 0:
        low, up = xd.clone(), xd.clone()
    return low.clamp(min=float(x_min)), up.clamp(max=float(x_max))


# --------------------------------------------------------------------------------------------
# Magnitudes and tolerances
# --------------------------------------------------------------------------------------------

def magnitude_bounds(model: nn.Sequential, lower: torch.Tensor, upper: torch.Tensor
                     ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Elementwise bounds on ``|value|`` of every pre-activation and of the logits over the
    box, by propagating ``m = max(|lower|, |upper|)`` through ``|W| m + |b|`` (affine layers),
    ``m`` (ReLU) and ``|a| m + |b|`` (grafted neurons), in float64.

    Returns ``(per activation layer (B, *shape), logits (B, K))`` for a box of ``B``
    samples.
    """
    m = torch.maximum(lower.detach().abs(), upper.detach().abs()).double()
    pre: list[torch.Tensor] = []
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                w = layer.weight.detach().double().abs()
                b = (layer.bias.detach().double().abs() if layer.bias is not None
                     else torch.zeros(w.shape[0], dtype=torch.float64, device=w.device))
                m = m.to(w.device) @ w.T + b
            elif isinstance(layer, nn.Conv2d):
                w = layer.weight.detach().double().abs()
                b = (layer.bias.detach().double().abs() if layer.bias is not None else None)
                m = F.conv2d(m.to(w.device), w, b, layer.stride, layer.padding, layer.dilation,
                             layer.groups)
            elif isinstance(layer, nn.Flatten):
                m = m.flatten(1)
            elif isinstance(layer, GraftedReLU):
                pre.append(m)
                mask = layer.mask.bool()
                lin = layer.slope.detach().double().abs() * m + \
                    layer.intercept.detach().double().abs()
                m = torch.where(mask, lin, m)
            elif isinstance(layer, nn.ReLU):
                pre.append(m)
            else:  # pragma: no cover - check_model rejects other layers first
                raise TypeError(f"unsupported layer {type(layer).__name__}")
    return pre, m


def _scale_and_size(model: nn.Sequential, lower: torch.Tensor, upper: torch.Tensor,
                    extra: list[torch.Tensor] | None) -> tuple[float, int, int]:
    pre, logits = magnitude_bounds(model, lower, upper)
    scale = 2.0 * float(logits.max())  # a margin is the difference of two logits
    for t in pre + list(extra or []):
        if t.numel():
            scale = max(scale, float(t.detach().abs().max()))
    width = max([int(lower[0].numel()), int(logits[0].numel())] +
                [int(p[0].numel()) for p in pre])
    depth = sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model)
    return scale, width, depth


def roundoff_tolerance(model: nn.Sequential, lower: torch.Tensor, upper: torch.Tensor, *,
                       dtype: torch.dtype = torch.float64,
                       extra: list[torch.Tensor] | None = None) -> float:
    """Bound on the round-off of a margin bound computed in ``dtype`` over the box:
    ``16 * depth * width * u(dtype) * S`` (see the module docstring), without the floor.

    ``extra``: further tensors whose magnitudes enter the computation (e.g. the intermediate
    bounds actually used); ``S`` is the largest of them and of the magnitude bounds.
    """
    if not math.isfinite(float(lower.abs().max())) or not math.isfinite(
            float(upper.abs().max())):
        return math.inf
    scale, width, depth = _scale_and_size(model, lower, upper, extra)
    tol = 16.0 * depth * width * unit_roundoff(dtype) * scale
    return tol if math.isfinite(tol) else math.inf


def milp_tolerance(model: nn.Sequential, lower: torch.Tensor, upper: torch.Tensor) -> float:
    """Certification threshold of the exact MILP: ``max(MARGIN_TOLERANCE,
    4 * depth * MILP_FEASIBILITY_TOLERANCE * S)``. SCIP accepts each constraint violated by
    its feasibility tolerance relative to the values' size; through the layers such
    violations move the margin by up to about ``depth * feastol * S``."""
    scale, _, depth = _scale_and_size(model, lower, upper, None)
    tol = 4.0 * depth * MILP_FEASIBILITY_TOLERANCE * scale
    tol = max(tol, roundoff_tolerance(model, lower, upper))
    return max(MARGIN_TOLERANCE, tol) if math.isfinite(tol) else math.inf


# --------------------------------------------------------------------------------------------
# Counterexamples
# --------------------------------------------------------------------------------------------

def margins(model: nn.Module, x: torch.Tensor, label: int) -> torch.Tensor:
    """``f_label(x) - max_{j != label} f_j(x)`` per row of ``x`` (``(B,)``), computed in the
    dtype of ``model`` (``x`` is converted to it)."""
    with torch.no_grad():
        logits = model(x.to(model_dtype(model)))
    others = logits.clone()
    others[:, label] = -math.inf
    return logits[:, label] - others.max(dim=1).values


def checked_counterexample(model: nn.Module, candidate: torch.Tensor, label: int,
                           lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor | None:
    """``candidate`` moved into the box and cast to the model's dtype, if it is a real
    counterexample; else None.

    ``lower``, ``upper``: the (real, float64) input box, ``(1, *input_shape)``. The returned
    point (``(1, *input_shape)``, the model's dtype) lies in the box (checked in float64) and
    has margin <= 0 for ``model`` in its own dtype and for its float64 twin.
    """
    dtype = model_dtype(model)
    lo, up = lower.detach().double(), upper.detach().double()
    cand = candidate.detach().reshape(lo.shape).to(lo.device).double()
    cand = torch.maximum(torch.minimum(cand, up), lo).to(dtype)
    # rounding to the model's dtype may leave the box: step back inside by one ulp
    c64 = cand.double()
    cand = torch.where(c64 < lo, torch.nextafter(cand, torch.full_like(cand, math.inf)), cand)
    cand = torch.where(cand.double() > up,
                       torch.nextafter(cand, torch.full_like(cand, -math.inf)), cand)
    c64 = cand.double()
    if bool((c64 < lo).any() or (c64 > up).any()):
        return None
    if float(margins(model, cand, label)[0]) > 0.0:
        return None
    if dtype != torch.float64 and float(margins(float64_twin(model), c64, label)[0]) > 0.0:
        return None
    return cand.detach().clone()
