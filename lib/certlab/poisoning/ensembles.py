"""Partition-aggregation ensembles and their label-flip certificates.

A partition-aggregation ensemble (Deep Partition Aggregation, DPA; Levine & Feizi, 2021)
splits the training set into P disjoint parts with a label-independent hash
(:func:`certlab.poisoning.partition.hash_partition`), trains one base model per part and
predicts by majority vote, ties going to the smallest class index. A label flip changes the
training data of exactly one base model.

Two certificates (both count the label flips the ensemble prediction provably survives):

- Black-box DPA (:func:`dpa_certificate`): every base model is assumed flippable to any class
  by ONE label flip, so with vote counts n (top class T, runner-up S chosen as the attacker
  would) the prediction survives floor((n_T - n_S - [S < T]) / 2) flips (Levine & Feizi,
  2021, Theorem 1 with our tie rule).
- White-box EnsembleCert (Mohgaonkar et al., 2026; :func:`ensemble_min_flips`): the exact
  cost costs[p, c] of moving base model p to class c (from ScaLabelCert,
  :mod:`certlab.poisoning.closed_form`) is aggregated by an exact multiple-choice knapsack over
  the parts; certificate = (fewest total flips changing the ensemble prediction) - 1.

:func:`certify_partition_ensemble` builds the NTK kernel-ridge / kernel-SVM ensemble on a
precomputed kernel and returns both certificates for every test point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .closed_form import closed_form_rival_flips
from .partition import _check_parts, partition_members
from .validation import validate_kernel_pair, validate_model_parameters

__all__ = [
    "EnsembleCertificates",
    "LoosenessReport",
    "measure_ensemble_looseness",
    "certified_accuracy",
    "certify_partition_ensemble",
    "certify_partition_ensemble_blocks",
    "median_certified_flips",
    "MedianComparison",
    "compare_median_certificates",
    "merge_median_tables",
    "relative_change",
    "dpa_certificate",
    "ensemble_min_flips",
    "majority_vote",
    "vote_counts",
]


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    return int(n_classes)


def _check_votes(votes: Any, n_classes: int, name: str = "votes") -> np.ndarray:
    arr = np.asarray(votes)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integer class indices, found non-integer values")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= n_classes:
        raise ValueError(f"{name} must lie in 0..{n_classes - 1} (n_classes = {n_classes}), got "
                         f"values in [{arr.min()}, {arr.max()}]")
    return arr


def vote_counts(votes: Any, n_classes: int) -> np.ndarray:
    """Votes per class.

    Args:
        votes: int (P,) votes of the P base models for one test point, or (P, t) for t points.
        n_classes: c >= 2.

    Returns:
        int64 (c,) or (t, c) counts.
    """
    n_classes = _check_n_classes(n_classes)
    v = _check_votes(votes, n_classes)
    if v.ndim == 1:
        return np.bincount(v, minlength=n_classes).astype(np.int64)
    if v.ndim != 2:
        raise ValueError(f"votes must have shape (P,) or (P, t), got {v.shape}")
    counts = np.zeros((v.shape[1], n_classes), dtype=np.int64)
    cols = np.broadcast_to(np.arange(v.shape[1]), v.shape)
    np.add.at(counts, (cols.ravel(), v.ravel()), 1)
    return counts


def majority_vote(votes: Any, n_classes: int) -> np.ndarray | int:
    """Ensemble prediction: the most voted class, ties to the smallest class index.

    Args: as :func:`vote_counts`. Returns an int (1-D votes) or int64 (t,) predictions.
    """
    counts = vote_counts(votes, n_classes)
    pred = np.argmax(counts, axis=-1)  # argmax returns the first (smallest) index among ties
    return int(pred) if counts.ndim == 1 else pred.astype(np.int64)


def dpa_certificate(vote_counts: Any) -> np.ndarray | int:
    """Black-box DPA certificate: label flips the ensemble prediction provably survives.

    With top class T (largest count, smallest index among ties) and runner-up S chosen as the
    attacker would (largest count among the other classes, smallest index among ties - the
    choice that minimises the expression), the certificate is

        floor((n_T - n_S - [S < T]) / 2),

    since each flip moves at most one vote (from T to S) and S wins a tie only when S < T.

    Args:
        vote_counts: non-negative integer counts, shape (c,) for one test point or (t, c),
            c >= 2.

    Returns:
        int for a (c,) input, int64 (t,) otherwise.

    Raises:
        TypeError / ValueError: non-integer or negative counts, fewer than 2 classes, bad shape.
    """
    arr = np.asarray(vote_counts)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"vote_counts must hold integer counts, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"vote_counts must have shape (c,) or (t, c), got {arr.shape}")
    if arr.shape[-1] < 2:
        raise ValueError(f"vote_counts needs at least 2 classes, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"vote_counts must not be empty, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and (not np.all(np.isfinite(arr))
                                                  or np.any(arr != np.round(arr))):
        raise ValueError("vote_counts must hold integer counts, found non-integer values")
    counts = arr.astype(np.int64)
    if np.any(counts < 0):
        raise ValueError("vote_counts must be non-negative")
    single = counts.ndim == 1
    counts = np.atleast_2d(counts)
    rows = np.arange(counts.shape[0])
    top = np.argmax(counts, axis=1)
    others = counts.copy()
    others[rows, top] = -1
    second = np.argmax(others, axis=1)
    gap = counts[rows, top] - counts[rows, second] - (second < top).astype(np.int64)
    cert = gap // 2  # gap >= 0 here, so floor division is the floor
    return int(cert[0]) if single else cert


def _check_costs(costs: Any, votes: np.ndarray, n_classes: int) -> np.ndarray:
    arr = np.asarray(costs)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"costs must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.shape != (votes.shape[0], n_classes):
        raise ValueError(f"costs must have shape (P, n_classes) = ({votes.shape[0]}, {n_classes}),"
                         f" got {arr.shape}")
    if np.any(np.isnan(arr)):
        raise ValueError("costs must not contain NaN")
    if np.any(arr < 0):
        raise ValueError("costs must be non-negative (fewest label flips), found negative entries")
    finite = np.isfinite(arr)
    if np.any(arr[finite] != np.round(arr[finite])):
        raise ValueError("costs must be whole numbers of label flips (or inf)")
    own = arr[np.arange(votes.shape[0]), votes]
    if np.any(own != 0):
        bad = int(np.flatnonzero(own != 0)[0])
        raise ValueError(f"costs[p, votes[p]] must be 0 (a base model already predicts its own "
                         f"vote); costs[{bad}, {votes[bad]}] = {own[bad]}")
    return arr


def _rival_options(votes: np.ndarray, costs: np.ndarray, top: int) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Per part q and rival r: cost of lowering n_top - n_r by 1 and by 2 (inf: impossible).

    Part voting ``top``: by 2 moving it to r (costs[q, r]), by 1 moving it to any third class
    o not in {top, r} (min cost). Part voting a third class o: by 1 moving it to r. Part voting
    r: no move helps. Moves towards ``top`` never help. Returns two (P, c) arrays.
    """
    P, c = costs.shape
    cost1 = np.full((P, c), np.inf)
    cost2 = np.full((P, c), np.inf)
    at_top = votes == top
    # parts voting for a third class: +1 for r when moved to r
    third = ~at_top
    cost1[third] = costs[third]
    cost1[third, votes[third]] = np.inf  # voting r already: nothing to gain
    # parts voting top: to r gains 2; to the cheapest third class o != r gains 1
    if np.any(at_top):
        sub = costs[at_top].copy()
        sub[:, top] = np.inf
        cost2[at_top] = sub
        if c > 2:
            order = np.argsort(sub, axis=1, kind="stable")
            best, second = order[:, 0], order[:, 1]
            rows = np.arange(sub.shape[0])
            best_cost, second_cost = sub[rows, best], sub[rows, second]
            alt = np.broadcast_to(best_cost[:, None], sub.shape).copy()
            alt[rows, best] = second_cost
            cost1[at_top] = alt
    cost1[:, top] = np.inf
    cost2[:, top] = np.inf
    return cost1, cost2


