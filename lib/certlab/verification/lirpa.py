"""auto_LiRPA 0.3 on numpy 2 / torch 2.13: compatibility patches and bound wrappers.

auto_LiRPA 0.3 (Xu et al., 2020; the only release on the package registry) implements the
bound-propagation methods this book uses: interval bound propagation (IBP), CROWN
{cite}`zhang2018crown` and alpha-CROWN {cite}`xu2021alphacrown` ("CROWN-Optimized"). The
compatibility patches that make it importable on the pinned stack live in
:mod:`certlab.verification.lirpa_patches` (``apply_compatibility_patches``, ``auto_LiRPA`` and
``quiet`` are re-exported here). All bounds use ``bound_opts={'sparse_features_alpha': False,
'sparse_spec_alpha': False}``: with the defaults ``True``, alpha-CROWN in v0.3 crashes
("shape mismatch" in ``reconstruct_full_alpha``) when over 90% of a layer's neurons are
unstable, and with a bare ``AssertionError`` (activation.py:598: an intermediate layer's
slopes were created sparse for a start node with no unstable neuron, later read densely) on
nets such as Linear-GraftedReLU-Linear-ReLU-Linear.

Public functions:

- :func:`bounds`: lower/upper bounds on the logits and every pre-activation (IBP, CROWN,
  alpha-CROWN) over the L-infinity ball ``{x' : ||x' - x||_inf <= eps} ∩ [x_min, x_max]``.
- :func:`unstable_neurons`: per activation layer, which neurons are unstable (``l < 0 < u``);
  grafted neurons are never unstable.
- :func:`cached_bounded_module`: the ``BoundedModule`` of a model, built once and reused
  across calls (``bounds``, ``verify``) while the model is unchanged (see its docstring for
  how a changed model is detected).
"""

from __future__ import annotations

import copy
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from certlab.verification.grafted import BoundGraftedRelu, GraftedReLU
from certlab.verification.lirpa_patches import (BoundedModule, BoundedTensor,
                                               PerturbationLpNorm, apply_compatibility_patches,
                                               auto_LiRPA, default_dtype, quiet)

__all__ = [
    "apply_compatibility_patches",
    "auto_LiRPA",
    "LayerBounds",
    "BoundsResult",
    "supported_layers",
    "BOUND_METHODS",
    "check_model",
    "check_box_arguments",
    "check_model_tensors",
    "as_batch",
    "input_box",
    "bounded_input",
    "compute_lirpa_bounds",
    "activation_layers",
    "grafted_masks",
    "quiet",
    "build_bounded_module",
    "cached_bounded_module",
    "clear_bounded_module_cache",
    "bounds",
    "unstable_neurons",
    "unstable_ratio",
]

#: auto_LiRPA bound options used everywhere (crash workarounds, see the module docstring).
DEFAULT_BOUND_OPTS: dict[str, Any] = {"sparse_features_alpha": False, "sparse_spec_alpha": False}

#: user-facing method names -> auto_LiRPA method names.
BOUND_METHODS: dict[str, str] = {"ibp": "IBP", "crown": "CROWN", "alpha-crown": "CROWN-Optimized"}


# --------------------------------------------------------------------------------------------
# Model and input checks
# --------------------------------------------------------------------------------------------

def supported_layers() -> tuple[type, ...]:
    """The layer types the verifier accepts inside an ``nn.Sequential``."""
    return (nn.Linear, nn.Conv2d, nn.Flatten, nn.ReLU, GraftedReLU)


