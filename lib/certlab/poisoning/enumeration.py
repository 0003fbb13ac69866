"""Brute-force label-flip certificates: every flip set up to a size, each re-trained exactly.

This is the independent ground truth for the MILP (:mod:`certlab.poisoning.milp`) and the
closed forms: it makes no use of KKT reformulations or big-M constants, only of the learner
itself (:func:`certlab.poisoning.svm.solve_svm_dual_batch`, solved to a KKT residual of 1e-10
and a duality gap of about 1e-12, or the closed-form kernel ridge regression).

Flip sets (Sabanayagam et al., 2025, Sec. 3): the attacker changes the labels of at most k
of the m labeled training points. Binary: a flip negates a label. Multi-class (c >= 3): a
flip moves a label to ANY other class, so there are sum_{j<=k} binom(m, j) (c-1)^j labellings.

"Changed prediction" (:func:`retrained_changes`, the rule the MILP's witness checks should
share): the clean class's margin (:func:`certlab.poisoning.svm.prediction_margins`) drops to
<= TIE_RTOL * score_scale; ties count as changed (conservative). For the SVM a margin within
the rigorous error bound of the re-trained decision values above that tolerance, or a
re-training that failed, is undecided and also counts as changed (with a RuntimeWarning):
a certificate can only get smaller, never wrongly larger, and a run never ends with an
exception because one of its re-trainings did not converge.
"""

from __future__ import annotations

import itertools
import warnings
from math import comb
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from certlab.poisoning.svm import (TIE_RTOL, dual_error_radius, kernel_projection_norms,
                                   krr_weights, ovr_labels, prediction_margins,
                                   predict_from_scores, safe_min_eigenvalue, score_scale,
                                   solve_svm_dual_batch)

__all__ = [
    "count_flip_sets",
    "iter_flipped_labelings",
    "perturbed_scores",
    "clean_state",
    "retrained_changes",
    "enumerate_min_flips",
    "enumerate_collective",
    "enumerate_collective_curve",
]

#: Labellings re-trained per batch.
DEFAULT_BATCH = 8192


def count_flip_sets(m: int, max_flips: int, n_classes: int) -> int:
    """Number of labellings within ``max_flips`` flips (the empty flip set included)."""
    return sum(comb(m, k) * (n_classes - 1) ** k for k in range(max_flips + 1))


