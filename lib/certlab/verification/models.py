"""Model builders and activation-layer helpers for the networks the verifier supports.

Every model here is a plain :class:`torch.nn.Sequential` of ``Linear``, ``Conv2d``,
``Flatten`` and ``ReLU`` layers (and, after grafting, ``GraftedReLU`` layers from
:mod:`certlab.verification.grafted`), the only layer kinds the bound propagation in
:mod:`certlab.verification.lirpa` and the branch and bound in
:mod:`certlab.verification.bab` handle.

"Activation layer" below means a ``ReLU`` or ``GraftedReLU`` module; activation layer ``i``
is the ``i``-th one in forward order, matching the ``z^{(i)}`` of Chen et al. (2022), Fig. 3.
Per-layer masks are lists with one boolean tensor per activation layer, each of the shape of
one sample's activation: ``(n,)`` after a ``Linear``, ``(C, H, W)`` after a ``Conv2d``.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from certlab.verification.grafted import GraftedReLU
from certlab.verification.lirpa import check_model

__all__ = [
    "SUPPORTED_LAYERS",
    "convbig_mnist",
    "small_cnn",
    "mlp",
    "check_supported",
    "activation_indices",
    "activation_shapes",
    "count_neurons",
    "insert_grafted_relus",
    "grafted_layers",
]


SUPPORTED_LAYERS = ("Linear", "Conv2d", "Flatten", "ReLU", "GraftedReLU")


def _is_activation(module: nn.Module) -> bool:
    return isinstance(module, (nn.ReLU, GraftedReLU))


def check_supported(model: nn.Module) -> nn.Sequential:
    """Check that ``model`` is an ``nn.Sequential`` of supported layers and return it
    (:func:`certlab.verification.lirpa.check_model` without requiring the final Linear).

    Raises ``TypeError`` naming the first unsupported layer (its index and class).
    """
    return check_model(model, require_logits=False)


def convbig_mnist(num_classes: int = 10) -> nn.Sequential:
    """ConvBig for MNIST (Mirman et al. 2018; the grafting authors' ``mnist_conv_big``).

    Input ``(B, 1, 28, 28)``; six activation layers of shapes (32, 28, 28), (32, 14, 14),
    (64, 14, 14), (64, 7, 7), (512,), (512,): 48,064 neurons in all.
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, stride=1, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=1, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 512), nn.ReLU(),
        nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, num_classes),
    )


def small_cnn(in_channels: int = 1, image_size: int = 28, channels: Sequence[int] = (8, 16),
              hidden: int = 64, num_classes: int = 10) -> nn.Sequential:
    """A CPU-scale ConvBig-like CNN: stride-2 ``Conv(k=4, p=1)`` + ReLU blocks, then MLP.

    Each conv maps a spatial size ``s`` to ``floor(s / 2)``. Input
    ``(B, in_channels, image_size, image_size)``. With the defaults: activation shapes
    (8, 14, 14), (16, 7, 7), (64,) (2,416 neurons).
    """
    channels = tuple(int(c) for c in channels)
    if not channels or any(c <= 0 for c in channels):
        raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels}")
    if hidden <= 0 or in_channels <= 0 or num_classes <= 1:
        raise ValueError(f"hidden ({hidden}) and in_channels ({in_channels}) must be positive "
                         f"and num_classes ({num_classes}) at least 2")
    size = int(image_size)
    for _ in channels:
        size = size // 2  # Conv(k=4, s=2, p=1): floor((size + 2 - 4) / 2) + 1
    if size < 1:
        raise ValueError(f"image_size={image_size} is too small for {len(channels)} stride-2 "
                         f"convolutions")
    layers: list[nn.Module] = []
    c_in, size = in_channels, int(image_size)
    for c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        c_in, size = c_out, size // 2
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, hidden), nn.ReLU(),
               nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def mlp(in_features: int = 784, hidden: Sequence[int] = (50, 50), num_classes: int = 10, *,
        flatten: bool = True) -> nn.Sequential:
    """``[Flatten ->] (Linear -> ReLU) * len(hidden) -> Linear``; input ``(B, ...)`` with
    ``in_features`` entries per sample (images need ``flatten=True``; for vector inputs
    ``(B, in_features)`` use ``flatten=False``: :mod:`certlab.verification.lirpa` reads a
    2-d input of a Flatten-first model as one sample)."""
    hidden = tuple(int(h) for h in hidden)
    if in_features <= 0 or any(h <= 0 for h in hidden) or num_classes <= 1:
        raise ValueError(f"in_features ({in_features}) and hidden sizes {hidden} must be "
                         f"positive and num_classes ({num_classes}) at least 2")
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def activation_indices(model: nn.Module) -> list[int]:
    """Indices into ``model`` of its activation layers (``ReLU`` / ``GraftedReLU``)."""
    check_supported(model)
    return [i for i, layer in enumerate(model) if _is_activation(layer)]