def check_model(model: Any, *, require_logits: bool = True) -> nn.Sequential:
    """Validate that ``model`` is an ``nn.Sequential`` of supported layers (Linear, Conv2d,
    Flatten to the last dim, ReLU, GraftedReLU) and, with ``require_logits``, that it ends
    with the logits' Linear layer.

    Raises ``TypeError`` naming the first unsupported layer (its index and class).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"model must be an nn.Sequential of Linear, Conv2d, Flatten, ReLU and GraftedReLU "
            f"layers, got {type(model).__name__}")
    if len(model) == 0:
        raise ValueError("model must contain at least one layer, got an empty nn.Sequential")
    supported = supported_layers()
    for index, layer in enumerate(model):
        if not isinstance(layer, supported) or (
                isinstance(layer, nn.Flatten) and layer.end_dim != -1):
            raise TypeError(
                f"model layer {index} ({type(layer).__name__}: {layer}) is not supported; the "
                f"verifier accepts Linear, Conv2d, Flatten (to the last dim), ReLU and "
                f"GraftedReLU layers")
        if isinstance(layer, nn.Flatten) and layer.start_dim != 1:
            raise TypeError(f"model layer {index} (Flatten) must have start_dim=1, "
                            f"got start_dim={layer.start_dim}")
    if require_logits and not isinstance(model[-1], nn.Linear):
        raise TypeError(f"model's last layer must be nn.Linear (the logits), got "
                        f"{type(model[-1]).__name__}")
    return model


def check_box_arguments(x: Any, eps: Any, x_min: float, x_max: float) -> torch.Tensor:
    """Validate ``x`` (finite float tensor inside [x_min, x_max]), ``eps >= 0`` and the box
    limits; raise ``TypeError``/``ValueError`` naming the argument."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise TypeError(f"eps must be a real number, got {eps!r}")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    for name, value in (("x_min", x_min), ("x_max", x_max)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                             np.integer)):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if x_min > x_max:
        raise ValueError(f"x_min must be <= x_max, got x_min={x_min}, x_max={x_max}")
    if x.device.type == "meta":
        raise ValueError("x is on the meta device (it has no values); move it to 'cpu' or "
                         "'cuda' first")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite")
    if (x < x_min).any() or (x > x_max).any():
        raise ValueError(
            f"x must lie inside [x_min, x_max] = [{x_min}, {x_max}], got values in "
            f"[{float(x.min()):.6g}, {float(x.max()):.6g}]")
    return x


def check_model_tensors(model: nn.Sequential, x: torch.Tensor) -> None:
    """Refuse models whose parameters or buffers are non-finite, on the meta device (no
    values) or on another device than ``x``, with a ``ValueError`` naming the tensor."""
    for name, t in model.state_dict(keep_vars=True).items():
        if t.device.type == "meta":
            raise ValueError(f"model tensor {name!r} is on the meta device (it has no values); "
                             f"load or initialise the model's weights first")
        if t.device != x.device:
            raise ValueError(f"model tensor {name!r} is on {t.device} but x is on {x.device}: "
                             f"move both to the same device")
        if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
            raise ValueError(f"model tensor {name!r} has non-finite values (NaN or inf): "
                             f"nothing can be verified for it")


def input_box(x: torch.Tensor, eps: float, x_min: float = 0.0,
              x_max: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The L-infinity ball of radius ``eps`` around ``x`` intersected with [x_min, x_max].

    Returns ``(lower, upper)`` of the shape of ``x``.
    """
    check_box_arguments(x, eps, x_min, x_max)
    return (x - eps).clamp(min=x_min), (x + eps).clamp(max=x_max)


def as_batch(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Add a batch dimension of 1 when ``x`` is one sample.

    A model starting with Linear takes samples of 1 dim, one starting with Conv2d samples of
    3 dims (C, H, W); a model starting with Flatten takes images: x with 4 dims is a batch,
    fewer dims is one sample.
    """
    first = model[0]
    if isinstance(first, nn.Flatten):
        return x if x.ndim == 4 else x.unsqueeze(0)
    sample_ndim = 1 if isinstance(first, nn.Linear) else 3
    if x.ndim == sample_ndim:
        return x.unsqueeze(0)
    if x.ndim == sample_ndim + 1:
        return x
    raise ValueError(f"x must have the shape of one sample ({sample_ndim} dims) or of a batch "
                     f"({sample_ndim + 1} dims) for this model, got shape {tuple(x.shape)}")


# --------------------------------------------------------------------------------------------
# Bounded module construction
# --------------------------------------------------------------------------------------------

def build_bounded_module(model: nn.Sequential, example: torch.Tensor, *,
                         bound_opts: dict | None = None) -> BoundedModule:
    """Wrap ``model`` (validated by :func:`check_model`) into an auto_LiRPA ``BoundedModule``.

    ``example`` is a batch ``(B, *input_shape)`` used for tracing. GraftedReLU layers become
    the custom bound operator registered by :mod:`certlab.verification.grafted`.
    """
    check_model(model)
    opts = dict(DEFAULT_BOUND_OPTS)
    opts.update(bound_opts or {})
    model = model.eval()
    with quiet():
        net = BoundedModule(model, torch.zeros_like(example), bound_opts=opts,
                            device=example.device, verbose=False)
    if BoundGraftedRelu not in net.ibp_intermediate:
        net.ibp_intermediate.append(BoundGraftedRelu)
    return net


# BoundedModule cache. Tracing a model into a BoundedModule (ONNX export + graph conversion)
# costs 10-30 ms for the book's small networks and more for larger ones, and verify() /
# bounds() are called for hundreds of images on the same model; so the modules are kept per
# model object (weakly: the cache never keeps a model alive) and per configuration.
_NET_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, _CachedNet]]" = \
    weakref.WeakKeyDictionary()