def ensemble_min_flips(votes: Any, costs: Any, n_classes: int) -> int | float:
    """EnsembleCert: fewest label flips that change the ensemble's majority vote (exact).

    The ensemble predicts T = argmax of the vote counts (ties to the smallest index). It
    changes iff some rival r ends up with n_r' > n_T', or n_r' = n_T' and r < T. For a fixed
    rival each part's possible moves lower the margin n_T - n_r by 0, 1 or 2 (see
    :func:`_rival_options`), at the part's own cost, independently of the other parts
    (partitions are disjoint and hashed independently of labels). So the fewest flips for
    rival r is a multiple-choice knapsack: choose at most one move per part, reach a margin
    reduction of at least need_r = n_T - n_r + [r > T], minimise the total cost. With
    reductions of 1 or 2 per part, need_r <= 2P + 1, and the dynamic programme
    dp[x] = fewest flips reaching reduction >= x is exact in O(P * need) per rival
    (vectorised over all rivals: O(P^2 c) total, P = 1000, c = 10 in well under a second).
    The answer is the minimum over rivals.

    Args:
        votes: integer (P,) class each base model predicts.
        costs: (P, n_classes) non-negative whole numbers or inf: costs[p, c] is the fewest
            flips inside part p that make base model p predict c (0 for c = votes[p], inf when
            impossible). Lower bounds on these costs give a lower bound (a sound certificate).
        n_classes: c >= 2.

    Returns:
        The fewest total flips (int), or ``math.inf`` when no choice of finite-cost moves
        changes the prediction. The certified number of flips is this minus one.

    Raises:
        TypeError / ValueError: bad shapes, non-integer votes, negative / NaN / fractional
        costs, costs[p, votes[p]] != 0, n_classes < 2.
    """
    n_classes = _check_n_classes(n_classes)
    votes = _check_votes(votes, n_classes)
    if votes.ndim != 1:
        raise ValueError(f"votes must be a 1-D array (P,), got shape {votes.shape}")
    costs = _check_costs(costs, votes, n_classes)
    counts = np.bincount(votes, minlength=n_classes)
    top = int(np.argmax(counts))
    need = counts[top] - counts + (np.arange(n_classes) > top)
    rivals = np.flatnonzero(np.arange(n_classes) != top)
    need_r = need[rivals]
    cost1, cost2 = _rival_options(votes, costs, top)
    cost1, cost2 = cost1[:, rivals], cost2[:, rivals]
    length = int(need_r.max()) + 1
    # dp[r, x]: fewest flips reaching a margin reduction >= x against rival r (x capped)
    dp = np.full((rivals.size, length), np.inf)
    dp[:, 0] = 0.0
    useful = np.isfinite(cost1).any(axis=1) | np.isfinite(cost2).any(axis=1)
    for q in np.flatnonzero(useful):
        c1 = cost1[q][:, None]
        c2 = cost2[q][:, None]
        shifted1 = np.empty_like(dp)
        shifted1[:, 1:] = dp[:, :-1]
        shifted1[:, 0] = dp[:, 0]
        shifted2 = np.empty_like(dp)
        shifted2[:, 2:] = dp[:, :-2]
        shifted2[:, :2] = dp[:, :1]
        np.minimum(dp, shifted1 + c1, out=dp)
        np.minimum(dp, shifted2 + c2, out=dp)
    best = float(np.min(dp[np.arange(rivals.size), need_r]))
    return int(best) if math.isfinite(best) else math.inf


