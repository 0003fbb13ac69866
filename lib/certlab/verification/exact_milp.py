"""The exact MILP of a ReLU / grafted network over a box (Tjeng et al., 2019).

One binary per unstable ReLU with big-M constraints from sound pre-activation bounds
(``h >= 0``, ``h >= z``, ``h <= z - l (1 - d)``, ``h <= u d``), grafted neurons as the
equality ``h = a z + b``, stable neurons as ``h = z`` / ``h = 0``; solved with SCIP through
ortools. Convolutions are unrolled to dense matrices (:func:`linearize_model`), so it is for
small networks only. Used by :func:`certlab.verification.verify.verify` (``method="milp"``)
and by the branch and bound for fully split leaves (then it is an LP).

Round-off (see :mod:`certlab.verification.numerics`): the network is taken in float64 (float32
weights convert exactly); SCIP runs with feasibility tolerance
:data:`~certlab.verification.numerics.MILP_FEASIBILITY_TOLERANCE`; the big-M bounds are widened
by the round-off of the computation that produced them; and a margin counts as proved only
above :func:`~certlab.verification.numerics.milp_tolerance`, which grows with the magnitudes
of the network's values over the box.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from certlab.verification.grafted import GraftedReLU
from certlab.verification.numerics import (MILP_FEASIBILITY_TOLERANCE, checked_counterexample,
                                           magnitude_bounds, milp_tolerance, unit_roundoff)

__all__ = ["ExactResult", "exact_min_margins", "linearize_model", "MAX_DENSE_ENTRIES"]

#: largest unrolled dense matrix (entries) the MILP accepts per layer.
MAX_DENSE_ENTRIES = 5_000_000


@dataclass
class ExactResult:
    """Outcome of :func:`exact_min_margins`.

    ``lower_bound``: proved lower bound on the minimum margin over the region (+inf if the
    region is empty; with ``decide_only`` a margin proved positive by infeasibility counts
    as ``tolerance``). ``counterexample``: an input with margin <= 0 checked with the model,
    or None. ``solved``: no solve hit the time limit. ``spec_bounds``: per margin.
    ``proved``: every margin is proved > ``tolerance`` (the region is safe).
    ``tolerance``: the certification threshold used (see :func:`exact_min_margins`)."""

    lower_bound: float
    counterexample: torch.Tensor | None
    solved: bool
    spec_bounds: list[float]
    proved: bool = False
    tolerance: float = 0.0


def linearize_model(model: nn.Sequential, input_shape: tuple[int, ...]) -> list[tuple]:
    """The network as flat affine maps and activations (float64 NumPy), for the MILP.

    Returns a list of ``("affine", W (out, in), b (out,))``, ``("relu",)`` and
    ``("graft", mask (n,), slope (n,), intercept (n,))``. Conv2d layers are unrolled to
    dense matrices by applying them to the identity basis (``ValueError`` if larger than
    ``MAX_DENSE_ENTRIES``); Flatten is the identity on flat vectors.
    """
    layers: list[tuple] = []
    shape = tuple(input_shape)
    for index, layer in enumerate(model):
        n_in = int(np.prod(shape))
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach().double().cpu().numpy()
            b = (layer.bias.detach().double().cpu().numpy() if layer.bias is not None
                 else np.zeros(w.shape[0]))
            layers.append(("affine", w, b))
            shape = (w.shape[0],)
        elif isinstance(layer, nn.Conv2d):
            with torch.no_grad():
                sample = torch.zeros(1, *shape, dtype=torch.float64)
                out_shape = tuple(F.conv2d(sample, layer.weight.double(), None, layer.stride,
                                           layer.padding, layer.dilation,
                                           layer.groups).shape[1:])
                n_out = int(np.prod(out_shape))
                if n_in * n_out > MAX_DENSE_ENTRIES:
                    raise ValueError(
                        f"model layer {index} (Conv2d) unrolls to a {n_out}x{n_in} matrix, too "
                        f"large for the MILP (at most {MAX_DENSE_ENTRIES} entries); use "
                        f"method='bab'")
                basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *shape)
                cols = F.conv2d(basis, layer.weight.double(), None, layer.stride,
                                layer.padding, layer.dilation, layer.groups)
                w = cols.reshape(n_in, n_out).T.cpu().numpy()
                bias = (layer.bias.detach().double() if layer.bias is not None
                        else torch.zeros(out_shape[0], dtype=torch.float64))
                b = bias[:, None, None].expand(*out_shape).reshape(-1).cpu().numpy()
            layers.append(("affine", w, b))
            shape = out_shape
        elif isinstance(layer, nn.Flatten):
            shape = (n_in,)
        elif isinstance(layer, GraftedReLU):
            layers.append(("graft", layer.mask.reshape(-1).cpu().numpy().astype(bool),
                           layer.slope.detach().double().reshape(-1).cpu().numpy(),
                           layer.intercept.detach().double().reshape(-1).cpu().numpy()))
        elif isinstance(layer, nn.ReLU):
            layers.append(("relu",))
        else:  # pragma: no cover - check_model rejects these first
            raise TypeError(f"model layer {index} ({type(layer).__name__}) is not supported")
    return layers


def exact_min_margins(model: nn.Sequential, x: torch.Tensor, label: int,
                      lower: torch.Tensor, upper: torch.Tensor,
                      pre_lower: list[torch.Tensor], pre_upper: list[torch.Tensor], *,
                      time_limit: float = 60.0, bound_slack: float = 1e-5,
                      decide_only: bool = True, spec_order: list[int] | None = None,
                      tolerance: float | None = None) -> ExactResult:
    """Exact minimum of each margin over the box with an ortools MILP (SCIP).

    Args:
        model, x, label: as in :func:`verify` (``x`` is ``(1, *input_shape)``).
        lower, upper: the input box, ``(1, *input_shape)``.
        pre_lower, pre_upper: per activation layer, sound bounds on the pre-activations over
            the box (or over a sub-region: then the result is for that sub-region), shape
            ``(1, *activation_shape)``. They give the big-M constants; each is widened by
            ``bound_slack * (1 + |bound|)`` plus the round-off bound of its dtype
            (:func:`certlab.verification.numerics.roundoff_tolerance` of that layer's
            magnitudes), so bounds computed in float32 stay sound. A bound that is exactly
            0 (a split neuron) is kept exact. Neurons with ``u <= 0`` / ``l >= 0`` need no
            binary.
        time_limit: seconds for all solves together.
        decide_only: stop each solve as soon as its sign is decided (SCIP's
            ``limits/dual`` = 2 * tolerance and ``limits/primal`` = -tolerance): the bounds
            are then valid lower bounds but not the optima. ``False`` solves every margin to
            optimality (relative gap 0).
        spec_order: the classes ``j`` in the order their margins are examined (e.g. by
            increasing CROWN bound, so that a violated margin is found first); default
            ``0..K-1``.
        tolerance: a margin counts as proved only above this; default (None)
            :func:`certlab.verification.numerics.milp_tolerance` (at least 1e-5, growing
            with the magnitudes of the network's values over the box). Smaller values are
            raised to that default.

    Returns:
        :class:`ExactResult`. With all neurons stable the program is an LP (used for
        fully split branch-and-bound leaves).
    """
    from ortools.linear_solver import pywraplp

    deadline = time.perf_counter() + time_limit
    layers = linearize_model(model, tuple(x.shape[1:]))
    default_tol = milp_tolerance(model, lower, upper)
    tol = default_tol if tolerance is None else max(float(tolerance), default_tol)
    if not math.isfinite(tol):
        raise ValueError("the network's values over the box overflow float64: nothing can be "
                         "proved")
    # round-off of the given pre-activation bounds: their dtype's unit round-off times the
    # layer's magnitudes, depth and width (as in numerics.roundoff_tolerance)
    pre_mag, _ = magnitude_bounds(model, lower, upper)
    depth = sum(item[0] == "affine" for item in layers)
    width = max([int(lower[0].numel())] + [int(m[0].numel()) for m in pre_mag])
    interm_slack = [16.0 * depth * width * unit_roundoff(pl.dtype) * float(m.max())
                    for pl, m in zip(pre_lower, pre_mag)]
    solver = pywraplp.Solver.CreateSolver("SCIP")
    if solver is None:  # pragma: no cover - SCIP ships with ortools
        raise RuntimeError("ortools was built without SCIP")
    scip_numerics = (f"numerics/feastol = {MILP_FEASIBILITY_TOLERANCE!r}\n"
                     f"numerics/epsilon = {MILP_FEASIBILITY_TOLERANCE * 1e-3!r}\n"
                     f"numerics/sumepsilon = {MILP_FEASIBILITY_TOLERANCE!r}\n")
    solver.SetSolverSpecificParametersAsString(scip_numerics + "limits/solutions = -1")
    inf = solver.infinity()
    lo = lower.detach().double().reshape(-1).cpu().numpy()
    hi = upper.detach().double().reshape(-1).cpu().numpy()
    # Each neuron value is represented as (variable or None, coefficient, constant).
    values: list[tuple[Any, float, float]] = [
        (solver.NumVar(float(lo[i]), float(hi[i]), f"x{i}"), 1.0, 0.0) for i in range(lo.size)]
    input_vars = [v[0] for v in values]
    act = 0
    final_affine: tuple[np.ndarray, np.ndarray] | None = None
    pending: tuple[np.ndarray, np.ndarray] | None = None
    z_vars: list[Any] = []

    def affine_vars(w: np.ndarray, b: np.ndarray, low: np.ndarray, up: np.ndarray,
                    tag: str) -> list[Any]:
        out = []
        for j in range(w.shape[0]):
            z = solver.NumVar(float(low[j]), float(up[j]), f"{tag}_{j}")
            const = float(b[j])
            row = w[j]
            nz = np.nonzero(row)[0]
            ct = solver.Constraint(0.0, 0.0)
            ct.SetCoefficient(z, -1.0)
            coeffs: dict[Any, float] = {}
            for i in nz:
                var, coef, c0 = values[i]
                const += float(row[i]) * c0
                if var is not None:
                    coeffs[var] = coeffs.get(var, 0.0) + float(row[i]) * coef
            for var, coef in coeffs.items():
                ct.SetCoefficient(var, coef)
            ct.SetBounds(-const, -const)
            out.append(z)
        return out

    for item in layers:
        if item[0] == "affine":
            pending = (item[1], item[2])
            continue
        # an activation: its pre-activation is the pending affine map
        if pending is None:
            raise ValueError("activation layers must follow a Linear or Conv2d layer")
        w, b = pending
        pending = None
        low = pre_lower[act].detach().double().reshape(-1).cpu().numpy()
        up = pre_upper[act].detach().double().reshape(-1).cpu().numpy()
        low_w = low - bound_slack * (1.0 + np.abs(low)) - interm_slack[act]
        up_w = up + bound_slack * (1.0 + np.abs(up)) + interm_slack[act]
        # split / stable neurons keep their exact sign constraint
        low_w = np.where(low == 0.0, 0.0, low_w)
        up_w = np.where(up == 0.0, 0.0, up_w)
        if np.any(low_w > up_w):
            return ExactResult(math.inf, None, True, [], True, tol)  # empty region
        zs = affine_vars(w, b, low_w, up_w, f"z{act}")
        z_vars.extend(zs)
        new_values: list[tuple[Any, float, float]] = []
        if item[0] == "graft":
            mask, slope, intercept = item[1], item[2], item[3]
        else:
            mask = np.zeros(len(zs), dtype=bool)
            slope = intercept = np.zeros(len(zs))
        for j, z in enumerate(zs):
            if mask[j]:
                new_values.append((z, float(slope[j]), float(intercept[j])))
            elif low_w[j] >= 0.0:
                new_values.append((z, 1.0, 0.0))
            elif up_w[j] <= 0.0:
                new_values.append((None, 0.0, 0.0))
            else:
                h = solver.NumVar(0.0, float(up_w[j]), f"h{act}_{j}")
                d = solver.BoolVar(f"d{act}_{j}")
                solver.Add(h >= z)
                solver.Add(h <= z - float(low_w[j]) * (1 - d))
                solver.Add(h <= float(up_w[j]) * d)
                new_values.append((h, 1.0, 0.0))
        values = new_values
        act += 1
    if pending is None:
        raise ValueError("the model must end with a Linear layer (the logits)")
    final_affine = pending
    w_out, b_out = final_affine
    n_classes = w_out.shape[0]
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, 0.0)
    margin_row = solver.Constraint(-inf, inf)  # "margin_j <= tolerance" in decide mode
    objective = solver.Objective()
    spec_bounds: list[float] = []
    solved = proved = True

    def solve() -> int | None:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None
        solver.SetTimeLimit(int(max(1, remaining * 1000)))
        return solver.Solve(params)

    def candidate_counterexample() -> torch.Tensor | None:
        candidate = torch.tensor([v.solution_value() for v in input_vars], dtype=torch.float64)
        return checked_counterexample(model, candidate, label, lower, upper)

    order = list(range(n_classes)) if spec_order is None else [int(j) for j in spec_order]
    if sorted(set(order) | {label}) != list(range(n_classes)):
        raise ValueError(f"spec_order must list the classes 0..{n_classes - 1}, got {spec_order}")
    for j in order:
        if j == label:
            continue
        row = w_out[label] - w_out[j]
        const = float(b_out[label] - b_out[j])
        coeffs: dict[Any, float] = {}
        for i, (var, coef, c0) in enumerate(values):
            const += float(row[i]) * c0
            if var is not None:
                coeffs[var] = coeffs.get(var, 0.0) + float(row[i]) * coef
        objective.Clear()
        if decide_only:
            # Feasibility of "margin_j <= tol": infeasible proves margin_j > 0 (tol covers
            # SCIP's feasibility tolerance) without closing the optimality gap.
            margin_row.Clear()
            for var, coef in coeffs.items():
                margin_row.SetCoefficient(var, coef)
                objective.SetCoefficient(var, coef)  # guides SCIP towards violations
            margin_row.SetBounds(-inf, tol - const)
            solver.SetSolverSpecificParametersAsString(scip_numerics + "limits/solutions = 1")
            status = solve()
            solver.SetSolverSpecificParametersAsString(scip_numerics + "limits/solutions = -1")
            cex = (candidate_counterexample() if status in (pywraplp.Solver.OPTIMAL,
                                                            pywraplp.Solver.FEASIBLE)
                   else None)  # read the solution before the model changes again
            margin_row.SetBounds(-inf, inf)
            if status == pywraplp.Solver.INFEASIBLE:
                spec_bounds.append(tol)
                continue
            if status in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
                if cex is not None:
                    return ExactResult(-math.inf, cex, True, spec_bounds + [-math.inf],
                                       False, tol)
            # undecided (time limit) or a point inside the tolerance band: optimise below
            objective.Clear()
        for var, coef in coeffs.items():
            objective.SetCoefficient(var, coef)
        objective.SetOffset(const)
        objective.SetMinimization()
        status = solve()
        if status == pywraplp.Solver.INFEASIBLE:
            return ExactResult(math.inf, None, True, [], True, tol)  # empty region
        if status == pywraplp.Solver.OPTIMAL:
            bound = min(float(objective.BestBound()), float(objective.Value()))
        elif status == pywraplp.Solver.FEASIBLE:
            bound = float(objective.BestBound())
            solved = False
        else:
            bound = -math.inf
            solved = False
        spec_bounds.append(bound)
        proved = proved and bound > tol
        if status in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE) and \
                objective.Value() <= tol:
            cex = candidate_counterexample()
            if cex is not None:
                return ExactResult(min(spec_bounds), cex, solved, spec_bounds, False, tol)
    return ExactResult(min(spec_bounds) if spec_bounds else math.inf, None, solved,
                       spec_bounds, proved, tol)