@dataclass
class _CachedNet:
    """A cached BoundedModule with what is needed to validate and reset it."""

    structure: tuple
    state: list[tuple[str, torch.Tensor]]  # value snapshot of the state dict at build time
    net: BoundedModule
    default_opts: dict


def _structure_signature(model: nn.Sequential) -> tuple:
    """Layer classes and their ``repr`` (sizes, strides, paddings, ...) plus the names,
    shapes, dtypes and devices of the state dict entries."""
    layers = tuple((type(m).__module__, type(m).__qualname__, repr(m)) for m in model.modules())
    entries = tuple((name, tuple(t.shape), str(t.dtype), str(t.device))
                    for name, t in model.state_dict(keep_vars=True).items())
    return layers, entries


def _state_unchanged(model: nn.Sequential, snapshot: list[tuple[str, torch.Tensor]]) -> bool:
    """True when every parameter and buffer equals (bitwise) the snapshot taken at build time.

    Values are compared rather than ``data_ptr`` / version counters because writes through
    ``tensor.data`` (common in grafting code) bypass the version counter."""
    current = model.state_dict(keep_vars=True)
    if len(current) != len(snapshot):
        return False
    for name, saved in snapshot:
        value = current.get(name)
        if value is None or value.shape != saved.shape or value.dtype != saved.dtype:
            return False
        if not torch.equal(value.detach(), saved):
            return False
    return True


def _reset_bounded_module(net: BoundedModule, default_opts: dict) -> None:
    """Bring a reused BoundedModule back to the state right after construction: the bound
    options (BaB switches beta-CROWN on through them), the split constraints (``sparse_beta``:
    a stale split would make later bounds unsound) and the optimised slopes."""
    net.bound_opts.clear()  # in place: every bound node holds a reference to this dict
    net.bound_opts.update(copy.deepcopy(default_opts))
    for node in net.optimizable_activations:
        node.opt_stage = None
        node.alpha = OrderedDict()
        node.alpha_beta_update_mask = None
        node.patch_size = {}
        for attr in ("sparse_beta", "sparse_beta_loc", "sparse_beta_sign", "beta",
                     "beta_mask", "masked_beta"):
            if hasattr(node, attr):
                setattr(node, attr, None)
        # slope layouts of an earlier alpha-CROWN run: auto_LiRPA reads their presence as
        # "this layer's slopes are (not) sparse" and would change how later bounds are built
        if "alpha_lookup_idx" in node.__dict__:
            del node.alpha_lookup_idx
        if "alpha_indices" in node.__dict__:
            node.alpha_indices = None
    net.last_update_preserve_mask = None
    net.cut_used = False


