"""Branch and bound over unstable ReLUs with beta-CROWN bounds (through auto_LiRPA).

This is the complete verifier of alpha,beta-CROWN {cite}`wang2021betacrown` reduced to what
the book needs. auto_LiRPA 0.3 provides the bounds (alpha-CROWN at the root, beta-CROWN split
constraints in the children); the loop, the domain list and the branching heuristic live in
the alpha,beta-CROWN repository, not in auto_LiRPA, so they are written here.

The property: for the input set ``X = B_inf(x, eps) ∩ [x_min, x_max]`` and the true label
``y``, every margin ``f_y(x') - f_j(x')`` (``j != y``) is positive. The specification matrix
``C`` has shape ``(1, K - 1, K)`` with ``C[0, i, y] = 1`` and ``C[0, i, j_i] = -1``.

Algorithm (Wang et al., 2021, Alg. 1):

1. Root: alpha-CROWN (``init_slope`` + ``CROWN-Optimized``) gives intermediate bounds
   ``[l, u]`` for every pre-activation (each step recomputes them with their own optimised
   alphas and the best bound per neuron is kept; ``optimize_intermediate=False`` keeps
   CROWN's) and a lower bound on each margin. If the minimum is positive, the property
   holds. Margins CROWN already proves are not optimised, and the margins the root proves
   are dropped from the children's bounding calls (``prune_verified_margins``; a
   sub-domain inherits them).
2. A *domain* is a set of split decisions ``z_i >= 0`` (active, sign +1) or ``z_i <= 0``
   (inactive, sign -1) on neurons that are unstable at the root (``l < 0 < u``) and not
   grafted. Its intermediate bounds are the root's with ``l_i = 0`` / ``u_i = 0`` on the
   split neurons (``fix_intermediate_layer_bounds``), and each split enters the bound as a
   Lagrangian term ``beta_i * sign_i * z_i`` (beta-CROWN, Eq. (7) of Wang et al.), with
   ``beta >= 0`` optimised jointly with the lower ReLU slopes alpha.
3. Loop: pop the ``batch_size // 2`` domains with the lowest bounds, pick one neuron each
   with the BaBSR-style intercept score (below; ``branching="fsb"`` compares the best few
   by a real bound of their children), bound all ``batch_size`` children in one batched
   auto_LiRPA call, keep ``max(parent, child)`` per margin (a child is a subset of its
   parent), drop children whose bound is positive. While fewer than ``batch_size // 2``
   domains are open, each parent is split on its ``d`` best neurons at once (``2**d``
   children, :meth:`BranchAndBound.split_depth`) so that the batch is full.
4. A domain with no unstable non-grafted neuron left is piecewise-linear-free: its exact
   minimum margin is a linear program, solved with ortools (:func:`certlab.verification.
   exact_milp.exact_min_margins`); a negative optimum gives a counterexample checked with the
   model itself.

Round-off (:mod:`certlab.verification.numerics`): every bound is computed in float64 on a
float64 twin of the model (the given box converted exactly), and a domain counts as verified
only when its bound exceeds ``max(margin_tolerance, R * (1 + sum of the domain's betas))``,
where ``R`` (:func:`certlab.verification.numerics.roundoff_tolerance`) bounds the round-off of
a float64 bound over the box (betas multiply the split neurons' terms). So "verified" holds
for the network's real-arithmetic function with the stored weights taken exactly.

Branching score (BaBSR, Bunel et al. 2020, intercept part): for an unstable neuron with
bounds ``l < 0 < u`` and coefficient ``a`` of its ReLU output in the lower bound of the worst
margin, the CROWN upper relaxation adds ``min(a, 0) * (-u l / (u - l))`` to the bound;
splitting the neuron removes that term, so we split the neuron with the largest
``|min(a, 0)| * (-u l / (u - l))`` (ties and all-zero scores: the largest ``-u l / (u - l)``).
Grafted neurons are linear and are never candidates.

Budgets: :meth:`BranchAndBound.run` takes a wall-clock ``deadline`` (None: none) and a
deterministic budget ``max_domains`` (domains bounded); the alpha/beta optimisations have a
fixed number of steps (``root_iterations``, ``iterations``). With ``deadline=None`` the run,
and so its verdict, does not depend on the machine's speed (up to float round-off).

Time limits: the deadline of :meth:`BranchAndBound.run` is checked between BaB iterations
and inside every alpha/beta optimisation (auto_LiRPA's ``stop_criterion_func``, called once
per Adam step): an interrupted optimisation returns the best bounds found so far, which are
sound (every alpha in [0, 1] and every beta >= 0 gives a valid bound). The root gets at most
``root_time_share`` of the time left, so that branching has time too; it stops as soon as the
property is proved, and it is skipped entirely when plain CROWN already proves it. The
auto_LiRPA ``BoundedModule`` comes from :func:`certlab.verification.lirpa.
cached_bounded_module` (built once per unchanged model).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from certlab.verification.exact_milp import exact_min_margins
from certlab.verification.lirpa import (bounded_input, cached_bounded_module, grafted_masks,
                                       quiet as _quiet)
from certlab.verification.numerics import (MARGIN_TOLERANCE, float64_default, float64_twin,
                                           model_dtype, roundoff_tolerance)

__all__ = ["BranchAndBound", "BabOutcome", "Domain", "margin_spec"]


#: branching rules: the BaBSR intercept score alone, or filtered smart branching on top.
BRANCHING_RULES = ("babsr", "fsb")


def margin_spec(label: int, n_classes: int) -> torch.Tensor:
    """Specification matrix ``C`` of shape ``(1, K - 1, K)``: row i is ``e_y - e_{j_i}``."""
    others = [j for j in range(n_classes) if j != label]
    spec = torch.zeros(1, len(others), n_classes)
    for row, j in enumerate(others):
        spec[0, row, label] = 1.0
        spec[0, row, j] = -1.0
    return spec


@dataclass
class Domain:
    """One sub-problem of the branch and bound.

    Attributes:
        spec_lower: certified lower bounds of the K - 1 margins on this domain, ``(K - 1,)``.
        splits: per activation layer, a list of ``(flat_index, sign)`` with sign +1 for
            ``z >= 0`` and -1 for ``z <= 0``.
        betas: per activation layer, the optimised beta of each split (same order).
        alphas: per activation layer, the lower ReLU slopes for the final specification,
            ``(2, K - 1, 1, *activation_shape)`` (inherited from the parent as warm start).
        depth: number of splits.
        lA: per layer, the coefficients of the ReLU outputs in the worst margin's lower
            bound (flat), from the bounding pass that created the domain (for branching).
    """

    spec_lower: torch.Tensor
    splits: list[list[tuple[int, int]]]
    betas: list[list[float]]
    alphas: list[torch.Tensor | None]
    depth: int = 0
    lA: list[torch.Tensor] | None = None

    @property
    def lower_bound(self) -> float:
        return float(self.spec_lower.min())


@dataclass
class BabOutcome:
    """What :meth:`BranchAndBound.run` found.

    ``status``: "verified", "falsified" or "timeout" (also when ``max_domains`` or
    ``max_iterations`` is reached; ``detail`` says which); ``lower_bound``: certified lower bound
    on the minimum margin over the input set (the minimum over all leaves; meaningful for
    every status); ``root_lower_bound``: alpha-CROWN's; ``counterexample``: an input of the
    input set with margin <= 0 (checked with the model) or None; ``n_branches``: domains
    bounded (children); ``history``: one dict per iteration (for plots; ``splits`` lists the
    ``(layer, flat_index)`` split in that iteration, one per parent, or several per parent
    while the batch is not full).
    """

    status: str
    lower_bound: float
    root_lower_bound: float
    counterexample: torch.Tensor | None
    n_branches: int
    n_iterations: int
    time: float
    history: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


class BranchAndBound:
    """Branch and bound for one input, label and input box.

    Args:
        model: ``nn.Sequential`` (see :func:`certlab.verification.lirpa.check_model`); it is
            bounded through its float64 twin, counterexamples are checked with both.
        x: the input, ``(1, *input_shape)``.
        label: the true class.
        lower, upper: the input box, ``(1, *input_shape)`` (converted to float64 exactly; pass
            :func:`certlab.verification.numerics.real_box` for the real L-infinity ball).
        batch_size: domains bounded per auto_LiRPA call (children of ``batch_size // 2``
            parents).
        root_iterations, iterations: Adam steps of alpha-CROWN at the root and of
            alpha/beta-CROWN per batch.
        lr_alpha, lr_beta: learning rates of alpha and beta.
        margin_tolerance: absolute floor of the certification threshold; a domain counts as
            verified only when its bound exceeds the larger of this and the round-off
            tolerance (see the module docstring; :attr:`tol` is the root's threshold).
        root_time_share: in :meth:`run`, the share of the time left that the root's
            alpha-CROWN may use before it is stopped (with its best bound so far).
        optimize_intermediate: the root's alpha-CROWN re-computes every intermediate bound
            at each step with its own optimised alphas and keeps each neuron's best bound
            (full alpha-CROWN, as alpha,beta-CROWN does at the root); False: the
            intermediate bounds stay CROWN's and only the margins' alphas are optimised
            (each step is one backward pass from the output: much cheaper on CNNs, looser).
        prune_verified_margins: in :meth:`run`, optimise the root's alphas only for the
            margins CROWN leaves unproved, and bound the children only on the margins the
            root leaves unproved (:meth:`_prune_margins`).
        max_split_depth: at most this many neurons split at once per parent while few
            domains are open (:meth:`split_depth`); 1 = one split per parent always.
        branching: "babsr" (the intercept score, module docstring) or "fsb" (filtered smart
            branching: the best ``fsb_candidates`` neurons by that score are compared by a
            real bound of their children, :meth:`filter_candidates`).
        fsb_candidates: neurons compared per parent by "fsb".
        early_stop: stop optimising a child once its bound proves it, and the whole batch
            once every child is proved (:meth:`_stop_criterion`).
    """

    def __init__(self, model: nn.Sequential, x: torch.Tensor, label: int,
                 lower: torch.Tensor, upper: torch.Tensor, *, batch_size: int = 64,
                 root_iterations: int = 20, iterations: int = 10, lr_alpha: float = 0.1,
                 lr_beta: float = 0.05, margin_tolerance: float = MARGIN_TOLERANCE,
                 root_time_share: float = 0.5, optimize_intermediate: bool = True,
                 prune_verified_margins: bool = True, max_split_depth: int = 6,
                 branching: str = "babsr", fsb_candidates: int = 3,
                 early_stop: bool = True) -> None:
        for name, value, low in (("batch_size", batch_size, 2),
                                 ("root_iterations", root_iterations, 1),
                                 ("iterations", iterations, 1),
                                 ("max_split_depth", max_split_depth, 1),
                                 ("fsb_candidates", fsb_candidates, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (math.isfinite(margin_tolerance) and margin_tolerance >= 0):
            raise ValueError(f"margin_tolerance must be finite and >= 0, got "
                             f"{margin_tolerance!r}")
        self.model = model
        self.model64 = float64_twin(model)
        self.dtype = model_dtype(model)
        self.x = x.detach().double()
        self.lower, self.upper = lower.detach().double(), upper.detach().double()
        self.label = int(label)
        self.batch_size = int(batch_size)
        self.root_iterations = int(root_iterations)
        self.iterations = int(iterations)
        self.lr_alpha, self.lr_beta = float(lr_alpha), float(lr_beta)
        self.max_split_depth = int(max_split_depth)
        if branching not in BRANCHING_RULES:
            raise ValueError(f"branching must be one of {list(BRANCHING_RULES)}, got "
                             f"{branching!r}")
        self.branching = branching
        self.fsb_candidates = int(fsb_candidates)
        if not isinstance(early_stop, bool):
            raise TypeError(f"early_stop must be True or False, got {early_stop!r}")
        self.early_stop = early_stop
        self.margin_tolerance = float(margin_tolerance)
        #: round-off bound of one float64 margin bound over the box (before betas).
        self.roundoff = roundoff_tolerance(self.model64, self.lower, self.upper)
        self.tol = max(self.margin_tolerance, self.roundoff)
        if not 0.0 < float(root_time_share) <= 1.0:
            raise ValueError(f"root_time_share must lie in (0, 1], got {root_time_share!r}")
        self.root_time_share = float(root_time_share)
        if not isinstance(optimize_intermediate, bool):
            raise TypeError(f"optimize_intermediate must be True or False, got "
                            f"{optimize_intermediate!r}")
        self.optimize_intermediate = optimize_intermediate
        if not isinstance(prune_verified_margins, bool):
            raise TypeError(f"prune_verified_margins must be True or False, got "
                            f"{prune_verified_margins!r}")
        self.prune_verified_margins = prune_verified_margins
        with torch.no_grad():
            self.n_classes = int(self.model64(self.x).shape[-1])
        self.C = margin_spec(self.label, self.n_classes).to(self.x)
        #: the margins (rows of ``C``) the children are bounded on: all of them until
        #: :meth:`run` drops those the root already proves.
        self.branch_rows = torch.arange(self.n_classes - 1)
        self._acquire_net()
        self.root_lower: list[torch.Tensor] = []
        self.root_upper: list[torch.Tensor] = []
        self.root_bound: float | None = None
        self.root_crown_bound: float | None = None
        #: whether the last root computation was cut short by its deadline.
        self.root_interrupted = False

    # ----------------------------------------------------------------------------------
    # Bounds
    # ----------------------------------------------------------------------------------

    def threshold(self, betas: list[list[float]] | None = None) -> float:
        """Certification threshold of a domain with these split betas (see the module
        docstring): ``max(margin_tolerance, roundoff * (1 + sum |beta|))``."""
        total = sum(abs(b) for layer in (betas or []) for b in layer)
        return float(self._threshold_of_beta_sum(torch.tensor(total, dtype=torch.float64)))

    def _threshold_of_beta_sum(self, total: torch.Tensor) -> torch.Tensor:
        """``max(margin_tolerance, roundoff * (1 + total))`` elementwise, ``total`` the sum
        of a domain's ``|beta|`` (any shape): the one formula :meth:`threshold` and the
        stop criterion share."""
        return torch.clamp(self.roundoff * (1.0 + total), min=self.margin_tolerance)

    def _acquire_net(self) -> None:
        """Take the float64 twin's BoundedModule from the cache (rebuilt if the model
        changed), reset to its freshly built state."""
        conv = any(isinstance(m, nn.Conv2d) for m in self.model)
        opts = {"conv_mode": "patches"} if conv else {}
        with _quiet(), float64_default():
            self.net = cached_bounded_module(self.model64, self.x, bound_opts=opts)
        self.relus = list(self.net.relus)
        self.final_name = self.net.final_name
        self.grafted = [None if g is None else g.reshape(-1) for g in grafted_masks(self.model)]

    def _stop_criterion(self, deadline: float | None, stop_when_verified: bool,
                        flag: list[bool], split_betas: bool = False):
        """auto_LiRPA stop criterion, called once per optimisation step with the current
        bounds ``(B, rows)``: stop all domains once ``deadline`` has passed (sets
        ``flag[0]``); with ``stop_when_verified``, stop optimising each domain whose bound
        already exceeds its threshold (auto_LiRPA then drops it from the loss, and ends the
        optimisation when every domain is verified). The threshold is ``tol``, or with
        ``split_betas`` (children) ``max(margin_tolerance, roundoff * (1 + sum |beta|))``
        from the betas being optimised (:meth:`threshold`), so a domain stopped here is one
        :meth:`run` will close. Returning all-False leaves the optimisation exactly as
        without it."""

        def stop(lb: torch.Tensor) -> torch.Tensor:
            batch = lb.shape[0]
            if deadline is not None and time.perf_counter() >= deadline:
                flag[0] = True
                return torch.ones(batch, 1, dtype=torch.bool, device=lb.device)
            if not stop_when_verified:
                return torch.zeros(batch, 1, dtype=torch.bool, device=lb.device)
            threshold = torch.full((batch,), self.tol, dtype=lb.dtype, device=lb.device)
            if split_betas:
                total = torch.zeros(batch, dtype=lb.dtype, device=lb.device)
                for m in self.relus:
                    beta = getattr(m, "sparse_beta", None)
                    if isinstance(beta, torch.Tensor) and beta.shape[0] == batch:
                        total = total + beta.detach().abs().sum(dim=1)
                threshold = self._threshold_of_beta_sum(total)
            return (lb.detach().min(dim=1).values > threshold).unsqueeze(1)

        return stop

    def root(self, deadline: float | None = None, *, crown_shortcut: bool = False
             ) -> Domain:
        """alpha-CROWN at the root; stores the intermediate bounds; returns the root domain.

        Args:
            deadline: ``time.perf_counter()`` value at which the alpha optimisation stops
                with its best bound so far (``root_interrupted`` is then True); None: run
                all ``root_iterations``.
            crown_shortcut: return CROWN's bound without optimising when it already proves
                the property, and stop the optimisation as soon as it does (for BaB, where
                only the sign matters; the "alpha-crown" method reports the optimised bound).
        """
        with float64_default():
            return self._root(deadline, crown_shortcut)

    def _root(self, deadline: float | None, crown_shortcut: bool) -> Domain:
        self.root_interrupted = False
        self.branch_rows = torch.arange(self.n_classes - 1)
        self._acquire_net()  # another BranchAndBound on this model may have used the module
        bx = bounded_input(self.x, self.lower, self.upper)
        with _quiet():
            crown_lb, _, aux = self.net.init_slope((bx,), share_slopes=False, c=self.C,
                                                   bound_upper=False)
        self.root_crown_bound = float(crown_lb.min())
        n_layers = len(self.relus)
        alphas = [m.alpha[self.final_name].detach().clone() if self.final_name in m.alpha
                  else None for m in self.relus]
        lb = crown_lb.detach()[0].clone()
        # the rows whose lA the relus hold after the last bound (indices into the margins)
        lA_rows = torch.arange(self.n_classes - 1)
        if not (crown_shortcut and self.root_crown_bound > self.tol):
            # With the shortcut (BaB) and prune_verified_margins, margins CROWN already
            # proves are not optimised: the cost of every alpha step grows with the rows of C.
            rows = (torch.nonzero(lb <= self.tol).flatten()
                    if crown_shortcut and self.prune_verified_margins
                    else torch.arange(self.n_classes - 1))
            for m, alpha in zip(self.relus, alphas):
                if alpha is not None:
                    m.alpha[self.final_name] = alpha[:, rows].clone().requires_grad_()
            # CROWN's intermediate bounds, kept fixed unless optimize_intermediate
            fixed = (None if self.optimize_intermediate else
                     {m.inputs[0].name: [m.inputs[0].lower.detach(),
                                         m.inputs[0].upper.detach()] for m in self.relus})
            flag = [False]
            self.net.set_bound_opts({"optimize_bound_args": {
                "iteration": self.root_iterations, "lr_alpha": self.lr_alpha,
                "enable_beta_crown": False, "init_alpha": False,
                "fix_intermediate_layer_bounds": not self.optimize_intermediate,
                "stop_criterion_func": self._stop_criterion(deadline, crown_shortcut, flag)}})
            with _quiet():
                opt_lb, _ = self.net.compute_bounds(
                    x=(bx,), C=self.C[:, rows], method="CROWN-Optimized", bound_upper=False,
                    aux_reference_bounds=aux, intermediate_layer_bounds=fixed)
            self.root_interrupted = flag[0]
            lb[rows] = torch.maximum(opt_lb.detach()[0], lb[rows])
            for k, m in enumerate(self.relus):
                if alphas[k] is not None and self.final_name in m.alpha:
                    alphas[k][:, rows] = m.alpha[self.final_name].detach()
            lA_rows = rows
        self.root_lower = [m.inputs[0].lower.detach().clone() for m in self.relus]
        self.root_upper = [m.inputs[0].upper.detach().clone() for m in self.relus]
        # the intermediate bounds actually used enter the round-off bound too
        self.roundoff = roundoff_tolerance(self.model64, self.lower, self.upper,
                                           extra=self.root_lower + self.root_upper)
        self.tol = max(self.margin_tolerance, self.roundoff)
        self.root_bound = float(lb.min())
        worst = torch.nonzero(lA_rows == int(lb.argmin())).flatten()
        lAs = [m.lA.detach()[int(worst[0]), 0].reshape(-1)
               if isinstance(getattr(m, "lA", None), torch.Tensor) and worst.numel() else
               torch.zeros(m.inputs[0].lower[0].numel(), device=self.x.device)
               for m in self.relus]
        return Domain(lb, [[] for _ in range(n_layers)], [[] for _ in range(n_layers)],
                      alphas, 0, lAs)

    def _prune_margins(self, root: Domain) -> None:
        """Bound the children only on the margins the root leaves unproved.

        A margin whose root bound exceeds the root's threshold ``tol`` holds on the whole
        input set, hence on every sub-domain: children keep the root's value for it (their
        ``spec_lower`` stays ``(K - 1,)``, so ``Domain.lower_bound`` is unchanged in meaning)
        and the bounding calls use the remaining rows of ``C`` only, which makes every
        backward pass cheaper by the share of rows dropped. The root's alphas are cut to
        those rows (their second dimension indexes the rows of ``C``).
        """
        rows = torch.nonzero(root.spec_lower <= self.tol).flatten()
        self.branch_rows = rows
        root.alphas = [None if a is None else a[:, rows].clone() for a in root.alphas]

    def domain_bounds(self, domain: Domain) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Intermediate bounds of a domain: the root's with the split neurons tightened."""
        lows, ups = [], []
        for k in range(len(self.relus)):
            low = self.root_lower[k].clone().reshape(-1)
            up = self.root_upper[k].clone().reshape(-1)
            for idx, sign in domain.splits[k]:
                if sign > 0:
                    low[idx] = 0.0
                else:
                    up[idx] = 0.0
            lows.append(low.reshape(self.root_lower[k].shape))
            ups.append(up.reshape(self.root_upper[k].shape))
        return lows, ups

    def unstable_candidates(self, domain: Domain) -> list[torch.Tensor]:
        """Per layer, the flat mask of neurons that can still be split in this domain."""
        lows, ups = self.domain_bounds(domain)
        masks = []
        for k, (low, up) in enumerate(zip(lows, ups)):
            mask = ((low < 0) & (up > 0)).reshape(-1)
            if self.grafted[k] is not None:
                mask = mask & ~self.grafted[k]
            masks.append(mask)
        return masks

    def bound_domains(self, parents: list[Domain], children: list[tuple[int, list, list]],
                      deadline: float | None = None, iterations: int | None = None
                      ) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """Bound a batch of children with beta-CROWN (the optimisation stops at
        ``deadline`` with its best, still sound, bounds).

        ``children[b] = (parent_index, splits, betas)``. Returns the margins' lower bounds
        ``(B, K - 1)`` (already max'ed with the parent's) and, per child, the per-layer
        ``lA`` (coefficients of each ReLU output in the worst margin's lower bound, flat).
        Stores optimised alphas and betas into the returned domains via ``self._last``.
        ``iterations``: alpha/beta steps (None: ``self.iterations``; 1: no optimisation,
        the bound with the parents' alphas and betas and a zero beta for each new split,
        as used to compare branching candidates).
        """
        with float64_default():
            return self._bound_domains(parents, children, deadline,
                                       self.iterations if iterations is None else iterations)

    def _bound_domains(self, parents: list[Domain], children: list[tuple[int, list, list]],
                       deadline: float | None, iterations: int
                       ) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        batch = len(children)
        x = self.x.expand(batch, *self.x.shape[1:])
        lo = self.lower.expand(batch, *self.lower.shape[1:])
        up = self.upper.expand(batch, *self.upper.shape[1:])
        rows = self.branch_rows
        spec = self.C[:, rows].expand(batch, -1, -1)
        interm: dict[str, list[torch.Tensor]] = {}
        for k, m in enumerate(self.relus):
            low = self.root_lower[k].expand(batch, *self.root_lower[k].shape[1:]).clone()
            upp = self.root_upper[k].expand(batch, *self.root_upper[k].shape[1:]).clone()
            flat_low, flat_up = low.view(batch, -1), upp.view(batch, -1)
            n_split = max(len(c[1][k]) for c in children)
            beta = torch.zeros(batch, n_split)
            loc = torch.zeros(batch, n_split, dtype=torch.int64)
            sign = torch.zeros(batch, n_split)
            for b, (_, splits, betas) in enumerate(children):
                for s, ((idx, sgn), bval) in enumerate(zip(splits[k], betas[k])):
                    if sgn > 0:
                        flat_low[b, idx] = 0.0
                    else:
                        flat_up[b, idx] = 0.0
                    beta[b, s], loc[b, s], sign[b, s] = bval, idx, float(sgn)
            interm[m.inputs[0].name] = [low, upp]
            m.sparse_beta = beta.to(x).requires_grad_()
            m.sparse_beta_loc = loc.to(x.device)
            m.sparse_beta_sign = sign.to(x)
            parent_alpha = [parents[c[0]].alphas[k] for c in children]
            if all(a is not None for a in parent_alpha):
                m.alpha = {self.final_name: torch.cat(parent_alpha, dim=2).requires_grad_()}
        self.net.set_bound_opts({
            "optimize_bound_args": {
                "iteration": iterations, "lr_alpha": self.lr_alpha,
                "lr_beta": self.lr_beta, "enable_beta_crown": True,
                "enable_alpha_crown": True, "single_node_split": True, "init_alpha": False,
                "fix_intermediate_layer_bounds": True,
                "stop_criterion_func": self._stop_criterion(
                    deadline, self.early_stop, [False], split_betas=True)},
            "enable_opt_interm_bounds": False})
        bx = bounded_input(x, lo, up)
        with _quiet():
            lb, _ = self.net.compute_bounds(x=(bx,), C=spec, method="CROWN-Optimized",
                                            bound_upper=False, intermediate_layer_bounds=interm)
        parent_lb = torch.stack([parents[c[0]].spec_lower for c in children])
        active_lb = torch.maximum(lb.detach(), parent_lb[:, rows])
        worst = active_lb.argmin(dim=1)  # index into ``rows`` (the rows of ``spec``)
        lb = parent_lb.clone()
        lb[:, rows] = active_lb
        lAs: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        new_alphas: list[list[torch.Tensor | None]] = [[] for _ in range(batch)]
        new_betas: list[list[list[float]]] = [[] for _ in range(batch)]
        for k, m in enumerate(self.relus):
            la = m.lA.detach() if isinstance(getattr(m, "lA", None), torch.Tensor) else None
            alpha = m.alpha.get(self.final_name) if isinstance(m.alpha, dict) else None
            betas_k = m.sparse_beta.detach()
            for b in range(batch):
                if la is not None and la.shape[1] == batch:
                    lAs[b].append(la[worst[b], b].reshape(-1))
                else:
                    lAs[b].append(torch.zeros_like(self.root_lower[k]).reshape(-1))
                new_alphas[b].append(None if alpha is None
                                     else alpha[:, :, b:b + 1].detach().clone())
                new_betas[b].append(betas_k[b, :len(children[b][1][k])].tolist())
        self._last = (new_alphas, new_betas)
        return lb, lAs

    # ----------------------------------------------------------------------------------
    # Branching
    # ----------------------------------------------------------------------------------

    def neuron_scores(self, domain: Domain, lAs: list[torch.Tensor] | None
                      ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Branching scores of every neuron of the domain, flattened over the layers.

        Returns ``(score, gap, offsets)``: ``score`` is the BaBSR intercept score
        ``|min(a, 0)| * (-u l / (u - l))`` (module docstring) and ``gap`` the intercept
        ``-u l / (u - l)`` alone, both ``(N,)`` over the concatenated activation layers
        with ``-1`` where a neuron cannot be split (stable, already split or grafted);
        ``offsets[k]`` is where layer ``k`` starts.
        """
        lows, ups = self.domain_bounds(domain)
        scores, gaps, offsets, offset = [], [], [], 0
        for k, (low, up) in enumerate(zip(lows, ups)):
            low, up = low.reshape(-1), up.reshape(-1)
            mask = (low < 0) & (up > 0)
            if self.grafted[k] is not None:
                mask = mask & ~self.grafted[k]
            gap = torch.where(mask, -up * low / (up - low).clamp(min=1e-12),
                              torch.full_like(low, -1.0))
            score = (lAs[k].clamp(max=0).abs() * gap if lAs is not None
                     else torch.zeros_like(gap))
            scores.append(torch.where(mask, score, torch.full_like(score, -1.0)))
            gaps.append(gap)
            offsets.append(offset)
            offset += low.numel()
        return torch.cat(scores), torch.cat(gaps), offsets

    def choose_neurons(self, domain: Domain, lAs: list[torch.Tensor] | None, count: int
                       ) -> list[tuple[int, int]]:
        """Up to ``count`` distinct neurons to split, best first, as ``(layer, flat_index)``.

        Neurons with a positive BaBSR score come first (largest score first), then the
        remaining splittable neurons by their intercept ``-u l / (u - l)`` (the score is
        zero when the worst margin's coefficient does not penalise the neuron). An empty
        list: no unstable non-grafted neuron is left (the domain is a linear program).
        """
        score, gap, offsets = self.neuron_scores(domain, lAs)
        splittable = gap >= 0
        n = int(splittable.sum())
        if n == 0:
            return []
        # positive scores first, then by gap: one key (scores are >= 0 where splittable)
        positive = score > 0
        key = torch.where(positive, score + float(gap.max()) + 1.0, gap)
        key = torch.where(splittable, key, torch.full_like(key, -math.inf))
        order = torch.argsort(key, descending=True, stable=True)[:min(count, n)]
        bounds = torch.tensor(offsets[1:] + [score.numel()])
        chosen = []
        for flat in order.tolist():
            k = int(torch.searchsorted(bounds, flat, right=True))
            chosen.append((k, flat - offsets[k]))
        return chosen

    def filter_candidates(self, parents: list[Domain], candidates: list[list[tuple[int, int]]],
                          deadline: float | None) -> list[list[tuple[int, int]]]:
        """Filtered smart branching: per parent, the candidate whose worse child is best.

        ``candidates[p]`` are parent ``p``'s best neurons by the BaBSR score
        (:meth:`choose_neurons`). Both children of every candidate are bounded in one
        batched call without optimisation (the parent's alphas and betas, a zero beta for
        the new split: :meth:`bound_domains` with ``iterations=1``), and the candidate
        maximising ``min(bound of the z >= 0 child, bound of the z <= 0 child)`` is kept
        (ties: the earlier, i.e. higher-scored, candidate). This is the filtered smart
        branching of De Palma et al. (2021) used by alpha,beta-CROWN: the score only
        filters, a real bound decides. Returns one-element lists.
        """
        trial: list[tuple[int, list, list]] = []
        owners: list[tuple[int, int]] = []
        for pi, (parent, cands) in enumerate(zip(parents, candidates)):
            for ci, neuron in enumerate(cands):
                trial += self.children_of(parent, pi, [neuron])  # z >= 0 child, then z <= 0
                owners.append((pi, ci))
        lb, _ = self.bound_domains(parents, trial, deadline, iterations=1)
        worse_child = lb.min(dim=1).values.view(-1, 2).min(dim=1).values
        best: list[tuple[float, int]] = [(-math.inf, 0)] * len(parents)
        for (pi, ci), value in zip(owners, worse_child.tolist()):
            if value > best[pi][0]:
                best[pi] = (value, ci)
        return [[cands[ci]] for cands, (_, ci) in zip(candidates, best)]

    @staticmethod
    def children_of(parent: Domain, parent_index: int, neurons: list[tuple[int, int]]
                    ) -> list[tuple[int, list, list]]:
        """The ``2**len(neurons)`` children of ``parent`` split on every ``(layer, index)`` of
        ``neurons`` both ways, as ``(parent_index, splits, betas)``: the parent's splits plus
        ``(index, +1)`` (``z >= 0``) or ``(index, -1)`` (``z <= 0``) per neuron, each new
        split with beta 0 (in ``itertools.product((+1, -1), ...)`` order)."""
        children = []
        for signs in itertools.product((+1, -1), repeat=len(neurons)):
            splits = [list(layer) for layer in parent.splits]
            betas = [list(layer) for layer in parent.betas]
            for (k, idx), sign in zip(neurons, signs):
                splits[k].append((idx, sign))
                betas[k].append(0.0)
            children.append((parent_index, splits, betas))
        return children

    def split_depth(self, n_parents: int, room: int) -> int:
        """Neurons split at once per parent: the largest ``d <= max_split_depth`` with
        ``n_parents * 2**d <= room`` (at least 1).

        While few domains are open (the first iterations), splitting each parent on its
        ``d`` best neurons at once fills the batch with ``2**d`` children per parent, so the
        tree grows ``d`` levels per bounding call instead of one (the batch costs about the
        same; alpha,beta-CROWN does the same with its "split depth"). Every child is a
        subset of its parent with all ``d`` splits as beta-CROWN constraints, so soundness
        is as for single splits.
        """
        depth = 1
        while depth < self.max_split_depth and n_parents * 2 ** (depth + 1) <= room:
            depth += 1
        return depth

    def choose_neuron(self, domain: Domain, lAs: list[torch.Tensor] | None
                      ) -> tuple[int, int] | None:
        """The best neuron to split (:meth:`choose_neurons` with ``count=1``), or None when
        no unstable non-grafted neuron is left."""
        chosen = self.choose_neurons(domain, lAs, 1)
        return chosen[0] if chosen else None

    # ----------------------------------------------------------------------------------
    # Main loop
    # ----------------------------------------------------------------------------------

    def run(self, deadline: float | None, *, max_iterations: int | None = None,
            max_domains: int | None = None, max_history: int = 10_000) -> BabOutcome:
        """Run until verified, falsified, or a budget is spent.

        Args:
            deadline: ``time.perf_counter()`` value at which to stop (None: no wall-clock
                limit; the root then runs all its alpha steps).
            max_iterations: at most this many batched bounding calls (None: no limit).
            max_domains: at most this many domains bounded (``n_branches <= max_domains``;
                the last batch is cut to fit; None: no limit). A deterministic budget: with
                ``deadline=None`` the outcome does not depend on the machine's speed.

        Reaching any limit with open domains gives status "timeout" (never "verified"), with
        ``detail`` naming the limit.
        """
        for name, value in (("max_iterations", max_iterations), ("max_domains", max_domains)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise ValueError(f"{name} must be None or an integer >= 0, got {value!r}")
        start = time.perf_counter()
        root_deadline = (None if deadline is None else
                         start + self.root_time_share * max(0.0, deadline - start))
        root = self.root(root_deadline, crown_shortcut=True)
        history: list[dict[str, Any]] = [{
            "iteration": 0, "open_domains": 1, "lower_bound": root.lower_bound,
            "verified_leaves": 0, "branches": 0, "time": time.perf_counter() - start,
            "splits": []}]
        if root.lower_bound > self.tol:
            return BabOutcome("verified", root.lower_bound, root.lower_bound, None, 0, 0,
                              time.perf_counter() - start, history)
        if self.prune_verified_margins:
            self._prune_margins(root)
        open_domains = [root]
        min_leaf = math.inf
        n_branches, iteration, n_verified = 0, 0, 0
        undecided = 0
        stop_reason = ""

        def leaf_time_limit() -> float:
            return 600.0 if deadline is None else max(0.1, deadline - time.perf_counter())

        while open_domains:
            if deadline is not None and time.perf_counter() >= deadline:
                stop_reason = "time limit reached"
                break
            if max_iterations is not None and iteration >= max_iterations:
                stop_reason = "iteration limit reached"
                break
            n_parents = max(1, self.batch_size // 2)
            if max_domains is not None:
                n_parents = min(n_parents, (max_domains - n_branches) // 2)
                if n_parents < 1:
                    stop_reason = "domain limit reached"
                    break
            open_domains.sort(key=lambda d: d.lower_bound)
            parents, rest = open_domains[:n_parents], open_domains[n_parents:]
            room = (self.batch_size if max_domains is None else
                    min(self.batch_size, max_domains - n_branches))
            depth = self.split_depth(len(parents), room)
            children: list[tuple[int, list, list]] = []
            chosen = []
            kept_parents: list[Domain] = []
            n_candidates = (self.fsb_candidates if self.branching == "fsb" and depth == 1
                            else depth)
            for parent in parents:
                decisions = self.choose_neurons(parent, parent.lA, n_candidates)
                if not decisions:
                    # No split left: the domain is a linear program, solve it exactly.
                    lows, ups = self.domain_bounds(parent)
                    exact = exact_min_margins(
                        self.model, self.x, self.label, self.lower, self.upper, lows, ups,
                        time_limit=leaf_time_limit(), tolerance=self.threshold(parent.betas))
                    if exact.counterexample is not None:
                        return BabOutcome("falsified", min(min_leaf, exact.lower_bound,
                                                           *(d.lower_bound for d in parents),
                                                           *(d.lower_bound for d in rest)),
                                          root.lower_bound, exact.counterexample,
                                          n_branches, iteration,
                                          time.perf_counter() - start, history,
                                          "counterexample from the exact LP of a leaf")
                    if not exact.proved:
                        undecided += 1
                    min_leaf = min(min_leaf, exact.lower_bound)
                    continue
                kept_parents.append(parent)
                chosen.append(decisions)
            if n_candidates > depth and kept_parents:
                chosen = self.filter_candidates(kept_parents, chosen, deadline)
            for pi, (parent, decisions) in enumerate(zip(kept_parents, chosen)):
                children += self.children_of(parent, pi, decisions)
            open_domains = rest
            if not children:
                continue
            lb, lAs = self.bound_domains(kept_parents, children, deadline)
            new_alphas, new_betas = self._last
            n_branches += len(children)
            iteration += 1
            for b, (pi, splits, _) in enumerate(children):
                child = Domain(lb[b], splits, new_betas[b], new_alphas[b],
                               sum(len(layer) for layer in splits), lAs[b])
                if child.lower_bound > self.threshold(child.betas):
                    min_leaf = min(min_leaf, child.lower_bound)
                    n_verified += 1
                else:
                    open_domains.append(child)
            if len(history) < max_history:
                current = min([min_leaf] + [d.lower_bound for d in open_domains])
                history.append({
                    "iteration": iteration, "open_domains": len(open_domains),
                    "lower_bound": current, "branches": n_branches,
                    "verified_leaves": n_verified,
                    "time": time.perf_counter() - start,
                    "splits": [d for decisions in chosen for d in decisions]})
        elapsed = time.perf_counter() - start
        current = min([min_leaf] + [d.lower_bound for d in open_domains])
        if not open_domains and undecided == 0:
            return BabOutcome("verified", current, root.lower_bound, None, n_branches,
                              iteration, elapsed, history)
        detail = (stop_reason if open_domains else
                  f"{undecided} leaf LP(s) within the numerical tolerance")
        return BabOutcome("timeout", current, root.lower_bound, None, n_branches, iteration,
                          elapsed, history, detail)