def iter_flipped_labelings(y: np.ndarray, n_classes: int, k: int,
                           batch: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
    """Yield (B, m) label arrays of every labelling at exactly ``k`` flips, in batches.

    Binary labels are +-1 (a flip negates); multi-class labels 0..c-1 (a flip adds an offset
    1..c-1 modulo c, covering every other class once).
    """
    m = y.shape[0]
    if n_classes == 2:
        per_set = 1
        offsets = None
    else:
        per_set = (n_classes - 1) ** k
        offsets = np.array(list(itertools.product(range(1, n_classes), repeat=k)),
                           dtype=np.int64).reshape(per_set, k)
    sets_per_batch = max(1, batch // per_set)
    combos = itertools.combinations(range(m), k)
    while True:
        chunk = list(itertools.islice(combos, sets_per_batch))
        if not chunk:
            return
        S = np.array(chunk, dtype=np.int64).reshape(len(chunk), k)
        if n_classes == 2:
            labels = np.repeat(y[None, :], S.shape[0], axis=0)
            rows = np.repeat(np.arange(S.shape[0]), k)
            labels[rows, S.ravel()] *= -1
        else:
            n = S.shape[0] * per_set
            labels = np.repeat(y[None, :], n, axis=0)
            S_rep = np.repeat(S, per_set, axis=0)  # (n, k)
            O_rep = np.tile(offsets, (S.shape[0], 1))  # (n, k)
            rows = np.repeat(np.arange(n), k)
            cols = S_rep.ravel()
            labels[rows, cols] = (labels[rows, cols] + O_rep.ravel()) % n_classes
        yield labels


def clean_state(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray, n_classes: int, *,
                model: str, C: float | None, ridge: float | None) -> dict:
    """Clean fit: weights (KRR), signed duals (SVM), scores, predictions and tie tolerances.

    Keys: ``scale`` (t,) is the score scale in the MILP's own units (SVM: C sum_j |K_ij|,
    the size of its dual expressions; its big-M, slack and certification threshold are
    relative to it), ``tie_scale`` (t,) the tight bound on |f| for every labelling
    (:func:`certlab.poisoning.svm.score_scale` with K_train; <= ``scale``), and ``tie_tol``
    = TIE_RTOL * tie_scale, the one tie tolerance every method uses to decide "changed".
    SVM also: ``q`` (k^T K^+ k per test row), ``lam_min`` (a lower bound on K's smallest
    eigenvalue) and ``beta`` (clean signed duals).
    """
    state: dict = {"model": model, "C": C, "ridge": ridge, "n_classes": n_classes}
    if model == "krr":
        W = krr_weights(K_train, K_test, ridge)
        state["W"] = W
        state["scale"] = score_scale(K_test, model="krr", weights=W)
        state["tie_scale"] = state["scale"]
    else:
        state["W"] = None
        state["scale"] = score_scale(K_test, model="svm", C=C)
        state["tie_scale"] = score_scale(K_test, model="svm", C=C, K_train=K_train)
        state["q"] = kernel_projection_norms(K_train, K_test)
        state["lam_min"] = safe_min_eigenvalue(K_train)
        beta, _, _ = solve_svm_dual_batch(K_train, ovr_labels(y, n_classes), C)
        state["beta"] = beta  # (1 or c, m)
    scores = perturbed_scores(K_train, K_test, y[None, :], n_classes, model=model, C=C,
                              W=state["W"])[0]
    state["scores"] = scores
    state["prediction"] = predict_from_scores(scores, n_classes)
    state["margin"] = prediction_margins(scores, state["prediction"], n_classes)
    state["tie_tol"] = TIE_RTOL * state["tie_scale"]
    return state


def perturbed_scores(K_train: np.ndarray, K_test: np.ndarray, labels: np.ndarray,
                     n_classes: int, *, model: str, C: float | None = None,
                     W: np.ndarray | None = None,
                     beta_warm: np.ndarray | None = None,
                     q: np.ndarray | None = None, lam_min: float | None = None) -> Any:
    """Decision values after exact re-training on each labelling.

    Args:
        K_train: (m, m); K_test: (t, m); labels: (B, m) (+-1 binary or 0..c-1 multi-class).
        W: (t, m) KRR weights K_test (K + ridge I)^-1 (model "krr").
        beta_warm: optional (1 or c, m) clean signed duals used as a warm start (SVM).
        q: optional (t,) k^T K^+ k of the test rows (:func:`kernel_projection_norms`); when
            given (SVM), a rigorous bound on the error of each decision value is returned too.
        lam_min: optional lower bound on the smallest eigenvalue of K_train (tightens it).

    Returns:
        (B, t) binary or (B, t, c) multi-class decision values; NaN for a labelling whose SVM
        dual no solver brought to its KKT tolerance (undecided: callers count it as a
        changed prediction, which can only lower a certificate). With ``q`` (SVM):
        ``(scores, errors)``, errors of the same shape with |score - exact score| <= error
        (:func:`certlab.poisoning.svm.dual_error_radius` times sqrt(q); KRR: no ``q``).
    """
    B, m = labels.shape
    if model == "krr":
        if n_classes == 2:
            return labels.astype(np.float64) @ W.T
        onehot = np.eye(n_classes)[labels]  # (B, m, c)
        return np.einsum("tm,bmc->btc", W, onehot)
    if n_classes == 2:
        Y = labels.astype(np.float64)
        warm = None
        if beta_warm is not None:
            warm = np.where(Y * beta_warm[0][None, :] >= 0, beta_warm[0][None, :], 0.0)
    else:
        Y = np.where(labels[:, None, :] == np.arange(n_classes)[None, :, None], 1.0, -1.0)
        Y = Y.reshape(B * n_classes, m)
        warm = None
        if beta_warm is not None:
            bw = np.tile(beta_warm, (B, 1))
            warm = np.where(Y * bw >= 0, bw, 0.0)
    beta, _, _ = solve_svm_dual_batch(K_train, Y, C, beta0=warm, on_failure="nan")
    scores = beta @ K_test.T  # (B or B c, t)
    if q is not None:
        err = dual_error_radius(K_train, Y, np.nan_to_num(beta), C, lam_min)[:, None] * np.sqrt(
            np.maximum(q, 0.0))[None, :]
        # plus the float64 rounding of the product K_test @ beta itself
        err = err + (m + 2) * np.finfo(np.float64).eps * (np.abs(beta) @ np.abs(K_test).T)
        err = np.where(np.isnan(scores), np.inf, err)
    if n_classes > 2:
        scores = scores.reshape(B, n_classes, -1).transpose(0, 2, 1)
        if q is not None:
            err = err.reshape(B, n_classes, -1).transpose(0, 2, 1)
    return scores if q is None else (scores, err)


def retrained_changes(K_train: np.ndarray, K_test: np.ndarray, labels: np.ndarray,
                      state: dict, cols: np.ndarray | None = None) -> np.ndarray:
    """Which predictions count as changed after re-training on each labelling (the decision
    rule shared by enumeration and the MILP's witness checks).

    Rule: with margin M (:func:`certlab.poisoning.svm.prediction_margins`, exact re-training),
    tie tolerance tau = TIE_RTOL * score_scale and (SVM) the rigorous error bound e of the
    re-trained margin (:func:`perturbed_scores` with ``q``), the prediction

    - is changed if M <= tau (ties and near-ties count as changed),
    - is kept if M > tau + e,
    - is undecided if tau < M <= tau + e or the re-training failed (NaN): counted as changed,
      which can only lower a certificate, with a RuntimeWarning.

    Args:
        labels: (B, m); state: :func:`clean_state`; cols: the test rows to evaluate
            (default: all); K_test: ALL t test rows (``cols`` selects).

    Returns:
        bool (B, t').
    """
    sel = np.arange(K_test.shape[0]) if cols is None else np.asarray(cols)
    n_classes = state["n_classes"]
    W = None if state["W"] is None else state["W"][sel]
    if state["model"] == "svm":
        scores, err = perturbed_scores(K_train, K_test[sel], labels, n_classes, model="svm",
                                       C=state["C"], beta_warm=state.get("beta"),
                                       q=state["q"][sel], lam_min=state["lam_min"])
        margin_err = err if n_classes == 2 else 2.0 * err.max(axis=-1)
    else:
        scores = perturbed_scores(K_train, K_test[sel], labels, n_classes, model="krr", W=W)
        margin_err = np.zeros(scores.shape[:2])
    margins = prediction_margins(scores, state["prediction"][sel], n_classes)
    tau = state["tie_tol"][sel][None, :]
    undecided = ~(margins <= tau) & ~(margins > tau + margin_err)
    if np.any(undecided):
        warnings.warn(f"{int(undecided.sum())} re-trained prediction(s) within the numerical "
                      "error bound of a tie (or re-training failed): counted as changed "
                      "(conservative)", RuntimeWarning, stacklevel=3)
    return ~(margins > tau + margin_err)


def enumerate_min_flips(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                        n_classes: int, *, model: str, C: float | None = None,
                        ridge: float | None = None, max_flips: int,
                        progress: bool = False) -> tuple[np.ndarray, list]:
    """Fewest flips that change each test prediction, by exhaustive re-training.

    Inputs must already be validated (see
    :func:`certlab.poisoning.validation.validate_certificate_inputs`).

    Returns:
        ``(min_flips, witnesses)``: int64 (t,) with ``max_flips + 1`` where no labelling within
        ``max_flips`` flips changes the prediction, and per test row the (m,) labelling that
        achieves it (None where none does).
    """
    state = clean_state(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge)
    t = K_test.shape[0]
    result = np.full(t, max_flips + 1, dtype=np.int64)
    witnesses: list = [None] * t
    unresolved = np.ones(t, dtype=bool)
    total = count_flip_sets(K_train.shape[0], max_flips, n_classes)
    with tqdm(total=total, desc="enumerate flip sets", disable=not progress,
              leave=False) as bar:
        for k in range(max_flips + 1):
            for labels in iter_flipped_labelings(y, n_classes, k):
                bar.update(labels.shape[0])
                cols = np.flatnonzero(unresolved)
                changed = retrained_changes(K_train, K_test, labels, state, cols)
                hit = np.flatnonzero(changed.any(axis=0))
                for j in hit:
                    node = cols[j]
                    result[node] = k
                    witnesses[node] = labels[int(np.argmax(changed[:, j]))].copy()
                unresolved[cols[hit]] = False
                if not unresolved.any():
                    return result, witnesses
    return result, witnesses


def _most_changed_per_flip_count(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                                 n_classes: int, *, model: str, C: float | None,
                                 ridge: float | None, max_flips: int,
                                 progress: bool) -> Iterator[tuple[int, int, np.ndarray]]:
    """The loop shared by the collective enumerations: for k = 0..max_flips, yield
    ``(k, most, witness)``, the most test predictions one labelling with exactly k flips
    changes and the first labelling attaining it (a batch stops early once all t change)."""
    state = clean_state(K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge)
    t = K_test.shape[0]
    total = count_flip_sets(K_train.shape[0], max_flips, n_classes)
    with tqdm(total=total, desc="enumerate flip sets", disable=not progress,
              leave=False) as bar:
        for k in range(max_flips + 1):
            most, witness = -1, y.copy()
            for labels in iter_flipped_labelings(y, n_classes, k):
                bar.update(labels.shape[0])
                counts = retrained_changes(K_train, K_test, labels, state).sum(axis=1)
                i = int(np.argmax(counts))
                if counts[i] > most:
                    most, witness = int(counts[i]), labels[i].copy()
                if most == t:
                    break
            yield k, most, witness


def enumerate_collective(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                         n_classes: int, *, model: str, C: float | None = None,
                         ridge: float | None = None, budget: int,
                         progress: bool = False) -> tuple[int, np.ndarray]:
    """Largest number of test predictions one labelling within ``budget`` flips changes.

    Returns:
        ``(max_changed, witness_labels)`` (the first labelling attaining the maximum).
    """
    best, witness = -1, y.copy()
    for _, most, labels in _most_changed_per_flip_count(
            K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge, max_flips=budget,
            progress=progress):
        if most > best:
            best, witness = most, labels
        if best == K_test.shape[0]:
            break
    return best, witness


def enumerate_collective_curve(K_train: np.ndarray, K_test: np.ndarray, y: np.ndarray,
                               n_classes: int, *, model: str, C: float | None = None,
                               ridge: float | None = None, max_budget: int,
                               progress: bool = False) -> np.ndarray:
    """Collective certificates for every budget 0..max_budget in ONE pass over the labellings.

    Returns:
        int64 (max_budget + 1,): entry k is the largest number of test predictions one
        labelling within k flips changes (non-decreasing in k).
    """
    t = K_test.shape[0]
    best = np.full(max_budget + 1, t, dtype=np.int64)
    running = 0
    for k, most, _ in _most_changed_per_flip_count(
            K_train, K_test, y, n_classes, model=model, C=C, ridge=ridge,
            max_flips=max_budget, progress=progress):
        running = max(running, most)
        best[k] = running
        if running == t:
            break
    return best