def cached_bounded_module(model: nn.Sequential, example: torch.Tensor, *,
                          bound_opts: dict | None = None) -> BoundedModule:
    """:func:`build_bounded_module`, reused across calls on the same, unchanged model.

    The cache is keyed by the model object (a weak reference) and by the bound options,
    the device, dtype and one sample's shape of ``example``; an entry is reused only if the
    model's layers (classes and ``repr``) and every parameter and buffer (names, shapes and
    bitwise values, compared with a snapshot taken at build time) are unchanged, so a
    fine-tuned or re-grafted model is never bounded with a stale module. On reuse the module
    is reset (bound options, split constraints, slopes) to its freshly built state.

    The batch size of ``example`` does not matter (auto_LiRPA bounds any batch size).
    """
    check_model(model)
    opts_key = repr(sorted((bound_opts or {}).items()))
    key = (opts_key, str(example.device), str(example.dtype), tuple(example.shape[1:]))
    structure = _structure_signature(model)
    per_model = _NET_CACHE.get(model)
    if per_model is not None:
        entry = per_model.get(key)
        if entry is not None:
            if entry.structure == structure and _state_unchanged(model, entry.state):
                model.eval()
                _reset_bounded_module(entry.net, entry.default_opts)
                return entry.net
            per_model.clear()  # the model changed: every configuration is stale
    net = build_bounded_module(model, example[:1], bound_opts=bound_opts)
    state = [(name, t.detach().clone())
             for name, t in model.state_dict(keep_vars=True).items()]
    _NET_CACHE.setdefault(model, {})[key] = _CachedNet(
        structure, state, net, copy.deepcopy(net.bound_opts))
    return net


def clear_bounded_module_cache() -> None:
    """Forget every cached BoundedModule (tests and benchmarks measure cold calls)."""
    _NET_CACHE.clear()


