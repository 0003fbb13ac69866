"""Linearity grafting: the grafted ReLU and its auto_LiRPA bound operator.

Chen, Zhang et al. (ICML 2022) {cite}`chen2022grafting` replace selected ReLU neurons by
learnable linear functions (their Eq. (3)): with a per-neuron mask ``m`` (1 = grafted), slope
``a`` and intercept ``b``,

    A_g(z) = ReLU(z) * (1 - m) + (a * z + b) * m.

A grafted neuron is linear, so a verifier bounds it exactly: its lower and upper linear
relaxations are both ``a z + b``; it is never relaxed, never counted as unstable and never
branched on. This module provides

- :class:`GraftedReLU`, the ``nn.Module`` (``mask`` a bool buffer, ``slope`` and ``intercept``
  trainable parameters, all three of one sample's activation shape: ``(n,)`` after Linear,
  ``(C, H, W)`` after Conv2d);
- :class:`BoundGraftedRelu`, a subclass of auto_LiRPA's ``BoundRelu`` whose relaxation is
  exact on grafted neurons (for IBP, CROWN, alpha-CROWN and beta-CROWN, in matrix and patches
  mode), registered with ``auto_LiRPA.register_custom_op`` under :data:`CUSTOM_OP_NAME`.
  auto_LiRPA has no grafted activation of its own, which is why we write this operator.

The model is traced by auto_LiRPA through ONNX: while tracing, :class:`GraftedReLU` calls the
autograd Function :class:`GraftedReLUFunction`, whose ``symbolic`` emits the custom op with
inputs ``(z, mask, slope, intercept)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from certlab.verification.lirpa_patches import auto_LiRPA  # applies the patches first

from auto_LiRPA.operators.activation import BoundRelu  # noqa: E402

__all__ = ["GraftedReLU", "GraftedReLUFunction", "BoundGraftedRelu", "CUSTOM_OP_NAME",
           "grafted_forward"]

#: name of the custom ONNX operator that auto_LiRPA maps to :class:`BoundGraftedRelu`.
CUSTOM_OP_NAME = "customOp::GraftedRelu"


def grafted_forward(z: torch.Tensor, mask: torch.Tensor, slope: torch.Tensor,
                    intercept: torch.Tensor) -> torch.Tensor:
    """``ReLU(z)`` where ``mask`` is False, ``slope * z + intercept`` where it is True.

    ``z`` is ``(B, *shape)``; ``mask``, ``slope``, ``intercept`` are ``shape`` (broadcast over
    the batch).
    """
    return torch.where(mask.bool(), slope * z + intercept, F.relu(z))


class GraftedReLUFunction(torch.autograd.Function):
    """Autograd Function used while auto_LiRPA traces the model (emits the custom op)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, mask: torch.Tensor, slope: torch.Tensor,
                intercept: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z, mask, slope)
        return grafted_forward(z, mask, slope, intercept)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):  # pragma: no cover - tracing only
        z, mask, slope = ctx.saved_tensors
        m = mask.bool()
        grad_z = torch.where(m, grad_out * slope, grad_out * (z > 0).to(grad_out.dtype))
        mf = m.to(grad_out.dtype)
        grad_slope = (grad_out * z * mf).sum(0)
        grad_intercept = (grad_out * mf).sum(0)
        return grad_z, None, grad_slope, grad_intercept

    @staticmethod
    def symbolic(g: Any, z: Any, mask: Any, slope: Any, intercept: Any) -> Any:
        out = g.op(CUSTOM_OP_NAME, z, mask, slope, intercept)
        out.setType(z.type())
        return out


class GraftedReLU(nn.Module):
    """A ReLU layer with some neurons grafted to learnable linear functions (Eq. (3)).

    Args:
        mask: bool tensor of one sample's activation shape, True = grafted (stored as the
            buffer ``mask``).
        slope: initial slopes ``a`` (same shape; the paper starts at 0.4), a trainable
            ``nn.Parameter``.
        intercept: initial intercepts ``b`` (same shape; the paper starts at 0), trainable.

    Forward: ``z`` of shape ``(B, *mask.shape)`` -> same shape. ``requires_grad`` of slope and
    intercept can be switched off to freeze them (grafting zero = pruning: a = b = 0).
    """

    def __init__(self, mask: torch.Tensor, slope: torch.Tensor | float = 0.4,
                 intercept: torch.Tensor | float = 0.0) -> None:
        super().__init__()
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
        if mask.ndim not in (1, 3):
            raise ValueError(f"mask must have the shape of one sample's activation ((n,) after "
                             f"Linear or (C, H, W) after Conv2d), got shape {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            if not ((mask == 0) | (mask == 1)).all():
                raise ValueError("mask must be boolean (or contain only 0 and 1)")
            mask = mask.bool()
        slope_t = self._as_tensor(slope, mask, "slope")
        intercept_t = self._as_tensor(intercept, mask, "intercept")
        self.register_buffer("mask", mask.clone())
        self.slope = nn.Parameter(slope_t)
        self.intercept = nn.Parameter(intercept_t)

    @staticmethod
    def _as_tensor(value: Any, mask: torch.Tensor, name: str) -> torch.Tensor:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ValueError(f"{name} must be finite, got {value!r}")
            return torch.full(mask.shape, float(value), device=mask.device)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a float or a torch.Tensor, got "
                            f"{type(value).__name__}")
        if value.shape != mask.shape:
            raise ValueError(f"{name} must have the shape of mask {tuple(mask.shape)}, got "
                             f"{tuple(value.shape)}")
        if not torch.is_floating_point(value) or not torch.isfinite(value).all():
            raise ValueError(f"{name} must be a finite floating-point tensor")
        return value.detach().clone().float()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            return GraftedReLUFunction.apply(z, self.mask, self.slope, self.intercept)
        if z.shape[1:] != self.mask.shape:
            raise ValueError(f"GraftedReLU expects inputs of shape (B, {tuple(self.mask.shape)}),"
                             f" got {tuple(z.shape)}")
        return grafted_forward(z, self.mask, self.slope, self.intercept)

    @property
    def n_grafted(self) -> int:
        """Number of grafted neurons."""
        return int(self.mask.sum())

    def extra_repr(self) -> str:
        return f"shape={tuple(self.mask.shape)}, grafted={self.n_grafted}/{self.mask.numel()}"