@dataclass
class EnsembleCertificates:
    """Certificates of a partition-aggregation ensemble on t test points (c classes, P parts).

    Attributes:
        predictions: int64 (t,) ensemble predictions (majority vote, ties to the smaller index).
        votes: int64 (P, t) base-model predictions.
        vote_counts: int64 (t, c).
        costs: float64 (P, t, c): fewest flips inside part p making base model p predict c at
            test point i (0 for its own vote, inf if impossible, >= 1 otherwise: without a
            flip a base model is unchanged). The per-rival ScaLabelCert value (fewest flips
            after which c beats the current vote, near-ties within the tie tolerance counting
            as beaten), a lower bound on the exact cost whatever the rounding and however
            exact ties are broken (see ``costs_exact``).
        costs_exact: bool (P, t, c): True where that lower bound is attained by an explicit
            flip set that makes base model p predict c by more than the tie tolerance (or
            where no flip set makes c beat the vote, cost inf).
        dpa: int64 (t,) black-box DPA certified flips.
        ensemble_cert: float64 (t,) EnsembleCert certified flips (ensemble_min_flips - 1;
            inf when no flips change the prediction).
        part_sizes: int64 (P,) training samples per part; empty parts predict class 0 (a
            model without data scores every class 0) and cannot be flipped.
    """

    predictions: np.ndarray
    votes: np.ndarray
    vote_counts: np.ndarray
    costs: np.ndarray
    costs_exact: np.ndarray
    dpa: np.ndarray
    ensemble_cert: np.ndarray
    part_sizes: np.ndarray