def activation_shapes(model: nn.Module, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Per-sample shape of each activation layer's input for inputs of shape ``input_shape``
    (one sample, without the batch dimension), found by a forward pass on zeros."""
    check_supported(model)
    input_shape = tuple(int(s) for s in input_shape)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    shapes: list[tuple[int, ...]] = []
    h = torch.zeros((1, *input_shape), device=device, dtype=dtype)
    with torch.no_grad():
        for layer in model:
            if _is_activation(layer):
                shapes.append(tuple(h.shape[1:]))
            try:
                h = layer(h)
            except RuntimeError as exc:
                raise ValueError(f"input_shape {input_shape} does not fit the model: "
                                 f"{exc}") from exc
    return shapes


def count_neurons(model: nn.Module, input_shape: Sequence[int]) -> list[int]:
    """Number of neurons in each activation layer (product of its per-sample shape)."""
    return [int(torch.Size(s).numel()) for s in activation_shapes(model, input_shape)]


def insert_grafted_relus(model: nn.Module, masks: Sequence[torch.Tensor | None],
                         input_shape: Sequence[int], *, slope: float = 0.4,
                         intercept: float = 0.0, trainable: bool = True) -> nn.Sequential:
    """A deep copy of ``model`` with activation layer ``i`` replaced by
    ``GraftedReLU(masks[i], slope, intercept)`` (Chen et al. 2022, Sec. 4:
    ``A_g(z) = ReLU(z) (1 - m) + (a z + b) m``).

    ``masks`` holds one boolean tensor per activation layer, of that layer's per-sample
    shape, or ``None`` to keep the layer as it is. Slopes start at ``slope`` and intercepts
    at ``intercept`` for every neuron (only the grafted ones matter). The paper's safe zone
    for the initialisation is ``slope in [0, 0.5]``, ``intercept in [-0.5, 0.5]`` (Sec. 5.2,
    Fig. 6); values outside it are rejected. ``trainable=False`` freezes slope and intercept
    (``requires_grad=False``): grafting zero is ``slope=0, intercept=0, trainable=False``,
    i.e. activation pruning. The input model is not modified.
    """
    if not 0.0 <= float(slope) <= 0.5:
        raise ValueError(f"slope must lie in the safe zone [0, 0.5] (Chen et al. 2022, Fig. 6), "
                         f"got {slope}")
    if not -0.5 <= float(intercept) <= 0.5:
        raise ValueError(f"intercept must lie in the safe zone [-0.5, 0.5], got {intercept}")
    idx = activation_indices(model)
    shapes = activation_shapes(model, input_shape)
    masks = list(masks)
    if len(masks) != len(idx):
        raise ValueError(f"masks must hold one entry per activation layer ({len(idx)}), "
                         f"got {len(masks)}")
    new = copy.deepcopy(model)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    for layer_no, (i, shape, mask) in enumerate(zip(idx, shapes, masks)):
        if mask is None:
            continue
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool:
            raise TypeError(f"masks[{layer_no}] must be a boolean tensor, got {mask.dtype}")
        if tuple(mask.shape) != tuple(shape):
            raise ValueError(f"masks[{layer_no}] has shape {tuple(mask.shape)}, activation layer "
                             f"{layer_no} (model[{i}]) has per-sample shape {tuple(shape)}")
        if isinstance(model[i], GraftedReLU):
            raise ValueError(f"model[{i}] is already a GraftedReLU: graft a plain ReLU model")
        mask = mask.to(device)
        layer = GraftedReLU(mask, torch.full(shape, float(slope), device=device),
                            torch.full(shape, float(intercept), device=device))
        for name in ("slope", "intercept"):
            getattr(layer, name).requires_grad_(bool(trainable))
        new[i] = layer
    return new


def grafted_layers(model: nn.Module) -> list[nn.Module | None]:
    """Per activation layer: the ``GraftedReLU`` module, or ``None`` for a plain ReLU."""
    return [model[i] if isinstance(model[i], GraftedReLU) else None
            for i in activation_indices(model)]
