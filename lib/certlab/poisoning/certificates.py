"""Public label-flip certificates: sample-wise and collective (Sabanayagam et al., 2025).

- :func:`min_label_flips`: per test row, the fewest training-label flips that change the
  prediction (or ``max_flips + 1``). A prediction is certified against k flips iff
  ``min_label_flips > k``.
- :func:`collective_flips`: the most test predictions one flip set of size <= budget changes
  at once (certified ratio = 1 - collective_flips / n_test).
- :func:`certify_samplewise`: the paper's per-budget MILP, with a :class:`SampleCertificate`
  (status, worst-case score, proven bound, gap, solver time) per test row.

Methods: "milp" (:mod:`certlab.poisoning.milp`), "enumerate"
(:mod:`certlab.poisoning.enumeration`, the independent ground truth), "closed_form"
(ScaLabelCert, :mod:`certlab.poisoning.closed_form`, exact for kernel ridge regression and for
the SVM when C * max_i sum_j |K_ij| <= 1; raises outside its regime) and "auto" (the fastest
exact one that applies: closed form when its regime holds, else enumeration when the number
of labellings is small, else the MILP).

Conventions (every method): binary predictions are +1 iff f > 0; multi-class predictions are
the argmax with ties to the smallest class; a prediction counts as changed as soon as its
margin is <= 1e-9 * score_scale (ties count as changed, so certificates are conservative).
score_scale bounds |f| for every labelling (SVM: min(C sum_j |K(x, x_j)|,
sqrt(k^T K^+ k) * svm_norm_bound), which stops growing with C for positive definite K, so
the tolerance stays meaningful at very large C); re-trained SVM margins within their rigorous
error bound of that tolerance count as changed too (see
:func:`certlab.poisoning.enumeration.retrained_changes`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from certlab.poisoning.enumeration import (clean_state, count_flip_sets, enumerate_collective,
                                           enumerate_collective_curve, enumerate_min_flips)
from certlab.poisoning.milp import (milp_collective, milp_collective_curve, milp_min_flips,
                                   milp_worst_margin)
from certlab.poisoning.validation import (validate_budget, validate_certificate_inputs,
                                          validate_model_parameters)

__all__ = [
    "METHODS",
    "SampleCertificate",
    "min_label_flips",
    "collective_flips",
    "collective_flips_curve",
    "certify_samplewise",
    "certified_fraction",
]

#: Certificate methods accepted by :func:`min_label_flips` and :func:`collective_flips`.
METHODS = ("auto", "milp", "enumerate", "closed_form")


#: "auto" enumerates when (labellings x one-vs-rest models) is at most this (SVM; about
#: 30 s for m = 20 on one core, while the MILP needs 0.3-3 s per test node there) ...
AUTO_ENUMERATE_SVM = 1_000_000
#: ... or when the number of labellings is at most this (KRR: one matrix product each).
AUTO_ENUMERATE_KRR = 2_000_000


@dataclass(frozen=True)
class SampleCertificate:
    """Sample-wise certificate of one test prediction against ``budget`` label flips.

    Attributes:
        index: test row. budget: number of flips allowed.
        status: "certified" (the proven worst-case margin is positive beyond the solver
            tolerance), "not certified" (a flip set within budget changes the prediction,
            verified by exact re-training) or "unknown" (time limit / numerical doubt).
        clean_prediction: +-1 (binary) or class index. clean_margin: margin without attack.
        worst_case_margin: exact re-trained margin of the worst flip set found (binary:
            y_hat * f(x); multi-class: f_{y_hat}(x) - max_r f_r(x)).
        worst_case_score: decision value(s) under that flip set: float (binary) or (c,) array.
        margin_lower_bound: the MILP's proven lower bound on the worst-case margin.
        gap: worst_case_margin - margin_lower_bound (0 when solved to optimality).
        solve_time_s: MILP wall time. worst_case_labels: (m,) labels of that flip set.
        n_flips: number of flipped labels in that flip set.
    """

    index: int
    budget: int
    status: str
    clean_prediction: int
    clean_margin: float
    worst_case_margin: float
    worst_case_score: Any
    margin_lower_bound: float
    gap: float
    solve_time_s: float
    worst_case_labels: np.ndarray
    n_flips: int

    @property
    def certified(self) -> bool:
        """True iff the status is "certified"."""
        return self.status == "certified"


def _check_method(method: Any) -> str:
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, one of {METHODS}, got "
                        f"{type(method).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _check_time_limit(time_limit: Any) -> float | None:
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.integer,
                                                                   np.floating)):
        raise TypeError(f"time_limit must be a positive number of seconds or None, got "
                        f"{time_limit!r}")
    if not np.isfinite(time_limit) or time_limit <= 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    return float(time_limit)


@dataclass(frozen=True)
class _Inputs:
    """Validated, normalised arguments shared by the public certificate functions."""

    K_train: np.ndarray
    K_test: np.ndarray
    y: np.ndarray
    n_classes: int
    budget: int
    method: str | None
    time_limit: float | None
    kwargs: dict  # model, C, ridge (the unused parameter None)


def _validated_inputs(K_train: Any, K_test: Any, y_train: Any, *, model: Any, C: Any,
                      ridge: Any, budget_name: str, budget: Any, method: Any = None,
                      time_limit: Any = None) -> _Inputs:
    """The one validation preamble of every public function here: kernels, labels, model
    parameters, the budget (named ``budget_name`` in errors), and, where the function takes
    them, ``method`` and ``time_limit``."""
    K_train, K_test, y, n_classes = validate_certificate_inputs(
        K_train, K_test, y_train, model=model, C=C, ridge=ridge, budget_name=budget_name,
        budget=budget)
    model, C, ridge = validate_model_parameters(model, C, ridge)
    return _Inputs(K_train=K_train, K_test=K_test, y=y, n_classes=n_classes,
                   budget=validate_budget(budget, budget_name, K_train.shape[0]),
                   method=None if method is None else _check_method(method),
                   time_limit=_check_time_limit(time_limit),
                   kwargs=dict(model=model, C=C, ridge=ridge))


def _enumeration_is_small(m: int, budget: int, n_classes: int, model: str) -> bool:
    n = count_flip_sets(m, budget, n_classes)
    if model == "krr":
        return n <= AUTO_ENUMERATE_KRR
    return n * (1 if n_classes == 2 else n_classes) <= AUTO_ENUMERATE_SVM


def _try_closed_form(method: str, solve: Callable[[Any], Any]) -> Any:
    """Run Part III's closed form, ``solve(closed_form_module)``.

    For ``method="closed_form"`` every error propagates (``RegimeError`` outside its regime);
    for ``method="auto"`` a ``RegimeError`` returns None so that the caller falls back to an
    exact search. (Imported lazily: the closed form builds on this module's validation.)
    """
    from certlab.poisoning import closed_form

    try:
        return solve(closed_form)
    except closed_form.RegimeError:
        if method == "closed_form":
            raise
        return None


def min_label_flips(K_train: Any, K_test: Any, y_train: Any, *, model: str = "svm",
                    C: float | None = None, ridge: float | None = None, max_flips: int,
                    method: str = "auto", time_limit: float | None = None,
                    node_limit: int | None = None, progress: bool = False) -> np.ndarray:
    """Fewest training-label flips that change each test prediction.

    Args:
        K_train: (m, m) symmetric kernel of the labeled (attackable) training points.
        K_test: (t, m) kernel between test and training points.
        y_train: (m,) labels: {-1, +1} or {0, 1} (binary) or 0..c-1 (multi-class, one-vs-rest
            models and the exact multi-class formulation; a flip moves a label to any other
            class).
        model: "svm" (bias-free hinge-loss SVM, needs ``C``) or "krr" (kernel ridge
            regression, needs ``ridge``).
        max_flips: largest flip budget examined, 0 <= max_flips <= m.
        method: "auto", "milp", "enumerate" or "closed_form" (see the module docstring).
        time_limit: WALL-CLOCK seconds per MILP solve (method "milp"; None: no limit). A
            time-limited row gets its proven LOWER bound (conservative) and a RuntimeWarning;
            on a loaded machine solves time out more often, so results depend on load.
        node_limit: branch-and-bound nodes per MILP solve (None: no limit): a deterministic
            work limit, preferred over ``time_limit`` (same answer whatever the load).
        progress: show a tqdm bar (enumeration / MILP loop over test rows).

    Returns:
        int64 (t,): the minimum number of flips, ``max_flips + 1`` where no flip set of size
        <= max_flips changes the prediction, 0 where the clean prediction is a tie.

    Raises:
        ValueError / TypeError for bad input (SVM: K_train must be positive semi-definite);
        ``certlab.poisoning.closed_form.RegimeError`` (a ValueError) for
        method="closed_form" outside its regime; RuntimeError only if the CLEAN SVM cannot
        be solved to tolerance (its prediction is then undefined). A re-training within the
        search that cannot be certified to tolerance never raises: it counts as a changed
        prediction (the result can only get smaller) with a RuntimeWarning.
    """
    inp = _validated_inputs(K_train, K_test, y_train, model=model, C=C, ridge=ridge,
                            budget_name="max_flips", budget=max_flips, method=method,
                            time_limit=time_limit)
    K_train, K_test, y, n_classes = inp.K_train, inp.K_test, inp.y, inp.n_classes
    max_flips, method, time_limit, kwargs = inp.budget, inp.method, inp.time_limit, inp.kwargs
    if method in ("closed_form", "auto"):
        flips = _try_closed_form(method, lambda cf: cf.closed_form_min_flips(
            K_train, K_test, y, n_classes, max_flips=max_flips, **kwargs))
        if flips is not None:
            return np.asarray(flips, dtype=np.int64)
        method = ("enumerate" if _enumeration_is_small(K_train.shape[0], max_flips,
                                                        n_classes, model) else "milp")
    if method == "enumerate":
        flips, _ = enumerate_min_flips(K_train, K_test, y, n_classes, max_flips=max_flips,
                                       progress=progress, **kwargs)
        return flips
    state = clean_state(K_train, K_test, y, n_classes, **kwargs)
    out = np.empty(K_test.shape[0], dtype=np.int64)
    rows = range(K_test.shape[0])
    if progress:
        from tqdm import tqdm
        rows = tqdm(rows, desc="MILP per test row", leave=False)
    for i in rows:
        sub = _substate(state, i)
        rec = milp_min_flips(K_train, K_test[i:i + 1], y, n_classes, max_flips=max_flips,
                             time_limit=time_limit, node_limit=node_limit, state=sub,
                             **kwargs)[0]
        if not rec["exact"]:
            warnings.warn(f"test row {i}: MILP not solved exactly ({rec['status']}); "
                          f"returning its proven lower bound {rec['min_flips']}",
                          RuntimeWarning, stacklevel=2)
        out[i] = rec["min_flips"]
    return out


def _substate(state: dict, i: int) -> dict:
    """The clean state restricted to test row i."""
    sub = dict(state)
    for key in ("scores", "prediction", "margin", "tie_tol", "scale", "tie_scale", "q"):
        if key in state:
            sub[key] = state[key][i:i + 1]
    if state["W"] is not None:
        sub["W"] = state["W"][i:i + 1]
    return sub


def collective_flips(K_train: Any, K_test: Any, y_train: Any, *, model: str,
                     C: float | None = None, ridge: float | None = None, budget: int,
                     method: str = "auto", time_limit: float | None = None,
                     node_limit: int | None = None, progress: bool = False) -> int:
    """The most test predictions that ONE flip set of size <= ``budget`` changes at once.

    Arguments as in :func:`min_label_flips` (``budget`` replaces ``max_flips``). The collective
    certificate certifies ``t - collective_flips(...)`` of the t test predictions
    simultaneously. With ``time_limit`` the MILP's proven UPPER bound is returned when the
    solve is not finished (conservative; RuntimeWarning).

    Returns:
        int in [0, t].
    """
    inp = _validated_inputs(K_train, K_test, y_train, model=model, C=C, ridge=ridge,
                            budget_name="budget", budget=budget, method=method,
                            time_limit=time_limit)
    K_train, K_test, y, n_classes = inp.K_train, inp.K_test, inp.y, inp.n_classes
    budget, method, time_limit, kwargs = inp.budget, inp.method, inp.time_limit, inp.kwargs
    if method in ("closed_form", "auto"):
        changed = _try_closed_form(method, lambda cf: cf.closed_form_collective_flips(
            K_train, K_test, y, n_classes, budget=budget, **kwargs))
        if changed is not None:
            return int(changed)
        method = ("enumerate" if _enumeration_is_small(K_train.shape[0], budget, n_classes,
                                                        model) else "milp")
    if method == "enumerate":
        best, _ = enumerate_collective(K_train, K_test, y, n_classes, budget=budget,
                                       progress=progress, **kwargs)
        return int(best)
    rec = milp_collective(K_train, K_test, y, n_classes, budget=budget, time_limit=time_limit,
                          node_limit=node_limit, **kwargs)
    return int(rec["max_changed"])


def collective_flips_curve(K_train: Any, K_test: Any, y_train: Any, *, model: str,
                           C: float | None = None, ridge: float | None = None, max_budget: int,
                           method: str = "auto", time_limit: float | None = None,
                           progress: bool = False) -> np.ndarray:
    """:func:`collective_flips` for every budget 0..max_budget.

    With method "enumerate" (or "auto" when enumeration is small, i.e. when the closed form
    does not decide every budget) all budgets come from ONE pass over the labellings within
    ``max_budget`` flips; otherwise :func:`collective_flips` is called per budget.

    Returns:
        int64 (max_budget + 1,), non-decreasing; entry k is ``collective_flips(...,
        budget=k)``.
    """
    inp = _validated_inputs(K_train, K_test, y_train, model=model, C=C, ridge=ridge,
                            budget_name="max_budget", budget=max_budget, method=method,
                            time_limit=time_limit)
    K_train, K_test, y, n_classes = inp.K_train, inp.K_test, inp.y, inp.n_classes
    max_budget, method, time_limit, kwargs = (inp.budget, inp.method, inp.time_limit,
                                              inp.kwargs)
    if method == "auto":
        curve = _try_closed_form(method, lambda cf: [cf.closed_form_collective_flips(
            K_train, K_test, y, n_classes, budget=k, **kwargs) for k in range(max_budget + 1)])
        if curve is not None:
            return np.array(curve, dtype=np.int64)
        method = ("enumerate" if _enumeration_is_small(K_train.shape[0], max_budget,
                                                        n_classes, model) else "milp")
    if method == "enumerate":
        return enumerate_collective_curve(K_train, K_test, y, n_classes, max_budget=max_budget,
                                          progress=progress, **kwargs)
    if method == "milp":  # one chain of deciding MILPs, each budget seeded with the last
        recs = milp_collective_curve(K_train, K_test, y, n_classes, max_budget=max_budget,
                                     time_limit=_check_time_limit(time_limit), **kwargs)
        return np.array([r["max_changed"] for r in recs], dtype=np.int64)
    return np.array([collective_flips(K_train, K_test, y, budget=k, method=method,
                                      time_limit=time_limit, **kwargs)
                     for k in range(max_budget + 1)], dtype=np.int64)


def certify_samplewise(K_train: Any, K_test: Any, y_train: Any, *, model: str = "svm",
                       C: float | None = None, ridge: float | None = None, budget: int,
                       time_limit: float | None = None, node_limit: int | None = None,
                       progress: bool = False) -> list[SampleCertificate]:
    """The paper's sample-wise MILP certificate of every test row against ``budget`` flips.

    Decides the sign of the clean prediction's worst-case margin over all flip sets of size
    <= budget (exact enumeration of small flip sets, a greedy attack, then one feasibility
    MILP per test row and rival class; :func:`certlab.poisoning.milp.milp_worst_margin`) and
    re-trains the worst flip set found exactly. ``time_limit`` is wall-clock (load-dependent),
    ``node_limit`` a deterministic work limit (branch-and-bound nodes per solve).

    Returns:
        One :class:`SampleCertificate` per test row (status "certified" / "not certified" /
        "unknown"; a time-limited solve is never "certified" unless its proven bound is).
    """
    inp = _validated_inputs(K_train, K_test, y_train, model=model, C=C, ridge=ridge,
                            budget_name="budget", budget=budget, time_limit=time_limit)
    K_train, K_test, y, n_classes = inp.K_train, inp.K_test, inp.y, inp.n_classes
    budget, time_limit = inp.budget, inp.time_limit
    model, C, ridge = inp.kwargs["model"], inp.kwargs["C"], inp.kwargs["ridge"]
    state = clean_state(K_train, K_test, y, n_classes, **inp.kwargs)
    rows = range(K_test.shape[0])
    if progress:
        from tqdm import tqdm
        rows = tqdm(rows, desc="sample-wise MILP", leave=False)
    out = []
    for i in rows:
        rec = milp_worst_margin(K_train, K_test[i:i + 1], y, n_classes, model=model, C=C,
                                ridge=ridge, budget=budget, time_limit=time_limit,
                                node_limit=node_limit, state=_substate(state, i))[0]
        score = rec["worst_scores"]
        out.append(SampleCertificate(
            index=i, budget=budget, status=rec["status"],
            clean_prediction=int(state["prediction"][i]),
            clean_margin=float(state["margin"][i]),
            worst_case_margin=float(rec["worst_margin"]),
            worst_case_score=float(score) if n_classes == 2 else np.asarray(score),
            margin_lower_bound=float(rec["lower_bound"]), gap=float(rec["gap"]),
            solve_time_s=float(rec["solve_time_s"]), worst_case_labels=rec["witness"],
            n_flips=int(np.sum(rec["witness"] != y))))
    return out


def _numeric_array(value: Any, name: str) -> np.ndarray:
    """float64 array of a numeric (non-boolean) input, or a TypeError naming ``name``."""
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be numeric, got {value!r} (dtype {arr.dtype})")
    return arr.astype(np.float64)


def certified_fraction(min_flips: Any, budgets: Any, correct: Any = None) -> np.ndarray:
    """Share of test rows certified at each budget (certified accuracy with ``correct``).

    Args:
        min_flips: (t,) output of :func:`min_label_flips`.
        budgets: (b,) flip budgets k; a row is certified at k iff min_flips > k.
        correct: optional (t,) bools, the clean prediction is right (certified accuracy).

    Returns:
        float64 (b,) fractions of all t rows.
    """
    flips = _numeric_array(min_flips, "min_flips")
    if flips.ndim != 1 or flips.size == 0:
        raise ValueError(f"min_flips must be a non-empty 1-D array, got shape {flips.shape}")
    if np.any(np.isnan(flips)) or np.any(flips < 0):
        raise ValueError(f"min_flips must hold non-negative numbers of flips (no NaN), got "
                         f"values in [{np.nanmin(flips)}, {np.nanmax(flips)}]"
                         + (" and NaN" if np.any(np.isnan(flips)) else ""))
    ks = np.atleast_1d(_numeric_array(budgets, "budgets"))
    if ks.ndim != 1 or ks.size == 0:
        raise ValueError(f"budgets must be a number or a non-empty 1-D array, got shape "
                         f"{ks.shape}")
    if not np.all(np.isfinite(ks)) or np.any(ks < 0):
        raise ValueError(f"budgets must be finite and >= 0, got {budgets!r}")
    ok = np.ones(flips.shape, dtype=bool)
    if correct is not None:
        ok = np.asarray(correct)
        if ok.dtype != bool:
            raise TypeError(f"correct must be a boolean array, got dtype {ok.dtype}")
        if ok.shape != flips.shape:
            raise ValueError(f"correct must have shape {flips.shape}, got {ok.shape}")
    return np.array([np.mean((flips > k) & ok) for k in ks], dtype=np.float64)