def certify_partition_ensemble(K_train: Any, K_test: Any, y_train: Any, parts: Any,
                               n_parts: int, *, n_classes: int | None = None,
                               model: str = "krr", C: float | None = None,
                               ridge: float | None = None,
                               progress: bool = False) -> EnsembleCertificates:
    """Train a kernel partition-aggregation ensemble and certify every test prediction.

    Base model p is the bias-free NTK kernel ridge regression (one-hot targets) or the
    bias-free kernel SVM (one-vs-rest, in its linear regime, see
    :func:`certlab.poisoning.closed_form.svm_linear_regime`) on the samples of part p; its
    prediction is the argmax of its class scores with ties to the smallest index, where
    scores within the tie tolerance (``TIE_RTOL`` times the score scale) of the top score
    count as tied, so exact ties (e.g. two classes absent from the part, both scoring 0)
    are resolved as in exact arithmetic even where rounding breaks them. Per-part flip
    costs come from ScaLabelCert (:func:`certlab.poisoning.closed_form.closed_form_rival_flips`
    with ``base_model=True``): lower bounds, >= 1 for every class other than the vote, so
    EnsembleCert >= DPA always.

    Args:
        K_train: (n, n) symmetric kernel of all training samples (only the diagonal blocks of
            the parts are used).
        K_test: (t, n) test-vs-train kernel.
        y_train: (n,) class indices 0..c-1 (binary: {0, 1}).
        parts: int (n,) part of each sample (e.g. :func:`hash_partition`), n_parts = P.
        n_classes: c (default: max label + 1, at least 2).
        model, C, ridge: "krr" with ``ridge`` or "svm" with ``C``.
        progress: show a tqdm bar over the parts.

    Returns:
        :class:`EnsembleCertificates`.

    Raises:
        RegimeError: model="svm" and some part's kernel is outside the linear regime.
        TypeError / ValueError: bad shapes, labels, parameters.
    """
    K_train, K_test = validate_kernel_pair(K_train, K_test)
    if np.shape(y_train) != (K_train.shape[0],):
        raise ValueError(f"y_train must have shape ({K_train.shape[0]},) to match K_train, got "
                         f"{np.shape(y_train)}")

    def kernel_blocks(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return K_train[np.ix_(idx, idx)], K_test[:, idx]

    return certify_partition_ensemble_blocks(kernel_blocks, K_test.shape[0], y_train, parts,
                                             n_parts, n_classes=n_classes, model=model, C=C,
                                             ridge=ridge, progress=progress)


def certify_partition_ensemble_blocks(kernel_blocks: Callable[[np.ndarray],
                                                              tuple[np.ndarray, np.ndarray]],
                                      n_test: int, y_train: Any, parts: Any, n_parts: int, *,
                                      n_classes: int | None = None, model: str = "krr",
                                      C: float | None = None, ridge: float | None = None,
                                      progress: bool = False) -> EnsembleCertificates:
    """:func:`certify_partition_ensemble` with kernels built part by part.

    Args:
        kernel_blocks: ``kernel_blocks(idx)`` returns the (k, k) training kernel of the samples
            ``idx`` of one part and their (n_test, k) test kernel (e.g.
            :func:`certlab.poisoning.features.mlp_ntk_blocks`); no (n, n) kernel is formed.
        n_test: number of test points t.
        Other arguments: as :func:`certify_partition_ensemble`.
    """
    model, C, ridge = validate_model_parameters(model, C, ridge)
    n_test = _check_positive_int(n_test, "n_test")
    y = np.asarray(y_train)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_train must be a 1-D integer array of class indices, got dtype "
                         f"{y.dtype} and shape {y.shape}")
    n = y.shape[0]
    if y.min() < 0:
        raise ValueError("y_train must hold class indices 0..c-1, found negative labels")
    if n_classes is None:
        n_classes = max(int(y.max()) + 1, 2)
    n_classes = _check_n_classes(n_classes)
    if y.max() >= n_classes:
        raise ValueError(f"y_train has label {int(y.max())} >= n_classes = {n_classes}")
    parts, n_parts = _check_parts(parts, n_parts)
    if parts.shape[0] != n:
        raise ValueError(f"parts must have one entry per training sample ({n}), got "
                         f"{parts.shape[0]}")
    t = n_test
    members = partition_members(parts, n_parts)
    votes = np.zeros((n_parts, t), dtype=np.int64)
    costs = np.full((n_parts, t, n_classes), np.inf)
    exact = np.ones((n_parts, t, n_classes), dtype=bool)
    iterator = range(n_parts)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="parts")
    for p in iterator:
        idx = members[p]
        if idx.size == 0:
            costs[p, :, 0] = 0.0
            continue
        K_pp, K_tp = kernel_blocks(idx)
        K_pp, K_tp = validate_kernel_pair(K_pp, K_tp)
        if K_pp.shape[0] != idx.size or K_tp.shape[0] != t:
            raise ValueError(f"kernel_blocks returned shapes {K_pp.shape} and {K_tp.shape} for "
                             f"a part of {idx.size} samples and {t} test points")
        res = closed_form_rival_flips(K_pp, K_tp, y[idx], n_classes, model=model, C=C,
                                      ridge=ridge, base_model=True)
        votes[p] = res.predictions
        costs[p] = res.flips
        exact[p] = res.exact
    counts = vote_counts(votes, n_classes)
    preds = np.argmax(counts, axis=1).astype(np.int64)
    dpa = dpa_certificate(counts)
    cert = np.array([ensemble_min_flips(votes[:, i], costs[:, i], n_classes) - 1
                     for i in range(t)], dtype=np.float64)
    return EnsembleCertificates(predictions=preds, votes=votes, vote_counts=counts, costs=costs,
                                costs_exact=exact, dpa=dpa, ensemble_cert=cert,
                                part_sizes=np.array([m.size for m in members], dtype=np.int64))


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_certificates(certified: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    cert = np.asarray(certified, dtype=np.float64)
    ok = np.asarray(correct)
    if cert.ndim != 1 or ok.shape != cert.shape:
        raise ValueError(f"certified and correct must be 1-D of the same length, got shapes "
                         f"{cert.shape} and {ok.shape}")
    if ok.dtype != bool:
        raise TypeError(f"correct must be a boolean array, got dtype {ok.dtype}")
    if np.any(np.isnan(cert)):
        raise ValueError("certified must not contain NaN")
    return cert, ok


def certified_accuracy(certified: Any, correct: Any, budgets: Any) -> np.ndarray:
    """Share of test points predicted correctly AND certified against each budget.

    Args:
        certified: (t,) certified numbers of flips (int or inf).
        correct: bool (t,) whether the clean prediction is correct.
        budgets: (b,) numbers of flipped labels.

    Returns:
        float64 (b,): mean over test points of [correct and certified >= budget].
    """
    cert, ok = _check_certificates(certified, correct)
    b = np.asarray(budgets, dtype=np.float64)
    return np.mean(ok[None, :] & (cert[None, :] >= b.reshape(-1)[:, None]), axis=1)


def median_certified_flips(certified: Any, correct: Any) -> float:
    """Median certified flips over the test set, misclassified points counting as -1 (the
    convention of DPA's evaluation: a wrong prediction is not certified at any budget)."""
    cert, ok = _check_certificates(certified, correct)
    return float(np.median(np.where(ok, cert, -1.0)))


def relative_change(a: float, b: float) -> float:
    """Change of median ``a`` over median ``b`` in percent; ``|b|`` below 1 counts as 1, so
    that a median of 0 (or -1: most test points misclassified) flips stays comparable."""
    return 100.0 * (float(a) - float(b)) / max(abs(float(b)), 1.0)


@dataclass(frozen=True)
class MedianComparison:
    """EnsembleCert's median certified flips against black-box DPA's over numbers of parts.

    Attributes:
        best_ensemble_parts, best_ensemble: the P with the largest EnsembleCert median, and
            that median (the smallest such P on ties).
        best_dpa_parts, best_dpa: the same for DPA.
        best_change: :func:`relative_change` of the two best medians (percent).
        p_vs_100p: ``{P: change}`` of EnsembleCert with P parts over DPA with 100 P parts,
            for every P whose 100 P is also given (the paper's "P = 10 vs P = 1000").
    """

    best_ensemble_parts: int
    best_ensemble: float
    best_dpa_parts: int
    best_dpa: float
    best_change: float
    p_vs_100p: dict[int, float]


def compare_median_certificates(ensemble: Mapping[int, float],
                                dpa: Mapping[int, float]) -> MedianComparison:
    """Compare the median certified flips of EnsembleCert and DPA from ``{P: median}`` of
    each, one entry per number of parts P (the same P in both; e.g. merged from runs that
    each certified some P): the best of each over all P, and the paper's headline comparison
    of EnsembleCert with P parts against DPA with 100 P (Mohgaonkar et al., 2026: P = 10
    against SS-DPA with P = 1000 on CIFAR-10).
    """
    if not ensemble or set(ensemble) != set(dpa):
        raise ValueError(f"ensemble and dpa must give medians for the same, non-empty set of "
                         f"P, got {sorted(ensemble)} and {sorted(dpa)}")
    parts = sorted(ensemble)
    for P in parts:
        if isinstance(P, bool) or not isinstance(P, (int, np.integer)) or P < 1:
            raise ValueError(f"numbers of parts must be positive integers, got {P!r}")
        for name, value in (("ensemble", ensemble[P]), ("dpa", dpa[P])):
            if math.isnan(float(value)):
                raise ValueError(f"{name} median for P = {P} is NaN")
    best_e = max(parts, key=lambda P: ensemble[P])  # first maximum: the smallest P
    best_d = max(parts, key=lambda P: dpa[P])
    return MedianComparison(
        best_ensemble_parts=int(best_e), best_ensemble=float(ensemble[best_e]),
        best_dpa_parts=int(best_d), best_dpa=float(dpa[best_d]),
        best_change=relative_change(ensemble[best_e], dpa[best_d]),
        p_vs_100p={int(P): relative_change(ensemble[P], dpa[100 * P])
                   for P in parts if 100 * P in ensemble})


def merge_median_tables(tables: list[Mapping[Any, Any]]) -> tuple[dict[int, float],
                                                                  dict[int, float]]:
    """Merge ``{P: [EnsembleCert median, DPA median]}`` tables of several runs that each
    certified some numbers of parts P of one setting (a sweep's pieces; keys may be strings
    from JSON, values may be ``"inf"``) into ``({P: EnsembleCert}, {P: DPA})`` for
    :func:`compare_median_certificates`. A P found in several tables must have the same
    medians there (else ``ValueError``: the runs are not pieces of one setting)."""
    ensemble: dict[int, float] = {}
    dpa: dict[int, float] = {}
    for table in tables:
        for key, pair in table.items():
            try:
                P = int(key)
                if isinstance(pair, (str, bytes)):
                    raise TypeError
                e, d = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ValueError(f"expected a whole number of parts and a pair of medians, got "
                                 f"{key!r}: {pair!r}") from None
            if P in ensemble and (ensemble[P], dpa[P]) != (e, d):
                raise ValueError(f"two runs disagree on the medians at P = {P}: "
                                 f"{(ensemble[P], dpa[P])} vs {(e, d)}")
            ensemble[P], dpa[P] = e, d
    return ensemble, dpa


@dataclass(frozen=True)
class LoosenessReport:
    """How far multi-class EnsembleCert's per-part lower bounds are from the exact costs.

    Attributes:
        n_instances, n_points: ensembles and test points measured.
        n_costs: per-part rival costs measured (parts x test points x rivals).
        costs_loose: costs strictly below the exact cost (finite or inf).
        max_cost_gap: largest finite gap (exact - bound) among them (0 if none).
        costs_inf_missed: costs that are finite although the exact cost is inf (no flip set
            makes the base model predict that class).
        certs_loose: test points whose EnsembleCert is below the exact certificate.
        cert_gaps: int64 (n_points,) exact certificate - EnsembleCert (>= 0; inf-inf is 0).
        flagged_exact: share of costs flagged ``costs_exact``.
    """

    n_instances: int
    n_points: int
    n_costs: int
    costs_loose: int
    max_cost_gap: float
    costs_inf_missed: int
    certs_loose: int
    cert_gaps: np.ndarray
    flagged_exact: float

    @property
    def share_costs_loose(self) -> float:
        """Fraction of per-part costs below the exact cost."""
        return self.costs_loose / max(self.n_costs, 1)

    @property
    def share_certs_loose(self) -> float:
        """Fraction of test points whose EnsembleCert is below the exact certificate."""
        return self.certs_loose / max(self.n_points, 1)


def _exact_part_costs(K_pp: np.ndarray, K_tp: np.ndarray, y: np.ndarray, n_classes: int,
                      model: str, C: float | None, ridge: float | None) -> np.ndarray:
    """(t, c) fewest flips making the base model predict each class, by retraining on every
    relabelling of the part (the base-model rule of :func:`certify_partition_ensemble`)."""
    import itertools

    from .closed_form import _weights_and_tolerance

    W, tol = _weights_and_tolerance(K_pp, K_tp, n_classes, model, C, ridge)
    labels = np.array(list(itertools.product(range(n_classes), repeat=y.size)), dtype=np.int64)
    flips = (labels != y[None, :]).sum(axis=1)
    S = np.einsum("tm,bmc->btc", W, np.eye(n_classes)[labels])  # (B, t, c)
    pred = np.argmax(S >= S.max(axis=2, keepdims=True) - tol[None, :, None], axis=2)
    costs = np.full((W.shape[0], n_classes), np.inf)
    for c in range(n_classes):
        f = np.where(pred == c, flips[:, None], np.inf)
        costs[:, c] = f.min(axis=0)
    return costs


def measure_ensemble_looseness(n_instances: int = 100, *, n_classes: int = 3,
                               n_parts: int = 5, part_size: int = 4, n_test: int = 4,
                               model: str = "krr", ridge: float | None = 1.0,
                               C: float | None = None, seed: int = 0) -> LoosenessReport:
    """Measure on small random ensembles how loose multi-class EnsembleCert is.

    Each instance: ``n_parts * part_size`` Gaussian points in 5 dimensions with random labels
    0..n_classes-1, an RBF kernel (bandwidth 1), ``n_test`` test points, parts of equal size.
    The exact per-part costs come from retraining each base model on every relabelling of its
    part (``n_classes ** part_size`` labellings); the exact certificate is
    :func:`ensemble_min_flips` on them (exact for exact costs) minus one.

    Args:
        n_instances: random ensembles (>= 1). n_classes: c >= 3 (binary costs are exact).
        n_parts, part_size, n_test: sizes (part_size <= 6 keeps the brute force small).
        model, ridge, C: base models; "svm" needs C inside the linear regime of every part.
        seed: random seed.

    Returns:
        :class:`LoosenessReport`.
    """
    from certlab.utils import check_nonnegative_int

    for name, value, low in (("n_instances", n_instances, 1), ("n_classes", n_classes, 3),
                             ("n_parts", n_parts, 1), ("part_size", part_size, 1),
                             ("n_test", n_test, 1)):
        if check_nonnegative_int(value, name) < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if part_size > 6:
        raise ValueError(f"part_size must be <= 6 (the brute force retrains n_classes ** "
                         f"part_size labellings per part), got {part_size}")
    model, C, ridge = validate_model_parameters(model, C, ridge)
    seed = check_nonnegative_int(seed, "seed")
    rng = np.random.default_rng(seed)
    n = n_parts * part_size
    n_costs = costs_loose = inf_missed = 0
    max_gap = 0.0
    flagged = []
    gaps = []
    for _ in range(n_instances):
        X = rng.normal(size=(n + n_test, 5))
        Kall = np.exp(-0.5 * ((X[:, None] - X[None]) ** 2).sum(-1) / 5.0)
        K, K_test = Kall[:n, :n], Kall[n:, :n]
        y = rng.integers(0, n_classes, size=n)
        parts = np.repeat(np.arange(n_parts), part_size)
        res = certify_partition_ensemble(K, K_test, y, parts, n_parts, n_classes=n_classes,
                                         model=model, C=C, ridge=ridge)
        exact = np.stack([_exact_part_costs(K[np.ix_(idx, idx)], K_test[:, idx], y[idx],
                                            n_classes, model, C, ridge)
                          for idx in partition_members(parts, n_parts)])
        rival = np.ones_like(res.costs_exact)
        np.put_along_axis(rival, res.votes[:, :, None], False, axis=2)
        bound, truth = res.costs[rival], exact[rival]
        if np.any(bound > truth):  # pragma: no cover - would be a soundness bug
            raise AssertionError("a per-part cost exceeds the exact cost")
        n_costs += bound.size
        loose = bound < truth
        costs_loose += int(loose.sum())
        inf_missed += int(np.sum(loose & np.isinf(truth)))
        finite = loose & np.isfinite(truth)
        if finite.any():
            max_gap = max(max_gap, float(np.max(truth[finite] - bound[finite])))
        flagged.append(res.costs_exact[rival])
        for i in range(n_test):
            exact_cert = ensemble_min_flips(res.votes[:, i], exact[:, i], n_classes) - 1
            cert = res.ensemble_cert[i]
            gaps.append(0 if exact_cert == cert else exact_cert - cert)
    gaps_arr = np.array(gaps, dtype=np.float64)
    return LoosenessReport(n_instances=n_instances, n_points=gaps_arr.size, n_costs=n_costs,
                           costs_loose=costs_loose, max_cost_gap=max_gap,
                           costs_inf_missed=inf_missed,
                           certs_loose=int(np.sum(gaps_arr > 0)), cert_gaps=gaps_arr,
                           flagged_exact=float(np.concatenate(flagged).mean()))
