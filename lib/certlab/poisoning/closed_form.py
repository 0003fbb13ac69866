"""ScaLabelCert: exact closed-form label-flip certificates for models linear in the labels.

Mohgaonkar et al. (2026) observe that two NTK learners are *linear in the training labels*:

- kernel ridge regression (KRR, always): f(x) = k(x)^T (K + lambda I)^-1 Y, with Y the (m, c)
  one-hot label matrix (binary: the {-1, +1} vector; its argmax over the two one-hot scores is
  the sign of k^T (K + lambda I)^-1 y);
- the bias-free hinge-loss kernel SVM (Sabanayagam et al., 2025, dual without bias) whenever
  every dual variable sits at its upper bound C for every labelling. Then
  f(x) = C sum_j y_j K(x, x_j); one-vs-rest class scores are
  f_c(x) = C sum_j (2 Y_jc - 1) K(x, x_j) = 2 C sum_j Y_jc K(x, x_j) - const, again linear in
  the one-hot labels with a class-independent constant that does not change the argmax.

In both cases the class scores are s_c(x) = sum_j w_j [y_j = c] (+ a constant shared by all
classes) with per-label weights w = (K + lambda I)^-1 k(x) (KRR) or w = C k(x) (SVM), so every
training label contributes independently. For the prediction T = argmax_c s_c (ties to the
smallest class index) and a rival class r, the margin D = s_T - s_r drops when label j is
flipped by at most (its best move):

- y_j = T:      2 w_j if w_j > 0 (move it to r), otherwise no flip helps;
- y_j = r:      2 |w_j| if w_j < 0 (move it to T), otherwise no flip helps;
- y_j = o else: |w_j| (to r if w_j > 0, to T if w_j < 0).

Label moves are independent (each label's best move does not depend on the others), so the
fewest flips making r beat T take the largest gains first: sort them, take prefix sums, find
the first prefix that reaches D (up to the tie rule below). A flip set changes the prediction
iff some rival beats T, so the fewest flips that change the prediction is the minimum over
rivals: exact, O(c m log m) per test point (Mohgaonkar et al., 2026, ScaLabelCert). Binary labels
{-1, +1} are the two-class case with class index 0 = -1 and 1 = +1 (the convention of
:mod:`certlab.poisoning.validation`): the prediction is +1 iff f(x) > 0, f(x) = 0 gives -1.

Ties follow the project's conservative rule shared with "enumerate" and "milp"
(:data:`certlab.poisoning.svm.TIE_RTOL`): a prediction counts as changed as soon as its margin
over the best other class is <= TIE_RTOL * score_scale (score_scale = the largest |decision
value| any labelling can give, :func:`certlab.poisoning.svm.score_scale`), whatever the class
indices; so the sort looks for the first prefix whose gains reach D - tolerance, and a clean
prediction within the tolerance of a tie needs 0 flips. This can only lower a certificate.

For c >= 3 the same per-rival value is a lower bound (often attained) on the fewest flips that
make the model predict exactly r, which EnsembleCert needs; :func:`closed_form_rival_flips`
reports where an explicit flip set attains it.

Outside the SVM regime the dual variables depend on the labels, f is not linear in them, and
the functions here raise :class:`RegimeError` instead of answering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .svm import TIE_RTOL, krr_weights, score_scale

__all__ = [
    "RegimeError",
    "RivalFlips",
    "closed_form_collective_flips",
    "closed_form_min_flips",
    "closed_form_rival_flips",
    "label_weights",
    "svm_linear_regime",
    "svm_regime_max_C",
]


class RegimeError(ValueError):
    """The closed form does not apply (SVM outside its linear regime, or a collective
    certificate the closed form cannot decide exactly): use an exact solver instead."""


def svm_regime_max_C(K_train: Any) -> float:
    """Largest C of the sufficient regime condition: 1 / max_i sum_j |K_ij| (inf for K = 0)."""
    K = np.asarray(K_train, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ValueError(f"K_train must be a non-empty square (m, m) matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError("K_train must contain only finite values")
    row = float(np.max(np.sum(np.abs(K), axis=1)))
    return np.inf if row == 0.0 else 1.0 / row


def svm_linear_regime(K_train: Any, C: float) -> bool:
    """Whether the bias-free kernel SVM has every dual variable at C for EVERY labelling.

    Sufficient condition: C * max_i sum_j |K_ij| <= 1.

    Proof. The dual (Sabanayagam et al., 2025, Eq. 2) is min_a 1/2 a^T Q a - 1^T a over
    0 <= a <= C with Q = (y y^T) * K. Its gradient at a = C 1 is
    g_i = C sum_j y_i y_j K_ij - 1 <= C sum_j |K_ij| - 1 <= 0 for every labelling y in
    {-1, +1}^m. A box-constrained point is a KKT point iff g_i >= 0 where a_i = 0,
    g_i <= 0 where a_i = C and g_i = 0 in between; a = C 1 with g <= 0 satisfies this (the
    multipliers of a_i <= C are v_i = -g_i >= 0, those of a_i >= 0 are u_i = 0, exactly the
    MILP's stationarity sum_j K_ij y_i y_j a_j - u_i + v_i = 1). For a positive
    semi-definite K the problem is convex, so KKT points are optimal. If the optimum is not
    unique, all optima a* share Q a* (the objective is constant on the segment between two
    optima, which forces (a1 - a2)^T Q (a1 - a2) = 0); hence y * (a1 - a2) lies in the null
    space of K and, for a kernel that is PSD on training and test points together, k(x) is in
    the range of K, so f(x) = sum_j y_j a_j K(x, x_j) is the same for every optimum.
    Therefore f(x) = C sum_j y_j K(x, x_j) for every labelling, also for the one-vs-rest
    models of multi-class problems (same K, same C). The condition is exactly where the tight
    big-M of the MILP's lower multiplier, max(0, C sum_j |K_ij| - 1), vanishes for every i.
    It is sufficient, not necessary; outside it the functions of this module refuse.

    Args:
        K_train: (m, m) kernel matrix.
        C: the SVM box bound, > 0.

    Returns:
        True if C * max_i sum_j |K_ij| <= 1.
    """
    if isinstance(C, bool) or not isinstance(C, (int, float, np.integer, np.floating)):
        raise TypeError(f"C must be a positive number, got {C!r}")
    if not np.isfinite(C) or C <= 0:
        raise ValueError(f"C must be a finite positive number, got {C!r}")
    return bool(float(C) <= svm_regime_max_C(K_train))


def label_weights(K_train: np.ndarray, K_test: np.ndarray, *, model: str, C: float | None,
                  ridge: float | None) -> np.ndarray:
    """Per-label weights W (t, m): class score s_c(x_i) = sum_j W_ij [y_j = c] (+ const_i).

    KRR: W = K_test (K_train + ridge I)^-1; SVM (regime only): W = C K_test.

    Raises:
        RegimeError: model="svm" with C outside :func:`svm_linear_regime`.
        ValueError: unknown model or a singular K_train + ridge I.
    """
    if model == "krr":
        try:
            return np.ascontiguousarray(krr_weights(K_train, K_test, ridge))
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"K_train + ridge I is singular (ridge = {ridge})") from exc
    if model == "svm":
        if not svm_linear_regime(K_train, C):
            c_max = svm_regime_max_C(K_train)
            raise RegimeError(
                f"C = {C:g} is outside the SVM's linear regime: C * max_i sum_j |K_ij| = "
                f"{C / c_max:.4g} > 1 (needs C <= {c_max:.4g}); the dual variables then depend "
                "on the labels and the closed form is not exact: use method='milp' or "
                "'enumerate'")
        return C * K_test
    raise ValueError(f"model must be 'svm' or 'krr', got {model!r}")


def _class_indices(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Binary labels ({-1, +1} or {0, 1}) -> class indices {0, 1}; 0..c-1 labels unchanged."""
    if n_classes == 2:
        return (y == 1).astype(np.int64)
    return y.astype(np.int64)


def _scores(W: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    onehot = np.zeros((labels.shape[0], n_classes))
    onehot[np.arange(labels.shape[0]), labels] = 1.0
    return W @ onehot


def _gains(W: np.ndarray, labels: np.ndarray, top: np.ndarray, rival: int) -> np.ndarray:
    """(t, m) largest reduction of s_top - s_rival each label's flip can make (>= 0)."""
    lab = labels[None, :]
    return np.where(lab == top[:, None], 2.0 * np.maximum(W, 0.0),
                    np.where(lab == rival, 2.0 * np.maximum(-W, 0.0), np.abs(W)))


@dataclass
class RivalFlips:
    """Per-rival ScaLabelCert result for t test points and c classes.

    Attributes:
        predictions: int64 (t,) predicted class indices (binary: 0 = -1, 1 = +1).
        flips: float64 (t, c): fewest flips after which class c's score comes within the tie
            tolerance of (or exceeds) the predicted class's score; 0 for the predicted class
            and for rivals already tied with it; inf if no flip set does; ``max_flips + 1``
            if none of size <= max_flips does, when a cap was given.
        exact: bool (t, c): True where an explicit flip set of that size makes class c the
            top score by more than the tie tolerance (so the model predicts c whatever the
            rounding and the tie rule), or where no flip set within the cap beats the
            prediction. Where False, ``flips`` is a lower bound on the fewest flips that make
            the model predict c.
        tolerance: float64 (t,) the tie tolerance, in the units of the one-hot class scores
            s_c = sum_j W_ij [y_j = c].
    """

    predictions: np.ndarray
    flips: np.ndarray
    exact: np.ndarray
    tolerance: np.ndarray


def _tie_tolerance(K_train: np.ndarray, K_test: np.ndarray, W: np.ndarray, n_classes: int, *,
                   model: str, C: float | None) -> np.ndarray:
    """TIE_RTOL * score_scale of :mod:`certlab.poisoning.svm`, converted to one-hot units.

    The project's decision values are f = s_1 - s_0 (binary), s_c (multi-class KRR) and
    f_c = 2 s_c - const (one-vs-rest SVM), so a multi-class SVM margin is twice ours.
    """
    scale = score_scale(K_test, model=model, C=C, weights=W if model == "krr" else None,
                        K_train=K_train if model == "svm" else None)
    unit = 2.0 if (model == "svm" and n_classes > 2) else 1.0
    return TIE_RTOL * scale / unit


def _changed(S_new: np.ndarray, predictions: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Whether each prediction counts as changed under new one-hot scores S_new (..., t, c):
    its margin over the best other class is <= tol (the project's conservative tie rule)."""
    own = np.take_along_axis(S_new, predictions[..., None], axis=-1)[..., 0]
    others = S_new.copy()
    np.put_along_axis(others, predictions[..., None], -np.inf, axis=-1)
    return own - others.max(axis=-1) <= tol


def _rival_flips_from_weights(W: np.ndarray, labels: np.ndarray, n_classes: int,
                              max_flips: int | None, tol: np.ndarray, *,
                              base_model: bool = False) -> RivalFlips:
    t, m = W.shape
    S = _scores(W, labels, n_classes)
    if base_model:
        # the smallest class whose score is within the tie tolerance of the top score: exact
        # ties go to the smallest index even when rounding breaks them
        top = np.argmax(S >= S.max(axis=1, keepdims=True) - tol[:, None], axis=1)
    else:
        top = np.argmax(S, axis=1)  # first index among ties = smallest class index
    flips = np.zeros((t, n_classes))
    exact = np.ones((t, n_classes), dtype=bool)
    kcap = m if max_flips is None else min(m, max_flips)
    for r in range(n_classes):
        sel = np.flatnonzero(top != r)
        if sel.size == 0:
            continue
        p = top[sel]
        D = S[sel, p] - S[sel, r]
        need = D - tol[sel]  # success iff the summed gains reach D - tol (margin <= tol)
        tied = need <= 0
        if kcap == 0:
            flips[sel, r] = np.where(tied & ~base_model, 0.0, np.inf)
            continue
        Wsel = W[sel]
        G = _gains(Wsel, labels, p, r)
        order = np.argsort(-G, axis=1, kind="stable")[:, :kcap]
        Gs = np.take_along_axis(G, order, axis=1)
        R = np.cumsum(Gs, axis=1)
        win = (R >= need[:, None]) & (Gs > 0)  # a zero gain changes nothing
        found = win.any(axis=1) & ~tied
        k = np.argmax(win, axis=1) + 1
        if base_model:
            # without a flip the model is unchanged and predicts p exactly, so a tied rival
            # costs at least 1 flip (a lower bound; exact where the check below confirms it)
            k = np.where(tied, 1, k)
            found |= tied
            tied = np.zeros_like(tied)
        # not found: impossible (kcap == m) or more than max_flips (capped at the end)
        flips[sel, r] = np.where(tied, 0.0, np.where(found, k, np.inf))
        if n_classes > 2 and np.any(found):
            # does the minimal flip set make r the top class (not only beat p)?
            fi = np.flatnonzero(found)
            chosen = np.arange(order.shape[1])[None, :] < k[fi, None]
            idx = order[fi]
            wsub = np.take_along_axis(Wsel[fi], idx, axis=1) * chosen
            lab = labels[idx]
            # each chosen label leaves its class for r (w > 0 or it was in p) or for p
            to_r = ((wsub > 0) | ((lab == p[fi, None]) & chosen)) & (lab != r)
            newS = S[sel[fi]].copy()
            np.add.at(newS, (np.repeat(np.arange(fi.size), idx.shape[1]), lab.ravel()),
                      -wsub.ravel())
            newS[:, r] += np.sum(np.where(to_r, wsub, 0.0), axis=1)
            newS[np.arange(fi.size), p[fi]] += np.sum(np.where(to_r, 0.0, wsub), axis=1)
            others = newS.copy()
            others[:, r] = -np.inf
            # exact only if r leads every other class by more than the tie tolerance: then
            # r is the argmax whatever the rounding and whatever the tie rule
            exact[sel[fi], r] = newS[:, r] - others.max(axis=1) > tol[sel[fi]]
        if n_classes == 2 and base_model and np.any(found):
            # binary: beating p is predicting r unless the new margin is within the tolerance
            fi = np.flatnonzero(found)
            exact[sel[fi], r] = (np.take_along_axis(R, k[fi, None] - 1, axis=1)[:, 0]
                                 - D[fi] > tol[sel[fi]])
        if np.any(tied):
            # a clean near-tie counts as beaten with 0 flips; predicting r is not certain
            exact[sel[tied], r] = False
    flips[np.arange(t), top] = 0.0
    if max_flips is not None:
        flips = np.minimum(flips, max_flips + 1)
    return RivalFlips(predictions=top.astype(np.int64), flips=flips, exact=exact,
                      tolerance=tol)


def _weights_and_tolerance(K_train, K_test, n_classes, model, C, ridge):
    W = label_weights(K_train, K_test, model=model, C=C, ridge=ridge)
    return W, _tie_tolerance(K_train, K_test, W, n_classes, model=model, C=C)


def closed_form_rival_flips(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                            n_classes: int, *, model: str, C: float | None = None,
                            ridge: float | None = None,
                            max_flips: int | None = None,
                            base_model: bool = False) -> RivalFlips:
    """Fewest flips making each rival class beat each test prediction (ScaLabelCert).

    "Beat" follows the project's conservative tie rule: class r beats the prediction p once
    s_p - s_r <= TIE_RTOL * score_scale (:mod:`certlab.poisoning.svm`), so ``flips`` is a
    lower bound on the fewest flips after which the model predicts r, whatever the rounding
    and however exact ties are broken. A rival within the tolerance of a clean tie costs 0
    flips (the sample-wise convention: a near-tie counts as changed) unless
    ``base_model=True``, the rule of a partition-aggregation base model: its prediction is
    the smallest class whose score is within the tie tolerance of the top score (so exact
    ties go to the smallest class even where rounding breaks them), and without a flip the
    model is unchanged, so every rival costs at least 1 flip. ``exact`` is
    True only where the explicit flip set makes r lead every other class by more than the
    tolerance, i.e. makes the model predict r under any tie rule.

    Args:
        K_train: (m, m) float64 training kernel; K_test: (t, m) test-vs-train kernel.
        y: (m,) int labels: binary {-1, +1} or {0, 1} (index 1 = +1), or class indices
            0..n_classes-1.
        n_classes: c >= 2.
        model, C, ridge: "krr" (ridge > 0) or "svm" (C > 0, linear regime).
        max_flips: optional cap; rival costs above it are reported as max_flips + 1 (and only
            the max_flips largest gains are kept).
        base_model: the base-model rule of a partition-aggregation ensemble (see above).

    Returns:
        :class:`RivalFlips` (predictions as class indices; binary: 1 = +1).

    Raises:
        RegimeError: SVM outside its linear regime.
    """
    labels = _class_indices(np.asarray(y), n_classes)
    W, tol = _weights_and_tolerance(K_train, K_test, n_classes, model, C, ridge)
    return _rival_flips_from_weights(W, labels, n_classes, max_flips, tol,
                                     base_model=bool(base_model))


def closed_form_min_flips(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                          n_classes: int, *, model: str, C: float | None = None,
                          ridge: float | None = None, max_flips: int) -> np.ndarray:
    """ScaLabelCert: exact fewest label flips that change each test prediction.

    Inputs are assumed validated by
    :func:`certlab.poisoning.validation.validate_certificate_inputs` (binary y in {-1, +1},
    multi-class y in 0..c-1). ``min_label_flips(..., method="closed_form")`` calls this.

    Args:
        K_train: (m, m) training kernel; K_test: (t, m) test-vs-train kernel.
        y: (m,) labels; n_classes: 2 (binary) or c >= 3.
        model: "krr" (needs ridge) or "svm" (needs C inside :func:`svm_linear_regime`).
        max_flips: budget cap, 0 <= max_flips <= m.

    Returns:
        int64 (t,): fewest flips after which the prediction counts as changed (binary: +1 iff
        f > 0; multi-class: argmax, ties to the smallest index; changed once the clean
        class's margin is <= TIE_RTOL * score_scale, as for "enumerate" and "milp", so a
        clean near-tie gives 0), or max_flips + 1 when no flip set of size <= max_flips does.

    Raises:
        RegimeError: model="svm" outside the linear regime.
    """
    res = closed_form_rival_flips(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge,
                                  max_flips=max_flips)
    flips = res.flips.copy()
    flips[np.arange(flips.shape[0]), res.predictions] = np.inf
    return np.minimum(flips.min(axis=1), max_flips + 1).astype(np.int64)


def closed_form_collective_flips(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                                 n_classes: int, *, model: str, C: float | None = None,
                                 ridge: float | None = None, budget: int) -> int:
    """Largest number of test predictions ONE flip set of size <= budget changes, where the
    closed form can decide it exactly.

    One flip set acts on all test points at once, so the sample-wise sort does not solve the
    collective problem in general (it is a maximum-coverage-type problem). The closed form
    gives an upper bound U = #{i : min flips of point i <= budget} and lower bounds from
    explicit flip sets (the empty set, each attackable point's minimal flip set and its
    extension to the budget, all evaluated exactly on every test point). When a flip set
    changes U predictions the answer is exactly U and is returned; otherwise the closed form
    cannot decide and raises.

    Returns:
        int in 0..t.

    Raises:
        RegimeError: SVM outside its linear regime, or the bounds do not meet (use
            method="milp" or "enumerate").
    """
    labels = _class_indices(np.asarray(y), n_classes)
    W, tol = _weights_and_tolerance(K_train, K_test, n_classes, model, C, ridge)
    res = _rival_flips_from_weights(W, labels, n_classes, budget, tol)
    flips = res.flips.copy()
    t = flips.shape[0]
    flips[np.arange(t), res.predictions] = np.inf
    best_rival = np.argmin(flips, axis=1)
    min_flips = flips[np.arange(t), best_rival]
    upper = int(np.sum(min_flips <= budget))
    best_found = int(np.sum(min_flips == 0))  # the empty flip set
    if best_found == upper:
        return upper
    for i in np.flatnonzero((min_flips <= budget) & (min_flips > 0)):
        p, r = int(res.predictions[i]), int(best_rival[i])
        g = _gains(W[i:i + 1], labels, np.array([p]), r)[0]
        order = np.argsort(-g, kind="stable")
        for size in sorted({int(min_flips[i]), budget}):
            chosen = order[:size]
            chosen = chosen[g[chosen] > 0]
            lab = labels[chosen]
            to_r = ((W[i, chosen] > 0) | (lab == p)) & (lab != r)
            new_labels = labels.copy()
            new_labels[chosen] = np.where(to_r, r, p)
            changed = _changed(_scores(W, new_labels, n_classes), res.predictions, tol)
            best_found = max(best_found, int(changed.sum()))
            if best_found == upper:
                return upper
    raise RegimeError(
        f"the closed form cannot decide this collective certificate exactly: at most {upper} "
        f"predictions are changeable with {budget} flips, the best flip set found changes "
        f"{best_found}; use method='milp' or 'enumerate'")