def bounded_input(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> BoundedTensor:
    """A BoundedTensor for the box ``[lower, upper]`` (same shape as ``x``)."""
    return BoundedTensor(x, PerturbationLpNorm(norm=np.inf, eps=None, x_L=lower, x_U=upper))


def activation_layers(model: nn.Sequential) -> list[int]:
    """Indices of the activation (ReLU / GraftedReLU) layers of ``model``."""
    graft = GraftedReLU
    return [i for i, m in enumerate(model) if isinstance(m, (nn.ReLU, graft))]


def grafted_masks(model: nn.Sequential) -> list[torch.Tensor | None]:
    """Per activation layer, the grafted mask (bool, one sample's shape) or None for ReLU."""
    graft = GraftedReLU
    return [model[i].mask.bool() if isinstance(model[i], graft) else None
            for i in activation_layers(model)]


# --------------------------------------------------------------------------------------------
# Bounds
# --------------------------------------------------------------------------------------------

@dataclass
class LayerBounds:
    """Bounds of one layer's values over the input box: ``lower``/``upper`` of shape
    ``(B, *layer_shape)``. ``index`` is the position in the ``nn.Sequential`` of the layer
    producing these values (for pre-activations: the Linear/Conv2d before activation)."""

    index: int
    lower: torch.Tensor
    upper: torch.Tensor


@dataclass
class BoundsResult:
    """Output of :func:`bounds`.

    Attributes:
        method: "ibp", "crown" or "alpha-crown".
        logits: bounds on the logits, ``(B, n_classes)``.
        pre_activations: one :class:`LayerBounds` per activation layer (the input of each
            ReLU / GraftedReLU), in network order.
    """

    method: str
    logits: LayerBounds
    pre_activations: list[LayerBounds]


def _check_method(method: Any, allowed: tuple[str, ...] = tuple(BOUND_METHODS)) -> str:
    if not isinstance(method, str) or method not in allowed:
        raise ValueError(f"method must be one of {list(allowed)}, got {method!r}")
    return method


def _relu_nodes(net: BoundedModule) -> list[Any]:
    return list(net.relus)


def compute_lirpa_bounds(model: nn.Sequential, x: torch.Tensor, lower: torch.Tensor,
                         upper: torch.Tensor, method: str, *, alpha_iterations: int = 20,
                         alpha_lr: float = 0.1, net: BoundedModule | None = None,
                         ) -> tuple[BoundsResult, BoundedModule]:
    """Bounds over the box ``[lower, upper]`` (batched, ``(B, *input_shape)``).

    Returns the :class:`BoundsResult` and the BoundedModule used (its ReLU nodes hold the
    intermediate bounds and, for alpha-CROWN, the optimised slopes).
    """
    _check_method(method)
    if net is None:
        net = cached_bounded_module(model, x)
    bx = bounded_input(x, lower, upper)
    act_idx = activation_layers(model)
    with (torch.no_grad() if method != "alpha-crown" else torch.enable_grad()), quiet(), \
            default_dtype(x.dtype):
        if method == "alpha-crown":
            net.set_bound_opts({"optimize_bound_args": {
                "iteration": alpha_iterations, "lr_alpha": alpha_lr,
                "enable_beta_crown": False, "init_alpha": True}})
            # auto_LiRPA optimises the lower and the upper bounds in two separate runs.
            lb, ub = net.compute_bounds(x=(bx,), method="CROWN-Optimized")
        else:
            lb, ub = net.compute_bounds(x=(bx,), method=BOUND_METHODS[method])
    relus = _relu_nodes(net)
    if len(relus) != len(act_idx):
        raise RuntimeError(f"internal error: {len(relus)} bounded activations for "
                           f"{len(act_idx)} activation layers")
    pre = []
    for layer_index, node in zip(act_idx, relus):
        inp = node.inputs[0]
        pre.append(LayerBounds(layer_index - 1, inp.lower.detach().clone(),
                               inp.upper.detach().clone()))
    logits = LayerBounds(len(model) - 1, lb.detach().clone(), ub.detach().clone())
    return BoundsResult(method, logits, pre), net


def bounds(model: nn.Sequential, x: torch.Tensor, eps: float, method: str = "crown", *,
           x_min: float = 0.0, x_max: float = 1.0) -> BoundsResult:
    """Bounds on the logits and every pre-activation over the L-infinity ball.

    The input set is ``B(x, eps) = {x' : ||x' - x||_inf <= eps} ∩ [x_min, x_max]``.

    Args:
        model: ``nn.Sequential`` of Linear, Conv2d, Flatten, ReLU and GraftedReLU layers
            ending with a Linear layer (the logits).
        x: one input (``input_shape``) or a batch ``(B, *input_shape)``, inside
            [x_min, x_max].
        eps: radius of the L-infinity ball, >= 0.
        method: "ibp" (interval bound propagation), "crown" (Zhang et al., 2018, linear
            relaxation with adaptive lower slopes) or "alpha-crown" (Xu et al., 2021, lower
            slopes optimised by gradient ascent, 20 Adam steps).

    Returns:
        :class:`BoundsResult` with ``logits`` (``(B, n_classes)``) and one entry of
        ``pre_activations`` per activation layer (``(B, *activation_shape)``). A batch
        dimension of 1 is kept when a single sample was given.
    """
    check_model(model)
    _check_method(method)
    check_box_arguments(x, eps, x_min, x_max)
    check_model_tensors(model, x)
    xb = as_batch(model, x)
    lower, upper = input_box(xb, eps, x_min, x_max)
    result, _ = compute_lirpa_bounds(model, xb, lower, upper, method)
    return result


def unstable_neurons(model: nn.Sequential, x: torch.Tensor, eps: float,
                     method: str = "crown", *, x_min: float = 0.0,
                     x_max: float = 1.0) -> list[torch.Tensor]:
    """Per activation layer, the boolean mask of unstable neurons (``l < 0 < u``).

    Bounds come from :func:`bounds` with the same arguments. Grafted neurons are linear and
    never unstable: they are ``False`` in the masks. Returns a list with one tensor of shape
    ``(B, *activation_shape)`` per activation layer.

    The unstable-neuron ratio (UNR) of the paper is ``sum(mask) / numel(mask)`` over all
    layers, see :func:`unstable_ratio`.
    """
    result = bounds(model, x, eps, method, x_min=x_min, x_max=x_max)
    masks = []
    for layer_bounds, graft in zip(result.pre_activations, grafted_masks(model)):
        mask = (layer_bounds.lower < 0) & (layer_bounds.upper > 0)
        if graft is not None:
            mask = mask & ~graft.unsqueeze(0)
        masks.append(mask)
    return masks


def unstable_ratio(masks: list[torch.Tensor]) -> float:
    """UNR: unstable neurons over all neurons (all layers and samples), in [0, 1]."""
    if not masks:
        raise ValueError("masks must contain at least one layer")
    total = sum(int(m.numel()) for m in masks)
    return float(sum(int(m.sum()) for m in masks)) / total