class BoundGraftedRelu(BoundRelu):
    """auto_LiRPA bound operator of :class:`GraftedReLU` (inputs z, mask, slope, intercept).

    Non-grafted neurons use BoundRelu's relaxations unchanged (CROWN upper line, adaptive or
    alpha-optimised lower slope, beta split terms). On grafted neurons both linear bounds are
    ``a z + b`` (exact), the interval bound is the image of ``[l, u]`` under ``a z + b``.
    Grafted neurons can still satisfy ``l < 0 < u`` in auto_LiRPA's internal masks: callers
    must exclude them from unstable counts and branching (certlab's functions do).
    """

    def forward(self, z, mask, slope, intercept):  # type: ignore[override]
        self.shape = z.shape[1:]
        if self.flattened_nodes is None:
            self.flattened_nodes = z[0].reshape(-1).shape[0]
        return grafted_forward(z, mask, slope, intercept)

    def _graft_parameters(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                              torch.Tensor]:
        mask, slope, intercept = (node.forward() for node in self.inputs[1:4])
        m = mask.detach().to(like)
        return m, slope.detach().to(like), intercept.detach().to(like)

    def interval_propagate(self, *v):
        (z_lower, z_upper), mask_iv, slope_iv, intercept_iv = v[0], v[1], v[2], v[3]
        m = mask_iv[0].bool()
        slope, intercept = slope_iv[0].detach(), intercept_iv[0].detach()
        lin_lower = torch.minimum(slope * z_lower, slope * z_upper) + intercept
        lin_upper = torch.maximum(slope * z_lower, slope * z_upper) + intercept
        return (torch.where(m, lin_lower, F.relu(z_lower)),
                torch.where(m, lin_upper, F.relu(z_upper)))

    def _backward_relaxation(self, last_lA, last_uA, x, start_node, unstable_idx):
        (upper_d, upper_b, lower_d, lower_b, lb_lower_d, ub_lower_d,
         alpha_lookup_idx) = super()._backward_relaxation(last_lA, last_uA, x, start_node,
                                                          unstable_idx)
        m, slope, intercept = self._graft_parameters(upper_d)
        keep = 1.0 - m

        def graft(d: torch.Tensor | None) -> torch.Tensor | None:
            return None if d is None else d * keep + slope * m

        upper_d = graft(upper_d)
        lower_d = graft(lower_d)
        lb_lower_d = graft(lb_lower_d)
        ub_lower_d = graft(ub_lower_d)
        upper_b = upper_b * keep + intercept * m
        grafted_bias = (intercept * m).expand_as(upper_b)
        lower_b = grafted_bias if lower_b is None else lower_b * keep + intercept * m
        if bool(m.any()):
            # BoundRelu flags "all neurons inactive => zero coefficients"; not so when grafted.
            self.zero_backward_coeffs_l = self.zero_backward_coeffs_u = False
        return upper_d, upper_b, lower_d, lower_b, lb_lower_d, ub_lower_d, alpha_lookup_idx

    def bound_backward(self, last_lA, last_uA, x=None, *graft_inputs, start_node=None,
                       beta_for_intermediate_layers=False, unstable_idx=None):
        A, lbias, ubias = super().bound_backward(
            last_lA, last_uA, x, start_node=start_node,
            beta_for_intermediate_layers=beta_for_intermediate_layers,
            unstable_idx=unstable_idx)
        return A + [(None, None)] * (len(self.inputs) - 1), lbias, ubias

    def build_solver(self, *args, **kwargs):  # pragma: no cover - not used by certlab
        raise NotImplementedError("certlab builds its own MILP "
                                  "(certlab.verification.exact_milp)")


auto_LiRPA.register_custom_op(CUSTOM_OP_NAME, BoundGraftedRelu)
