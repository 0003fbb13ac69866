"""The exact label-flip certificate as a mixed-integer linear program (Sabanayagam et al., 2025).

Bilevel problem: the attacker picks perturbed labels y~ within k flips, the learner re-trains
(bias-free SVM dual, Eq. 3 of the paper), the attacker wants the test prediction changed.
Replacing the inner SVM by its KKT conditions (necessary and sufficient: the dual is convex)
gives a single-level MILP (the paper's Eq. 6-8, Theorem 1). Per one-vs-rest model, with
alpha = a / C in [0, 1] and signed duals beta = C (2 q - alpha), q = [y~ = +1] * alpha:

    g_i   = sum_j K_ij beta_j                         (= f(x_i), |g_i| <= G_i)
    h_i   = y~_i g_i = 2 p_i - g_i,   p_i = [y~_i = +1] g_i        (exact McCormick, binary)
    h_i - u_i + v_i = 1                                (stationarity, Eq. 6)
    u_i <= M_u,i s_i,  alpha_i <= 1 - s_i               (a_i = 0 or u_i = 0)
    v_i <= M_v,i t_i,  alpha_i >= t_i                   (a_i = C or v_i = 0)
    M_u,i = max(0, G_i - 1),   M_v,i = G_i + 1          (per-instance big-M, see below)
    sum_i alpha_i >= sum_i v_i                          (||w||^2 >= 0, a valid cut)
    sum_i [y~_i != y_i] <= k                           (budget, Eq. 8)

Deviation from the paper, equivalent and exact: the paper linearises the m x m products
Z'_ij = y~_i y~_j a_j; we linearise the m products y~_j a_j (q) and the m products y~_i g_i
(p) instead, which is the same constraint set with O(m) instead of O(m^2) auxiliary variables
(every product is binary x bounded continuous, linearised exactly by McCormick).

Multi-class (exact): one copy of the structure per one-vs-rest class c, with y~^c_i =
2 pi_ic - 1 and one-hot pi_i (each training point has exactly one label); a flip is
pi_{i, y_i} = 0. Kernel ridge regression: f(x) = W_x . y~ (W = K_test (K + ridge I)^-1) is
linear in the label variables, so the MILP has only the label binaries; so is the SVM in its
linear regime C max_i sum_j |K_ij| <= 1 (every dual variable at C for every labelling, the
regime of ScaLabelCert), where we use f(x) = C sum_j y~_j K(x, x_j) instead of the KKT block.

Deciding instead of optimising (issue 14). A certificate only needs the SIGN of the worst-case
margin, and most of the work is cheaper than a MILP:

1. exact enumeration of the small flip sets (every labelling within ``PRESOLVE_ENUM_LIMIT``
   re-trainings, smallest sizes first): decides every test point whose fewest flips are that
   small, and proves "no smaller flip set works" for the others;
2. a greedy beam attack (extend the most damaging flip sets by one flip, re-train exactly)
   gives a verified upper bound U on the fewest flips;
3. only the gap is left to the MILP, as a FEASIBILITY problem: "some flip set of size in
   [L, U - 1] gives margin <= slack" (stopped at the first solution); infeasible proves U,
   a witness is re-trained and lowers U; the model is reused while U decreases.

Per-instance big-M (valid at every KKT point, so no bilevel solution is cut off). G_i is the
smallest of (a) the paper's C sum_j |K_ij|; (b) sqrt(K_ii C m) (K is PSD and ||w||^2 <= C m at
every KKT point); (c) |g°_i| + sqrt(K_ii) D_k, where g° is the clean fit and D_k bounds the
movement of the weight vector under any k flips: the primal is 1-strongly convex, so with the
clean duals beta° (feasible for y), beta~ = beta° with the flipped entries zeroed (feasible for
y~) and weak duality, ||w~ - w°||^2 <= 2 (P_y~(w°) - D_y~(beta~)) = 2 gap° + 2 sum_{i in S}
[C (l(-a_i) - l(a_i)) + |beta°_i| (1 - a_i)] + beta°_S^T K beta°_S with a_i = y_i g°_i and
l the hinge; we take the k largest terms and Cauchy-Schwarz for the quadratic one. The same
ranges fix the complementarity binaries where they decide (e.g. a_i - sqrt(K_ii) D_k > 1 means
a kept label i has alpha_i = 0).

Numerical safety (a wrong "certified" is the worst bug): every quantity is scaled by
lambda = max(1, C), so that the rows are O(1) up to the stationarity constant 1/lambda; when
1/lambda is below ``NUMERIC_RESOLUTION`` (times the kernel's row sums) the MILP cannot
resolve the KKT conditions in floating point and its answers are not used ("unknown" unless
enumeration or a verified attack decides). "Prediction changed" is written with a slack,
margin <= MILP_MARGIN_RTOL * scale, so the MILP is *more* permissive than the exact problem;
test points whose clean margin is within 10 slacks are left to the exact methods. Every
witness the solver returns is re-trained exactly
(:func:`certlab.poisoning.enumeration.perturbed_scores`) and, if it does not change the
prediction in truth, excluded by a no-good cut and the MILP re-solved.

Limits. ``time_limit`` is WALL-CLOCK time: on a loaded machine a solve that normally finishes
can run out of time and turn into "unknown" (never into a certificate). ``node_limit`` is a
deterministic work limit (branch-and-bound nodes, HiGHS ``mip_max_nodes`` / SCIP
``limits/nodes``): with it, the same instance gives the same answer whatever the load.
Prefer ``node_limit``; use ``time_limit`` only as a safety net.

Solver: ortools MathOpt with HiGHS (default) or SCIP, MIP gaps 0, feasibility tolerance 1e-9,
fixed random seed. HiGHS writes debugging lines to the C-level stdout that its output flag
does not silence; file descriptor 1 is redirected to /dev/null around every solve.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from ortools.math_opt.python import mathopt

from certlab.poisoning.enumeration import (clean_state, count_flip_sets, iter_flipped_labelings,
                                           perturbed_scores)
from certlab.poisoning.svm import ovr_labels, prediction_margins, svm_duality_gap

__all__ = [
    "MILP_MARGIN_RTOL",
    "CERT_MARGIN_RTOL",
    "MILPOutcome",
    "LabelFlipMILP",
    "flip_radius",
    "milp_min_flips",
    "milp_worst_margin",
    "milp_collective",
    "milp_collective_curve",
]

#: Slack (relative to the score scale) with which the MILP counts a prediction as changed.
MILP_MARGIN_RTOL = 1e-7
#: A per-budget certificate needs a proven worst-case margin above this (relative) value.
CERT_MARGIN_RTOL = 1e-7
#: Feasibility tolerance of the MILP solver.
MILP_FEAS_TOL = 1e-9
#: The MILP's answers are used only if the stationarity constant 1 / max(1, C) is at least
#: this times max(1, max_i sum_j |K_ij|) (otherwise float64 cannot resolve the KKT rows).
NUMERIC_RESOLUTION = 1e-6
#: No-good cuts tried when a MILP witness fails exact re-training.
MAX_NOGOOD_CUTS = 5
#: Backend ("HIGHS" or "SCIP").
SOLVER_BACKEND = "HIGHS"
#: Use the linear score instead of the KKT block in the SVM's linear regime (exact; tests
#: switch it off to check the KKT block there too).
USE_REGIME_SHORTCUT = True
#: Exact presolve (small-set enumeration and greedy attack) before any MILP; tests switch it
#: off to check the MILP alone.
USE_PRESOLVE = True
#: Labellings re-trained exactly per test row by the small-set enumeration.
PRESOLVE_ENUM_LIMIT = 2048
#: Width of the greedy beam attack.
GREEDY_BEAM = 4
#: Labellings per batched re-training.
_BATCH = 512

_SOLVER_TYPES = {"HIGHS": mathopt.SolverType.HIGHS, "SCIP": mathopt.SolverType.GSCIP}


@dataclass
class MILPOutcome:
    """Result of one MILP solve.

    Attributes:
        status: "optimal", "feasible" (stopped with an incumbent), "infeasible" or "unknown"
            (stopped without incumbent or proof, or numerical trouble).
        objective: incumbent objective (None without one).
        bound: proven bound on the objective (lower bound when minimising, upper when
            maximising); only for "optimal" solves, None otherwise.
        labels: (m,) incumbent labelling (+-1 or 0..c-1), None without incumbent.
        solve_time_s: wall time of the solve(s).
        nodes: branch-and-bound nodes used.
    """

    status: str
    objective: float | None
    bound: float | None
    labels: np.ndarray | None
    solve_time_s: float
    nodes: int = 0
    extra: dict = field(default_factory=dict)


@dataclasses.dataclass
class _SolveParameters(mathopt.SolveParameters):
    """MathOpt parameters plus backend-specific options (HiGHS / SCIP option maps)."""

    highs_options: dict = dataclasses.field(default_factory=dict)
    scip_options: dict = dataclasses.field(default_factory=dict)

    def to_proto(self, *args, **kwargs):
        proto = super().to_proto(*args, **kwargs)
        for key, value in self.highs_options.items():
            if isinstance(value, bool):
                proto.highs.bool_options[key] = value
            elif isinstance(value, int):
                proto.highs.int_options[key] = value
            else:
                proto.highs.double_options[key] = float(value)
        for key, value in self.scip_options.items():
            if isinstance(value, bool):
                proto.gscip.bool_params[key] = value
            elif isinstance(value, int):
                proto.gscip.int_params[key] = value
            else:
                proto.gscip.real_params[key] = float(value)
        return proto


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send the C-level stdout (file descriptor 1) to /dev/null for the duration.

    HiGHS prints debugging lines with printf that no option silences (issue 10); Python's own
    ``sys.stdout`` is flushed first and C buffers are flushed before fd 1 is restored.
    """
    try:
        sys.stdout.flush()
    except (AttributeError, ValueError, OSError):  # pragma: no cover - closed/odd stdout
        pass
    try:
        saved = os.dup(1)
    except OSError:  # pragma: no cover - no fd 1 at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):  # pragma: no cover - no libc symbol lookup
            pass
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def flip_radius_terms(K: np.ndarray, y_pm: np.ndarray, beta: np.ndarray,
                      C: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Per-point terms of :func:`flip_radius`: ``(gap, lin, quad)`` with, for a flip set S,
    ||w~ - w°||^2 <= 2 gap + 2 sum_S lin_i + (sum_S quad_i)^2 (all (m,) arrays)."""
    g = K @ beta
    a = y_pm * g
    gap = float(svm_duality_gap(K, y_pm[None, :].astype(float), beta[None, :], C)[0])
    hinge_shift = np.maximum(0.0, 1.0 + a) - np.maximum(0.0, 1.0 - a)  # l(-a) - l(a)
    lin = C * hinge_shift + np.abs(beta) * (1.0 - a)
    quad = np.abs(beta) * np.sqrt(np.clip(np.diag(K), 0.0, None))
    return max(gap, 0.0), lin, quad


def flip_radius(K: np.ndarray, y_pm: np.ndarray, beta: np.ndarray, C: float,
                budget: int) -> float:
    """Bound on ||w~ - w°|| over every labelling within ``budget`` flips (bias-free SVM).

    Args:
        K: (m, m) PSD kernel. y_pm: (m,) +-1 labels of the base fit. beta: (m,) signed duals
            of the base fit (any point of the box y * beta in [0, C]; need not be optimal).
        C: box bound. budget: number of flipped labels.

    Returns:
        D with ||w~ - w°|| <= D, where w° = sum_j beta_j phi(x_j) and w~ is the SVM trained on
        any labelling that differs from y_pm in at most ``budget`` entries (see the module
        docstring for the derivation); then |f~(x_i) - f°(x_i)| <= sqrt(K_ii) D.
    """
    gap, lin, quad = flip_radius_terms(K, y_pm, beta, C)
    if budget <= 0:
        return float(math.sqrt(2.0 * gap) * (1.0 + 1e-9) + 1e-12 * C)
    top_lin = np.sort(np.maximum(lin, 0.0))[::-1][:budget].sum()
    top_quad = np.sort(quad)[::-1][:budget].sum()
    d2 = 2.0 * gap + 2.0 * top_lin + top_quad ** 2
    return float(math.sqrt(d2) * (1.0 + 1e-9) + 1e-12 * C)


class LabelFlipMILP:
    """The bilevel label-flip problem with the learner replaced by its KKT conditions.

    Builds the label variables, the budget constraint and (SVM) the KKT block of every
    one-vs-rest model once; objectives and prediction constraints are added by the
    ``milp_*`` functions. All scores are expressed in units of ``lam = max(1, C)``.

    Args:
        K_train: (m, m) validated kernel. y: (m,) labels (+-1 or 0..c-1). n_classes: 2 or c.
        model: "svm" or "krr". C / ridge: its parameter. budget: max flips (<= m); the
            per-instance big-M constants are valid for every budget up to this one.
        time_limit: WALL-CLOCK seconds per solve (None: no limit); depends on machine load.
        node_limit: branch-and-bound nodes per solve (None: no limit); deterministic.
        backend: "HIGHS" (default) or "SCIP".
        clean_beta: optional (1 or c, m) signed duals of the clean fit; enables the
            per-instance big-M tightening (``flip_radius``).
    """

    def __init__(self, K_train: np.ndarray, y: np.ndarray, n_classes: int, *, model: str,
                 C: float | None, ridge: float | None, budget: int,
                 time_limit: float | None = None, node_limit: int | None = None,
                 backend: str | None = None, clean_beta: np.ndarray | None = None):
        backend = SOLVER_BACKEND if backend is None else backend
        if backend not in _SOLVER_TYPES:
            raise ValueError(f"backend must be 'HIGHS' or 'SCIP', got {backend!r}")
        self.backend = backend
        self.K = K_train
        self.y = y
        self.n_classes = n_classes
        self.model = model
        self.C = C
        self.ridge = ridge
        self.m = K_train.shape[0]
        self.budget = budget
        self.time_limit = time_limit
        self.node_limit = _check_node_limit(node_limit)
        self.lam = max(1.0, float(C)) if model == "svm" else 1.0
        row_sum = float(np.abs(K_train).sum(axis=1).max())
        #: False when float64 cannot resolve the KKT rows (huge C): answers are not used.
        self.numerically_decisive = bool(model != "svm" or 1.0 / self.lam
                                         >= NUMERIC_RESOLUTION * max(1.0, row_sum))
        mdl = mathopt.Model(name="label_flip")
        self.mdl = mdl
        m = self.m
        if n_classes == 2:
            self.beta_vars = [mdl.add_binary_variable(name=f"pos_{i}") for i in range(m)]
            flips = [(1 - self.beta_vars[i]) if y[i] > 0 else self.beta_vars[i]
                     for i in range(m)]
            self.indicators = [self.beta_vars]
        else:
            self.pi = [[mdl.add_binary_variable(name=f"pi_{i}_{c}") for c in range(n_classes)]
                       for i in range(m)]
            for i in range(m):
                mdl.add_linear_constraint(mathopt.fast_sum(self.pi[i]) == 1)
            flips = [1 - self.pi[i][int(y[i])] for i in range(m)]
            self.indicators = [[self.pi[i][c] for i in range(m)] for c in range(n_classes)]
        self.n_flips = mathopt.fast_sum(flips)
        # n_flips = (constant) + (terms); constraint bounds are stored on the terms only
        self._flip_offset = float(np.sum(y > 0)) if n_classes == 2 else float(m)
        self.budget_constraint = mdl.add_linear_constraint(
            lb=0.0, ub=float(budget), expr=self.n_flips)
        self.signed_duals = None
        self.blocks: list[dict] = []
        self.radius_exprs: list = []  # per one-vs-rest model: bound on ||w~ - w°|| (raw)
        self.clean_beta = clean_beta
        # In the SVM's linear regime C max_i sum_j |K_ij| <= 1, a = C 1 is a KKT point for
        # every labelling (its gradient C y_i sum_j y_j K_ij - 1 <= 0) and f is the same at
        # every optimum, so f(x) = C sum_j y~_j K(x, x_j) exactly: the KKT block collapses to
        # a score that is linear in the labels (as for KRR).
        self.linear_svm = bool(model == "svm" and USE_REGIME_SHORTCUT and C * row_sum <= 1.0)
        if model == "svm" and not self.linear_svm:
            ovr = ovr_labels(y, n_classes)
            self.signed_duals = []
            for c, ind in enumerate(self.indicators):
                beta_c = None if clean_beta is None else clean_beta[c]
                self.signed_duals.append(self._svm_kkt_block(ind, c, ovr[c], beta_c))

    # ---------------------------------------------------------------- structure
    def _svm_kkt_block(self, ind, tag, y_pm: np.ndarray, beta_clean: np.ndarray | None) -> list:
        """KKT conditions of one bias-free SVM whose label i is +1 iff ``ind[i]`` = 1.

        Returns the m signed dual expressions beta_j / C = 2 q_j - alpha_j.
        """
        mdl = self.mdl
        K, C, m, lam = self.K, self.C, self.m, self.lam
        sigma = np.sqrt(np.clip(np.diag(K), 0.0, None))
        G = C * np.abs(K).sum(axis=1)
        G = np.minimum(G, sigma * math.sqrt(C * m))
        g0 = r = radius = None
        if beta_clean is not None:
            D = flip_radius(K, y_pm, beta_clean, C, min(self.budget, m))
            g0 = K @ beta_clean
            r = sigma * D + 1e-9 * (np.abs(g0) + 1.0)
            G = np.minimum(G, np.abs(g0) + r)
            # D(S) <= sqrt(2 gap) + sum_{j in S} e_j (linear in the flip indicators), because
            # (sum_S e_j)^2 >= 2 sum_S lin_j + (sum_S quad_j)^2 with e_j^2 = 2 lin_j + quad_j^2
            gap, lin, quad = flip_radius_terms(K, y_pm, beta_clean, C)
            e = np.sqrt(2.0 * np.maximum(lin, 0.0) + quad ** 2) * (1.0 + 1e-9)
            flips = [(1 - ind[j]) if y_pm[j] > 0 else ind[j] for j in range(m)]
            radius = (math.sqrt(2.0 * gap) * (1.0 + 1e-9) + 1e-12 * C
                      + mathopt.fast_sum([float(e[j]) * flips[j] for j in range(m)
                                          if e[j] > 0]))
            self.radius_exprs.append(radius)
        G = G * (1.0 + 1e-9) + 1e-12  # never tighter than the exact bound by rounding
        M_u = np.maximum(0.0, G - 1.0)
        M_v = G + 1.0
        Gs, Mus, Mvs = G / lam, M_u / lam, M_v / lam
        block: dict = {"alpha": [], "q": [], "g": [], "p": [], "u": [], "v": [], "s": [],
                       "t": []}
        self.blocks.append(block)
        alpha = [mdl.add_variable(lb=0.0, ub=1.0, name=f"alpha_{tag}_{i}") for i in range(m)]
        q = [mdl.add_variable(lb=0.0, ub=1.0, name=f"q_{tag}_{i}") for i in range(m)]
        for i in range(m):
            mdl.add_linear_constraint(q[i] <= ind[i])
            mdl.add_linear_constraint(q[i] <= alpha[i])
            mdl.add_linear_constraint(q[i] >= alpha[i] - (1 - ind[i]))
        beta = [2 * q[j] - alpha[j] for j in range(m)]
        block["alpha"], block["q"] = alpha, q
        vs = []
        coef = C / lam
        for i in range(m):
            g = mdl.add_variable(lb=-Gs[i], ub=Gs[i], name=f"g_{tag}_{i}")
            terms = [float(K[i, j] * coef) * beta[j] for j in range(m) if K[i, j] != 0.0]
            mdl.add_linear_constraint(g == mathopt.fast_sum(terms))
            p = mdl.add_variable(lb=-Gs[i], ub=Gs[i], name=f"p_{tag}_{i}")
            mdl.add_linear_constraint(p <= Gs[i] * ind[i])
            mdl.add_linear_constraint(p >= -Gs[i] * ind[i])
            mdl.add_linear_constraint(p <= g + Gs[i] * (1 - ind[i]))
            mdl.add_linear_constraint(p >= g - Gs[i] * (1 - ind[i]))
            u = mdl.add_variable(lb=0.0, ub=float(Mus[i]), name=f"u_{tag}_{i}")
            v = mdl.add_variable(lb=0.0, ub=float(Mvs[i]), name=f"v_{tag}_{i}")
            vs.append(v)
            mdl.add_linear_constraint(2 * p - g - u + v == 1.0 / lam)
            if radius is not None:  # |g_i - g0_i| <= sqrt(K_ii) D(S)
                tol = 1e-9 * (abs(g0[i]) + 1.0)
                mdl.add_linear_constraint(g - g0[i] / lam <= (sigma[i] * radius + tol) / lam)
                mdl.add_linear_constraint(g - g0[i] / lam >= -(sigma[i] * radius + tol) / lam)
            t = mdl.add_binary_variable(name=f"t_{tag}_{i}")
            mdl.add_linear_constraint(v <= float(Mvs[i]) * t)
            mdl.add_linear_constraint(alpha[i] >= t)
            z = None
            if M_u[i] > 0:
                z = mdl.add_binary_variable(name=f"s_{tag}_{i}")
                mdl.add_linear_constraint(u <= float(Mus[i]) * z)
                mdl.add_linear_constraint(alpha[i] <= 1 - z)
                mdl.add_linear_constraint(z + t <= 1)
            if g0 is not None:
                # label +1 (ind = 1): h = g in [g0 - r, g0 + r]; label -1: h = -g
                for sign, active in ((1.0, ind[i]), (-1.0, 1 - ind[i])):
                    lo, hi = sign * g0[i] - r[i], sign * g0[i] + r[i]
                    if lo > 1.0 + 1e-9 and z is not None:
                        mdl.add_linear_constraint(z >= active)  # h > 1: alpha = 0
                    if hi < 1.0 - 1e-9:
                        mdl.add_linear_constraint(t >= active)  # h < 1: alpha = 1
            for key, var in (("g", g), ("p", p), ("u", u), ("v", v), ("s", z), ("t", t)):
                block[key].append(var)
        # ||w||^2 = beta^T K beta = C (sum alpha - sum v) >= 0 at every KKT point (valid cut)
        mdl.add_linear_constraint(mathopt.fast_sum(alpha) - lam * mathopt.fast_sum(vs) >= 0)
        return beta

    def score(self, k_row: np.ndarray, cls: int = 0):
        """Linear expression of the perturbed decision value / lam of one test row.

        Args:
            k_row: (m,) kernel row K(x, X) for the SVM, weight row W_x for KRR.
            cls: one-vs-rest class (multi-class), ignored for binary.
        """
        nz = [j for j in range(self.m) if k_row[j] != 0.0]
        if self.model == "svm" and not self.linear_svm:
            duals = self.signed_duals[0 if self.n_classes == 2 else cls]
            coef = self.C / self.lam
            return mathopt.fast_sum([float(k_row[j] * coef) * duals[j] for j in nz])
        w = k_row * ((self.C / self.lam) if self.model == "svm" else 1.0)
        if self.n_classes == 2:
            return mathopt.fast_sum([float(w[j]) * (2 * self.beta_vars[j] - 1) for j in nz])
        if self.model == "svm":  # one-vs-rest labels 2 pi - 1
            return mathopt.fast_sum([float(w[j]) * (2 * self.pi[j][cls] - 1) for j in nz])
        return mathopt.fast_sum([float(w[j]) * self.pi[j][cls] for j in nz])

    def margin_expr(self, k_row: np.ndarray, clean_prediction: int, rival: int | None):
        """Clean class's margin / lam against ``rival`` (binary: y_hat * f, rival ignored)."""
        if self.n_classes == 2:
            return clean_prediction * self.score(k_row)
        return self.score(k_row, clean_prediction) - self.score(k_row, rival)

    def add_margin_cut(self, k_row: np.ndarray, clean_prediction: int,
                       rival: int | None) -> None:
        """Valid cut: the margin cannot fall below the clean one by more than the weight
        vectors can move, |f~(x) - f°(x)| <= sqrt(v^T K v) D(S) + 2 C ||k_x - K v||_1 for
        any v (here a few ridge solutions; only used for the SVM's KKT model)."""
        if not self.radius_exprs:
            return
        K, C = self.K, self.C
        m = self.m
        candidates = [(0.0, 2.0 * C * float(np.abs(k_row).sum()))]
        for eps in (1e-10, 1e-8, 1e-6, 1e-4, 1e-2):
            try:
                v = np.linalg.solve(K + eps * max(1.0, float(np.max(np.diag(K)))) * np.eye(m),
                                    k_row)
            except np.linalg.LinAlgError:
                continue
            quad = float(v @ K @ v)
            if not np.isfinite(quad):
                continue
            candidates.append((math.sqrt(max(quad, 0.0)) * (1.0 + 1e-8),
                               2.0 * C * float(np.abs(k_row - K @ v).sum()) * (1.0 + 1e-8)
                               + 1e-12 * C * float(np.abs(k_row).sum())))
        D_full = flip_radius(K, ovr_labels(self.y, self.n_classes)[0], self.clean_beta[0], C,
                             self.budget) if self.n_classes == 2 else 1.0
        s_v, E = min(candidates, key=lambda c: c[0] * D_full + c[1])
        models = [0] if self.n_classes == 2 else [clean_prediction, rival]
        f0 = [float(k_row @ self.clean_beta[c]) for c in models]
        if self.n_classes == 2:
            margin0 = clean_prediction * f0[0]
        else:
            margin0 = f0[0] - f0[1]
        shrink = mathopt.fast_sum([s_v * self.radius_exprs[c] + E for c in models])
        tol = 1e-9 * (abs(margin0) + C * float(np.abs(k_row).sum()))
        self.mdl.add_linear_constraint(
            self.margin_expr(k_row, clean_prediction, rival)
            >= (margin0 - tol - shrink) / self.lam)

    def set_flip_range(self, low: int, high: int) -> None:
        """Restrict the number of flips to [low, high] (reuses the model across budgets)."""
        self.budget_constraint.lower_bound = float(low) - self._flip_offset
        self.budget_constraint.upper_bound = float(high) - self._flip_offset

    def _labels_from(self, values) -> np.ndarray:
        if self.n_classes == 2:
            return np.array([1 if values[b] > 0.5 else -1 for b in self.beta_vars],
                            dtype=np.int64)
        return np.array([int(np.argmax([values[p] for p in row])) for row in self.pi],
                        dtype=np.int64)

    def add_nogood(self, labels: np.ndarray) -> None:
        """Exclude exactly this labelling from the feasible set."""
        if self.n_classes == 2:
            same = [self.beta_vars[i] if labels[i] > 0 else 1 - self.beta_vars[i]
                    for i in range(self.m)]
        else:
            same = [self.pi[i][int(labels[i])] for i in range(self.m)]
        self.mdl.add_linear_constraint(mathopt.fast_sum(same) <= self.m - 1)

    def solve(self, *, first_solution: bool = False) -> MILPOutcome:
        """Solve (to optimality, or until the first feasible point) and translate the status."""
        params = _SolveParameters(random_seed=0, relative_gap_tolerance=0.0,
                                  absolute_gap_tolerance=0.0, enable_output=False)
        if self.time_limit is not None:
            params.time_limit = datetime.timedelta(seconds=float(self.time_limit))
        if self.node_limit is not None:
            params.node_limit = self.node_limit
        if first_solution:
            params.solution_limit = 1
        if self.backend == "HIGHS":
            params.highs_options = {"mip_feasibility_tolerance": MILP_FEAS_TOL,
                                    "primal_feasibility_tolerance": MILP_FEAS_TOL,
                                    "output_flag": False, "log_to_console": False}
        else:
            params.threads = 1
            params.scip_options = {"numerics/feastol": MILP_FEAS_TOL}
        start = time.perf_counter()
        with _quiet_stdout():
            res = mathopt.solve(self.mdl, _SOLVER_TYPES[self.backend], params=params)
        elapsed = time.perf_counter() - start
        reason = res.termination.reason
        nodes = int(res.solve_stats.node_count)
        R = mathopt.TerminationReason
        labels = obj = None
        if res.has_primal_feasible_solution():
            labels = self._labels_from(res.variable_values())
            obj = float(res.objective_value())
        if reason == R.OPTIMAL:
            bound = float(res.termination.objective_bounds.dual_bound)
            return MILPOutcome("optimal", obj, bound if math.isfinite(bound) else obj, labels,
                               elapsed, nodes)
        if reason in (R.INFEASIBLE, R.INFEASIBLE_OR_UNBOUNDED):
            # every variable is bounded, so "or unbounded" means infeasible
            return MILPOutcome("infeasible", None, None, None, elapsed, nodes)
        if reason == R.FEASIBLE and labels is not None:
            # bounds of unfinished solves are not used (conservative)
            return MILPOutcome("feasible", obj, None, labels, elapsed, nodes)
        return MILPOutcome("unknown", None, None, labels, elapsed, nodes)


# ------------------------------------------------------------------------- exact helpers
class _Row:
    """One test row: exact re-trained margins of its clean prediction."""

    def __init__(self, K_train, K_test, y, n_classes, state, node):
        self.K_train, self.y, self.n_classes, self.state = K_train, y, n_classes, state
        self.k = K_test[node:node + 1]
        self.W = None if state["W"] is None else state["W"][node:node + 1]
        self.pred = state["prediction"][node:node + 1]
        self.tie = float(state["tie_tol"][node])
        self.scale = float(state["scale"][node])
        self.clean_margin = float(state["margin"][node])
        self.coef = K_test[node] if state["model"] == "svm" else state["W"][node]

    def margins(self, labels: np.ndarray) -> np.ndarray | None:
        """(B,) exact margins after re-training on each (B, m) labelling; None on failure."""
        out = []
        try:
            for start in range(0, labels.shape[0], _BATCH):
                chunk = labels[start:start + _BATCH]
                scores = perturbed_scores(self.K_train, self.k, chunk, self.n_classes,
                                          model=self.state["model"], C=self.state["C"],
                                          W=self.W, beta_warm=self.state.get("beta"))
                out.append(prediction_margins(scores, self.pred, self.n_classes)[:, 0])
        except (RuntimeError, np.linalg.LinAlgError):
            return None  # the re-training did not converge: no exact information
        return np.concatenate(out)

    def scores(self, labels: np.ndarray):
        """Decision value(s) of this row after re-training on ``labels`` (NaN on failure)."""
        try:
            return perturbed_scores(self.K_train, self.k, labels[None, :], self.n_classes,
                                    model=self.state["model"], C=self.state["C"], W=self.W,
                                    beta_warm=self.state.get("beta"))[0, 0]
        except (RuntimeError, np.linalg.LinAlgError):
            return np.nan if self.n_classes == 2 else np.full(self.n_classes, np.nan)


def _small_sets(row: _Row, max_size: int) -> dict:
    """Exact enumeration of every flip set of size 1, 2, ... while the cumulative number of
    labellings stays within PRESOLVE_ENUM_LIMIT (and sizes <= max_size).

    Returns dict: ``found`` (size of the first changing flip set, None), ``witness``,
    ``complete`` (largest size fully enumerated without a hit), ``min_margin`` /
    ``min_labels`` (lowest margin seen, clean included), ``beam`` (lowest-margin labellings
    of the last complete size).
    """
    y, c = row.y, row.n_classes
    m = y.shape[0]
    out = {"found": None, "witness": None, "complete": 0, "min_margin": row.clean_margin,
           "min_labels": y.copy(), "beam": [y.copy()]}
    if not USE_PRESOLVE:
        return out
    for k in range(1, max_size + 1):
        if count_flip_sets(m, k, c) > PRESOLVE_ENUM_LIMIT:
            break
        best: list[tuple[float, np.ndarray]] = []
        for labels in iter_flipped_labelings(y, c, k, batch=_BATCH):
            marg = row.margins(labels)
            if marg is None:
                return out
            hit = np.flatnonzero(marg <= row.tie)
            j = int(np.argmin(marg))
            if marg[j] < out["min_margin"]:
                out["min_margin"], out["min_labels"] = float(marg[j]), labels[j].copy()
            if hit.size:  # the most damaging labelling of this batch (margin <= tie)
                out["found"], out["witness"] = k, labels[j].copy()
                out["witness_margin"] = float(marg[j])
                return out
            for idx in np.argsort(marg)[:GREEDY_BEAM]:
                best.append((float(marg[idx]), labels[idx].copy()))
        best.sort(key=lambda p: p[0])
        out["beam"] = [lab for _, lab in best[:GREEDY_BEAM]]
        out["complete"] = k
    return out


def _greedy_attack(row: _Row, beam: list[np.ndarray], start: int, max_size: int) -> dict:
    """Beam search: extend the most damaging flip sets by one flip at a time, re-training
    exactly. Returns dict ``size`` / ``witness`` (None when no verified attack within
    ``max_size``) and the lowest margin seen."""
    y, c = row.y, row.n_classes
    out = {"size": None, "witness": None, "min_margin": math.inf, "min_labels": None}
    if not USE_PRESOLVE:
        return out
    for size in range(start + 1, max_size + 1):
        cands = []
        for lab in beam:
            for i in np.flatnonzero(lab == y):
                for new in ([-lab[i]] if c == 2 else [cl for cl in range(c) if cl != lab[i]]):
                    cand = lab.copy()
                    cand[i] = new
                    cands.append(cand)
        if not cands:
            break
        cands = np.unique(np.array(cands), axis=0)
        marg = row.margins(cands)
        if marg is None:
            break
        j = int(np.argmin(marg))
        if marg[j] < out["min_margin"]:
            out["min_margin"], out["min_labels"] = float(marg[j]), cands[j].copy()
        if marg[j] <= row.tie:
            out["size"], out["witness"] = size, cands[j].copy()
            return out
        beam = [cands[idx] for idx in np.argsort(marg)[:GREEDY_BEAM]]
    return out


def _rivals(n_classes: int, pred: int) -> list:
    return [None] if n_classes == 2 else [r for r in range(n_classes) if r != pred]


def _milp_decidable(prob: LabelFlipMILP, row: _Row) -> bool:
    """The MILP can separate "changed" from "kept" for this row in floating point."""
    slack = MILP_MARGIN_RTOL * row.scale
    return prob.numerically_decisive and row.clean_margin > 10.0 * slack


def _check_node_limit(node_limit) -> int | None:
    if node_limit is None:
        return None
    if isinstance(node_limit, bool) or not isinstance(node_limit, (int, np.integer)) \
            or node_limit < 1:
        raise ValueError(f"node_limit must be a positive integer or None, got {node_limit!r}")
    return int(node_limit)


def _attack_search(prob: LabelFlipMILP, row: _Row, rival, low: int, high: int,
                   record: dict) -> tuple[str, np.ndarray | None]:
    """Is there a flip set of size in [low, high] that changes the prediction (against
    ``rival``)? Feasibility MILP stopped at the first solution; witnesses re-trained.

    Returns ("none", None) when proven infeasible, ("found", labels) for a verified attack,
    ("unknown", None) when limits or numerics stop it.
    """
    prob.set_flip_range(low, high)
    for _cut in range(MAX_NOGOOD_CUTS + 1):
        res = prob.solve(first_solution=True)
        record["solve_time_s"] += res.solve_time_s
        record["milp_solves"] += 1
        record["nodes"] += res.nodes
        if res.status == "infeasible":
            return "none", None
        if res.labels is None:
            return "unknown", None
        marg = row.margins(res.labels[None, :])
        if marg is not None and marg[0] <= row.tie:
            return "found", res.labels
        if res.status not in ("optimal", "feasible"):
            return "unknown", None
        prob.add_nogood(res.labels)  # numerically optimistic witness
    return "unknown", None


def milp_min_flips(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray, n_classes: int, *,
                   model: str, C: float | None = None, ridge: float | None = None,
                   max_flips: int, time_limit: float | None = None,
                   node_limit: int | None = None, state: dict | None = None) -> list[dict]:
    """Fewest flips that change each test prediction: exact presolve, then MILP decisions.

    Per test row: exact enumeration of the small flip sets, a greedy attack for an upper
    bound U, then feasibility MILPs "an attack with [L, U - 1] flips exists" (one model per
    rival class, reused while U decreases). Every witness is re-trained exactly.

    Args:
        time_limit: WALL-CLOCK seconds per MILP solve (load-dependent; see module docstring).
        node_limit: branch-and-bound nodes per MILP solve (deterministic work limit).

    Returns:
        One dict per test row: ``min_flips`` (conservative: a proven LOWER bound when
        ``exact`` is False; ``max_flips + 1`` when no flip set within ``max_flips`` works),
        ``exact`` (bool), ``upper`` (size of a verified witness or None), ``witness``
        ((m,) labels or None), ``solve_time_s`` (MILP time), ``status`` ("optimal",
        "time_limit" or "unverified"), ``decided_by`` ("clean", "enumeration", "greedy+enumeration",
        "milp" or "unknown"), ``milp_solves``, ``nodes``.
    """
    node_limit = _check_node_limit(node_limit)
    if state is None:
        state = clean_state(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge)
    out = []
    for node in range(K_test.shape[0]):
        row = _Row(K_train, K_test, y, n_classes, state, node)
        rec = {"min_flips": 0, "exact": True, "upper": 0, "witness": y.copy(),
               "solve_time_s": 0.0, "status": "optimal", "decided_by": "clean",
               "milp_solves": 0, "nodes": 0}
        if row.clean_margin <= row.tie:
            out.append(rec)
            continue
        small = _small_sets(row, max_flips)
        if small["found"] is not None:
            rec.update(min_flips=small["found"], upper=small["found"],
                       witness=small["witness"], decided_by="enumeration")
            out.append(rec)
            continue
        lower = small["complete"] + 1
        if lower > max_flips:
            rec.update(min_flips=max_flips + 1, upper=None, witness=None,
                       decided_by="enumeration")
            out.append(rec)
            continue
        greedy = _greedy_attack(row, small["beam"], small["complete"], max_flips)
        upper = max_flips + 1 if greedy["size"] is None else greedy["size"]
        witness = greedy["witness"]
        decided_by = "greedy+enumeration" if upper == lower else "milp"
        status = "optimal"
        if lower < upper:
            pred = int(row.pred[0])
            for rival in _rivals(n_classes, pred):
                prob = LabelFlipMILP(K_train, y, n_classes, model=model, C=C, ridge=ridge,
                                     budget=upper - 1, time_limit=time_limit,
                                     node_limit=node_limit, clean_beta=state.get("beta"))
                if not _milp_decidable(prob, row):
                    status = "unverified"
                    break
                slack = MILP_MARGIN_RTOL * row.scale / prob.lam
                prob.mdl.add_linear_constraint(
                    prob.margin_expr(row.coef, pred, rival) <= slack)
                prob.add_margin_cut(row.coef, pred, rival)
                while lower < upper:
                    verdict, lab = _attack_search(prob, row, rival, lower, upper - 1, rec)
                    if verdict == "none":
                        break
                    if verdict == "unknown":
                        status = "time_limit"
                        break
                    upper, witness = int(np.sum(lab != y)), lab
                if status != "optimal":
                    break
            if status != "optimal":
                decided_by = "unknown"
        exact = status == "optimal"
        if status == "unverified":
            warnings.warn(f"test row {node}: the MILP cannot resolve this instance in floating "
                          f"point (C = {C!r}, clean margin {row.clean_margin:.3g}); reporting "
                          f"the proven lower bound {lower}", RuntimeWarning, stacklevel=2)
        rec.update(min_flips=int(upper if exact else lower), exact=exact,
                   upper=None if witness is None else int(upper), witness=witness,
                   status=status, decided_by=decided_by)
        out.append(rec)
    return out


def milp_worst_margin(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray, n_classes: int,
                      *, model: str, C: float | None = None, ridge: float | None = None,
                      budget: int, time_limit: float | None = None,
                      node_limit: int | None = None, optimise: bool = False,
                      state: dict | None = None) -> list[dict]:
    """The paper's sample-wise certificate of each test prediction within ``budget`` flips.

    ``optimise=False`` (default) only DECIDES the sign of the worst-case margin: exact
    enumeration of small flip sets, a greedy attack, then a feasibility MILP "margin <= slack
    within ``budget`` flips" (infeasible = certified). ``optimise=True`` is the paper's MILP:
    minimise y_hat f(x) (or f_{y_hat} - f_r per rival r) to optimality.

    Args:
        time_limit: WALL-CLOCK seconds per MILP solve (load-dependent; see module docstring).
        node_limit: branch-and-bound nodes per MILP solve (deterministic work limit).

    Returns:
        One dict per test row: ``status`` ("certified" / "not certified" / "unknown"),
        ``lower_bound`` (proven lower bound on the worst-case margin), ``worst_margin`` (exact
        re-trained margin of the worst labelling found), ``worst_scores`` (its decision
        values), ``witness`` (its labels), ``gap`` (worst_margin - lower_bound),
        ``solve_time_s``, ``optimal`` (the worst case is known exactly), ``decided_by``.
    """
    node_limit = _check_node_limit(node_limit)
    if state is None:
        state = clean_state(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge)
    out = []
    for node in range(K_test.shape[0]):
        row = _Row(K_train, K_test, y, n_classes, state, node)
        rec = {"solve_time_s": 0.0, "milp_solves": 0, "nodes": 0}
        if optimise:
            res = _optimise_margin(row, K_train, y, n_classes, model, C, ridge, budget,
                                   time_limit, node_limit, state, rec)
        else:
            res = _decide_margin(row, K_train, y, n_classes, model, C, ridge, budget,
                                 time_limit, node_limit, state, rec)
        lower, best_margin, best_labels, optimal, status, decided_by = res
        if best_labels is None or row.clean_margin < best_margin:
            best_margin, best_labels = row.clean_margin, y.copy()
        scores = row.scores(best_labels)
        out.append({"status": status, "lower_bound": float(lower),
                    "worst_margin": float(best_margin), "worst_scores": scores,
                    "witness": best_labels, "gap": float(best_margin - lower),
                    "solve_time_s": rec["solve_time_s"], "optimal": optimal,
                    "decided_by": decided_by, "milp_solves": rec["milp_solves"],
                    "nodes": rec["nodes"]})
    return out


def _decide_margin(row, K_train, y, n_classes, model, C, ridge, budget, time_limit,
                   node_limit, state, rec):
    """Sign of the worst-case margin within ``budget`` flips (see milp_worst_margin)."""
    if row.clean_margin <= row.tie:
        return row.clean_margin, row.clean_margin, y.copy(), True, "not certified", "clean"
    small = _small_sets(row, budget)
    if small["found"] is not None:
        return (-math.inf, small["witness_margin"], small["witness"], False, "not certified",
                "enumeration")
    best_margin, best_labels = small["min_margin"], small["min_labels"]
    if small["complete"] >= budget:  # every labelling within budget re-trained: exact
        # the exact worst case, judged by the enumeration's own convention (margin > tie)
        return best_margin, best_margin, best_labels, True, "certified", "enumeration"
    greedy = _greedy_attack(row, small["beam"], small["complete"], budget)
    if greedy["min_labels"] is not None and greedy["min_margin"] < best_margin:
        best_margin, best_labels = greedy["min_margin"], greedy["min_labels"]
    if greedy["size"] is not None:
        return -math.inf, best_margin, best_labels, False, "not certified", "greedy"
    pred = int(row.pred[0])
    slack_raw = MILP_MARGIN_RTOL * row.scale
    for rival in _rivals(n_classes, pred):
        prob = LabelFlipMILP(K_train, y, n_classes, model=model, C=C, ridge=ridge,
                             budget=budget, time_limit=time_limit, node_limit=node_limit,
                             clean_beta=state.get("beta"))
        if not _milp_decidable(prob, row):
            return -math.inf, best_margin, best_labels, False, "unknown", "unknown"
        prob.mdl.add_linear_constraint(
            prob.margin_expr(row.coef, pred, rival) <= slack_raw / prob.lam)
        prob.add_margin_cut(row.coef, pred, rival)
        verdict, lab = _attack_search(prob, row, rival, small["complete"] + 1, budget, rec)
        if verdict == "found":  # _attack_search verified this margin by re-training
            marg = row.margins(lab[None, :])
            return -math.inf, float(marg[0]), lab, False, "not certified", "milp"
        if verdict == "unknown":
            return -math.inf, best_margin, best_labels, False, "unknown", "unknown"
    # proven: every flip set of size > complete keeps margin > slack; smaller ones enumerated
    # (and best_margin > tie: no enumerated labelling changed the prediction)
    return min(slack_raw, best_margin), best_margin, best_labels, False, "certified", "milp"


def _optimise_margin(row, K_train, y, n_classes, model, C, ridge, budget, time_limit,
                     node_limit, state, rec):
    """The paper's MILP: minimise the margin to optimality (one model per rival)."""
    lower = math.inf
    best_margin, best_labels = math.inf, None
    optimal = True
    pred = int(row.pred[0])
    decisive = True
    for rival in _rivals(n_classes, pred):
        prob = LabelFlipMILP(K_train, y, n_classes, model=model, C=C, ridge=ridge,
                             budget=budget, time_limit=time_limit, node_limit=node_limit,
                             clean_beta=state.get("beta"))
        decisive = decisive and _milp_decidable(prob, row)
        prob.mdl.minimize(prob.margin_expr(row.coef, pred, rival))
        res = prob.solve()
        rec["solve_time_s"] += res.solve_time_s
        rec["milp_solves"] += 1
        rec["nodes"] += res.nodes
        if res.status != "optimal":
            optimal = False
        lower = min(lower, -math.inf if res.bound is None else res.bound * prob.lam)
        if res.labels is not None:
            marg = row.margins(res.labels[None, :])
            if marg is not None and marg[0] < best_margin:
                best_margin, best_labels = float(marg[0]), res.labels
    if best_labels is None or row.clean_margin < best_margin:
        best_margin, best_labels = row.clean_margin, y.copy()
    if best_margin <= row.tie:
        status = "not certified"
    elif decisive and lower > CERT_MARGIN_RTOL * row.scale:
        status = "certified"
    else:
        status = "unknown"
    return lower, best_margin, best_labels, optimal, status, "milp"


def _all_margins(K_train, K_test, y, n_classes, state, labels: np.ndarray) -> np.ndarray | None:
    """(B, t) exact re-trained margins of every test row; None if re-training fails."""
    out = []
    try:
        for start in range(0, labels.shape[0], _BATCH):
            chunk = labels[start:start + _BATCH]
            scores = perturbed_scores(K_train, K_test, chunk, n_classes, model=state["model"],
                                      C=state["C"], W=state["W"],
                                      beta_warm=state.get("beta"))
            out.append(prediction_margins(scores, state["prediction"], n_classes))
    except (RuntimeError, np.linalg.LinAlgError):
        return None
    return np.concatenate(out, axis=0)


def _greedy_collective(K_train, K_test, y, n_classes, state, budget: int,
                       start: np.ndarray | None) -> tuple[int, np.ndarray]:
    """Beam search for one flip set that changes many predictions (exact re-training).

    Returns (verified number of changed predictions, labelling)."""
    tie = state["tie_tol"]

    def value(marg):  # changed count first, then how close the others are
        changed = marg <= tie[None, :]
        closeness = -np.clip(marg / state["scale"][None, :], 0.0, None).sum(axis=1)
        return changed.sum(axis=1) + 1e-3 * closeness / max(1, marg.shape[1]), changed

    beams = [y.copy()] if start is None else [y.copy(), start.copy()]
    marg = _all_margins(K_train, K_test, y, n_classes, state, np.array(beams))
    if marg is None:
        return int(np.sum(state["margin"] <= tie)), y.copy()
    val, changed = value(marg)
    j = int(np.argmax(val))
    best_count, best_labels = int(changed[j].sum()), beams[j].copy()
    if not USE_PRESOLVE:
        return best_count, best_labels
    beam = [y.copy()]
    for _size in range(1, budget + 1):
        cands = []
        for lab in beam:
            for i in np.flatnonzero(lab == y):
                for new in ([-lab[i]] if n_classes == 2 else
                            [cl for cl in range(n_classes) if cl != lab[i]]):
                    cand = lab.copy()
                    cand[i] = new
                    cands.append(cand)
        if not cands:
            break
        cands = np.unique(np.array(cands), axis=0)
        marg = _all_margins(K_train, K_test, y, n_classes, state, cands)
        if marg is None:
            break
        val, changed = value(marg)
        order = np.argsort(-val)
        j = int(order[0])
        if changed[j].sum() > best_count:
            best_count, best_labels = int(changed[j].sum()), cands[j].copy()
        beam = [cands[idx] for idx in order[:GREEDY_BEAM]]
    return best_count, best_labels


def milp_collective(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray, n_classes: int, *,
                    model: str, C: float | None = None, ridge: float | None = None,
                    budget: int, time_limit: float | None = None,
                    node_limit: int | None = None, state: dict | None = None,
                    start: np.ndarray | None = None) -> dict:
    """Collective certificate: the most test predictions ONE labelling within ``budget``
    flips changes (one binary per test row; multi-class: one binary per (row, rival)).

    A greedy attack (re-trained exactly; optionally seeded with ``start``, e.g. the witness
    of a smaller budget) gives a verified count L; then feasibility MILPs "some labelling
    changes at least L + 1 predictions" decide (infeasible proves L; a witness is re-trained
    and raises L).

    Args:
        time_limit: WALL-CLOCK seconds per MILP solve (load-dependent).
        node_limit: branch-and-bound nodes per MILP solve (deterministic work limit).
        start: optional (m,) labelling within ``budget`` flips to start from.

    Returns:
        dict with ``max_changed`` (conservative: a proven UPPER bound when not exact),
        ``exact``, ``verified`` (changed predictions of the best re-trained witness),
        ``witness``, ``status``, ``solve_time_s``, ``milp_solves``, ``nodes``.
    """
    node_limit = _check_node_limit(node_limit)
    if state is None:
        state = clean_state(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge)
    t = K_test.shape[0]
    verified, best_labels = _greedy_collective(K_train, K_test, y, n_classes, state, budget,
                                               start)
    rec = {"solve_time_s": 0.0, "milp_solves": 0, "nodes": 0}
    status = "optimal"
    upper = t
    if verified < t:
        prob = LabelFlipMILP(K_train, y, n_classes, model=model, C=C, ridge=ridge,
                             budget=budget, time_limit=time_limit, node_limit=node_limit,
                             clean_beta=state.get("beta"))
        rows = [_Row(K_train, K_test, y, n_classes, state, node) for node in range(t)]
        if not prob.numerically_decisive or any(
                row.clean_margin <= 10 * MILP_MARGIN_RTOL * row.scale
                and row.clean_margin > row.tie for row in rows):
            status = "unverified"
        else:
            mdl = prob.mdl
            omegas = []
            for node, row in enumerate(rows):
                pred = int(row.pred[0])
                slack = MILP_MARGIN_RTOL * row.scale / prob.lam
                big = (2.0 * row.scale + 1.0) / prob.lam
                w = mdl.add_binary_variable(name=f"omega_{node}")
                omegas.append(w)
                if row.clean_margin <= row.tie:
                    mdl.add_linear_constraint(w == 1)  # already changed
                    continue
                if n_classes == 2:
                    mdl.add_linear_constraint(prob.margin_expr(row.coef, pred, None)
                                              <= slack + big * (1 - w))
                else:
                    rho = []
                    for r in _rivals(n_classes, pred):
                        z = mdl.add_binary_variable(name=f"rho_{node}_{r}")
                        rho.append(z)
                        mdl.add_linear_constraint(prob.margin_expr(row.coef, pred, r)
                                                  <= slack + big * (1 - z))
                    mdl.add_linear_constraint(mathopt.fast_sum(rho) == w)
            count = mdl.add_linear_constraint(lb=float(verified + 1), ub=float(t),
                                              expr=mathopt.fast_sum(omegas))
            cuts = 0
            while verified < t:
                count.lower_bound = float(verified + 1)
                res = prob.solve(first_solution=True)
                rec["solve_time_s"] += res.solve_time_s
                rec["milp_solves"] += 1
                rec["nodes"] += res.nodes
                if res.status == "infeasible":
                    upper = verified
                    break
                if res.labels is None:
                    status = "time_limit"
                    break
                marg = _all_margins(K_train, K_test, y, n_classes, state, res.labels[None, :])
                got = -1 if marg is None else int(np.sum(marg[0] <= state["tie_tol"]))
                if got > verified:
                    verified, best_labels = got, res.labels
                    continue
                # numerically optimistic witness: cut it off and retry
                cuts += 1
                if cuts > MAX_NOGOOD_CUTS:
                    status = "unverified"
                    break
                prob.add_nogood(res.labels)
            else:
                upper = t
    else:
        upper = t
    exact = status == "optimal" and verified == upper
    if not exact:
        upper = t if status != "optimal" else upper
        warnings.warn(f"collective MILP not exact ({status}): reporting the proven upper "
                      f"bound {upper} (verified witness changes {verified})",
                      RuntimeWarning, stacklevel=2)
    return {"max_changed": int(upper), "exact": bool(exact), "verified": int(verified),
            "witness": best_labels, "status": status, **rec}


def milp_collective_curve(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                          n_classes: int, *, model: str, C: float | None = None,
                          ridge: float | None = None, max_budget: int,
                          time_limit: float | None = None, node_limit: int | None = None,
                          state: dict | None = None) -> list[dict]:
    """:func:`milp_collective` for budgets 0..max_budget, each seeded with the previous
    budget's witness (collective(k) >= collective(k - 1)). Returns one dict per budget."""
    if state is None:
        state = clean_state(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge)
    out, start = [], None
    for k in range(max_budget + 1):
        rec = milp_collective(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge,
                              budget=k, time_limit=time_limit, node_limit=node_limit,
                              state=state, start=start)
        out.append(rec)
        start = rec["witness"]
    return out
