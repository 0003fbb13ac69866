"""Partition-aggregation ensembles: DPA and EnsembleCert against brute force.

Ground truth: exhaustive search over every way of changing base-model votes
(``ensemble_min_flips``), and end to end, retraining every base model on every labelling of a
tiny training set (``certify_partition_ensemble``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from certlab.poisoning.ensembles import (certified_accuracy, certify_partition_ensemble,
                                         certify_partition_ensemble_blocks,
                                         compare_median_certificates, dpa_certificate,
                                         ensemble_min_flips, majority_vote,
                                         median_certified_flips, merge_median_tables,
                                         relative_change, vote_counts)
from certlab.poisoning.features import (fit_pca_feature_map, mlp_ntk, mlp_ntk_blocks,
                                        mlp_ntk_cross, mnist_subset)
from certlab.poisoning.partition import hash_partition, partition_members, partition_sizes


def _brute_min_flips(votes, costs, n_classes):
    """Cheapest assignment of new votes (cost sum) whose majority differs from the clean one."""
    P = votes.size
    clean = int(np.argmax(np.bincount(votes, minlength=n_classes)))
    best = math.inf
    for new in itertools.product(range(n_classes), repeat=P):
        cost = sum(costs[p, c] for p, c in enumerate(new))
        if cost >= best:
            continue
        if int(np.argmax(np.bincount(np.array(new), minlength=n_classes))) != clean:
            best = cost
    return best


def _random_costs(rng, votes, n_classes, max_cost=4, p_inf=0.2, p_zero=0.1):
    P = votes.size
    costs = rng.integers(1, max_cost + 1, size=(P, n_classes)).astype(float)
    costs[rng.random((P, n_classes)) < p_inf] = np.inf
    costs[rng.random((P, n_classes)) < p_zero] = 0.0  # free moves (ties of a base model)
    costs[np.arange(P), votes] = 0.0
    return costs


@pytest.mark.parametrize("n_classes,P", [(2, 1), (2, 5), (3, 4), (3, 6), (4, 5)])
def test_ensemble_min_flips_equals_brute_force(n_classes, P):
    rng = np.random.default_rng(100 * n_classes + P)
    seen = set()
    for _ in range(25):
        votes = rng.choice(n_classes, size=P, p=rng.dirichlet(np.ones(n_classes)))
        costs = _random_costs(rng, votes, n_classes)
        got = ensemble_min_flips(votes, costs, n_classes)
        expected = _brute_min_flips(votes, costs, n_classes)
        assert got == expected
        assert isinstance(got, int) or got == math.inf
        seen.add(got)
    assert len(seen) >= 3  # the random instances give varied answers


@pytest.mark.parametrize("n_classes", [2, 3, 5, 10])
def test_all_costs_one_is_dpa_plus_one_and_never_below(n_classes):
    rng = np.random.default_rng(n_classes)
    for _ in range(40):
        P = int(rng.integers(1, 60))
        votes = rng.choice(n_classes, size=P, p=rng.dirichlet(np.ones(n_classes) * 0.7))
        counts = vote_counts(votes, n_classes)
        ones = np.ones((P, n_classes))
        ones[np.arange(P), votes] = 0
        assert ensemble_min_flips(votes, ones, n_classes) == dpa_certificate(counts) + 1
        costs = _random_costs(rng, votes, n_classes, p_zero=0.0)
        assert ensemble_min_flips(votes, costs, n_classes) >= dpa_certificate(counts) + 1


def test_white_box_beats_black_box_when_models_are_robust():
    votes = np.array([0] * 6 + [1] * 4)
    costs = np.zeros((10, 2))
    costs[:6, 1] = 3  # each class-0 model needs 3 flips to move
    costs[6:, 0] = 1
    assert dpa_certificate(vote_counts(votes, 2)) == 1  # (6 - 4 - 0) // 2
    # the attacker must move 1 model (6-1 = 5 vs 5: tie -> class 0 keeps it) -> 2 models
    assert ensemble_min_flips(votes, costs, 2) == 6


@pytest.mark.parametrize("counts,expected", [
    ([3, 3], 0),        # tie: class 0 wins; runner-up 1 > 0 needs 1 more vote -> survives 0
    ([5, 3], 1),        # (5 - 3) // 2
    ([3, 5], 0),        # top 1, runner-up 0 < 1 wins ties: (5 - 3 - 1) // 2
    ([2, 6], 1),        # (6 - 2 - 1) // 2
    ([6, 0, 0], 3),     # runner-up 1 > 0
    ([0, 6, 0], 2),     # runner-up 0 < 1 (smallest index among the tied zeros)
    ([0, 0, 7], 3),     # (7 - 0 - 1) // 2
    ([4, 1, 4], 0),     # tie between 0 and 2: top 0
    ([1, 4, 4, 2], 0),  # top 1, runner-up 2
    ([5, 2, 2, 5], 0),  # top 0, runner-up 3
    ([0, 5, 0, 5], 0),
    ([10], None),
])
def test_dpa_tie_breaks(counts, expected):
    if expected is None:
        with pytest.raises(ValueError, match="at least 2 classes"):
            dpa_certificate(counts)
        return
    assert dpa_certificate(np.array(counts)) == expected
    # the definition: the fewest single-vote changes that change the argmax, minus one
    P = sum(counts)
    votes = np.repeat(np.arange(len(counts)), counts)
    if P and len(counts) ** P <= 50_000:  # exhaustive search stays small
        ones = np.ones((P, len(counts)))
        ones[np.arange(P), votes] = 0
        assert _brute_min_flips(votes, ones, len(counts)) - 1 == expected


def test_dpa_vectorised_and_types():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 20, size=(50, 4))
    vec = dpa_certificate(counts)
    assert vec.shape == (50,) and vec.dtype == np.int64
    assert [dpa_certificate(c) for c in counts] == vec.tolist()
    assert isinstance(dpa_certificate([4, 1]), int)
    np.testing.assert_array_equal(dpa_certificate(counts.astype(float)), vec)


def test_majority_vote_ties_and_counts():
    votes = np.array([[2, 0], [1, 0], [1, 1], [2, 1]])  # (P=4, t=2)
    np.testing.assert_array_equal(vote_counts(votes, 3), [[0, 2, 2], [2, 2, 0]])
    np.testing.assert_array_equal(majority_vote(votes, 3), [1, 0])
    assert majority_vote(np.array([2, 2, 0, 0]), 3) == 0


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(votes=[0, 1], costs=np.zeros((3, 2)), n_classes=2), ValueError, "shape"),
    (dict(votes=[0, 1], costs=[[0, -1], [1, 0]], n_classes=2), ValueError, "non-negative"),
    (dict(votes=[0, 1], costs=[[0, np.nan], [1, 0]], n_classes=2), ValueError, "NaN"),
    (dict(votes=[0, 1], costs=[[0, 1.5], [1, 0]], n_classes=2), ValueError, "whole numbers"),
    (dict(votes=[0.5, 1], costs=[[0, 1], [1, 0]], n_classes=2), ValueError, "integer"),
    (dict(votes=[0, 2], costs=[[0, 1], [1, 0]], n_classes=2), ValueError, r"0\.\.1"),
    (dict(votes=[True, False], costs=[[0, 1], [1, 0]], n_classes=2), TypeError, "integer"),
    (dict(votes=[0, 1], costs=[[1, 1], [1, 0]], n_classes=2), ValueError, "must be 0"),
    (dict(votes=[0, 1], costs=[[0, 1], [1, 0]], n_classes=1), ValueError, "n_classes"),
    (dict(votes=[0, 1], costs=[[0, 1], [1, 0]], n_classes=2.0), TypeError, "n_classes"),
    (dict(votes=[[0, 1]], costs=[[0, 1], [1, 0]], n_classes=2), ValueError, "1-D"),
    (dict(votes=[], costs=np.zeros((0, 2)), n_classes=2), ValueError, "empty"),
])
def test_ensemble_min_flips_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ensemble_min_flips(**kwargs)


def test_dpa_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        dpa_certificate([3, -1])
    with pytest.raises(ValueError, match="non-integer"):
        dpa_certificate([3.5, 1])
    with pytest.raises(ValueError, match="shape"):
        dpa_certificate(np.zeros((2, 2, 2), dtype=int))
    with pytest.raises(TypeError, match="integer"):
        dpa_certificate(["a", "b"])


def test_impossible_change_is_inf():
    votes = np.array([0, 0, 1])
    costs = np.array([[0, np.inf], [0, np.inf], [np.inf, 0]])
    assert ensemble_min_flips(votes, costs, 2) == math.inf


# ------------------------------------------------------------------------------------------
# partitions
# ------------------------------------------------------------------------------------------

def test_hash_partition_deterministic_and_label_free():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(500, 8, 8), dtype=np.uint8)
    parts = hash_partition(X, 10)
    np.testing.assert_array_equal(parts, hash_partition(X.copy(), 10))
    assert parts.min() >= 0 and parts.max() < 10
    sizes = partition_sizes(parts, 10)
    assert sizes.sum() == 500 and sizes.min() >= 25 and sizes.max() <= 80  # ~ 50 each
    # a sample's part depends on its own bytes only: changing other samples (or the order)
    # does not move it; identical samples share a part; another salt gives another split
    perm = rng.permutation(500)
    np.testing.assert_array_equal(hash_partition(X[perm], 10), parts[perm])
    X2 = X.copy()
    X2[0, 0, 0] ^= 1
    np.testing.assert_array_equal(hash_partition(X2, 10)[1:], parts[1:])
    assert hash_partition(np.stack([X[3], X[3]]), 2).tolist() in ([0, 0], [1, 1])
    assert np.any(hash_partition(X, 10, salt="other") != parts)
    members = partition_members(parts, 10)
    np.testing.assert_array_equal(np.sort(np.concatenate(members)), np.arange(500))
    assert all(np.all(parts[m] == p) for p, m in enumerate(members))
    np.testing.assert_array_equal(hash_partition(np.arange(7), 1), np.zeros(7))


@pytest.mark.parametrize("n_parts,exc,match", [
    (11, ValueError, "larger than the training set"), (0, ValueError, "positive"),
    (2.0, TypeError, "integer"), (True, TypeError, "integer"),
])
def test_hash_partition_bad_n_parts(n_parts, exc, match):
    with pytest.raises(exc, match=match):
        hash_partition(np.arange(10), n_parts)


def test_hash_partition_bad_samples():
    with pytest.raises(ValueError, match="at least one row"):
        hash_partition(np.zeros((0, 3)), 1)
    with pytest.raises(TypeError, match="salt"):
        hash_partition(np.arange(3), 1, salt=3)


# ------------------------------------------------------------------------------------------
# kernel ensembles end to end
# ------------------------------------------------------------------------------------------

def _kernel(seed, n, t, d=3, gamma=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + t, d))
    K = np.exp(-gamma * np.sum((X[:, None] - X[None]) ** 2, axis=-1)) + 0.2 * X @ X.T
    return X[:n], K[:n, :n], K[n:, :n], rng


def test_label_flip_changes_only_its_own_part():
    X, K, K_test, rng = _kernel(1, 40, 6)
    y = rng.integers(0, 3, size=40)
    parts = hash_partition(X, 4)
    base = certify_partition_ensemble(K, K_test, y, parts, 4, n_classes=3, ridge=0.5)
    j = 7
    y2 = y.copy()
    y2[j] = (y[j] + 1) % 3
    parts2 = hash_partition(X, 4)  # the partition never sees labels
    np.testing.assert_array_equal(parts2, parts)
    flipped = certify_partition_ensemble(K, K_test, y2, parts2, 4, n_classes=3, ridge=0.5)
    others = np.arange(4) != parts[j]
    np.testing.assert_array_equal(flipped.votes[others], base.votes[others])
    np.testing.assert_array_equal(flipped.costs[others], base.costs[others])


def _brute_force_ensemble(K, K_test, y, parts, n_parts, n_classes, model, C, ridge,
                          clean_prediction):
    """Fewest label flips changing the ensemble vote: every labelling, every base model
    retrained (KRR by a linear solve; SVM in its regime, where the dual is at C)."""
    members = partition_members(parts, n_parts)
    weights = []
    for idx in members:
        if model == "krr":
            weights.append(np.linalg.solve(K[np.ix_(idx, idx)] + ridge * np.eye(idx.size),
                                           K_test[:, idx].T).T)
        else:
            weights.append(C * K_test[:, idx])
    best = np.full(K_test.shape[0], np.inf)
    for labels in itertools.product(range(n_classes), repeat=y.size):
        yy = np.array(labels)
        n_flips = int(np.sum(yy != y))
        if np.all(best <= n_flips):
            continue
        votes = np.array([np.argmax(W @ np.eye(n_classes)[yy[idx]], axis=1)
                          for W, idx in zip(weights, members)])
        pred = majority_vote(votes, n_classes)
        best = np.where(pred != clean_prediction, np.minimum(best, n_flips), best)
    return best


@pytest.mark.parametrize("model", ["krr", "svm"])
def test_certified_ensemble_matches_retraining_brute_force(model):
    """Binary ensemble of 3 parts on 12 samples: EnsembleCert equals the fewest label flips
    changing the ensemble vote over all 2^12 labellings (binary costs are exact)."""
    X, K, K_test, rng = _kernel(0, 12, 8, gamma=0.1)
    y = rng.choice(2, size=12, p=[0.75, 0.25])
    parts = np.arange(12) // 4
    C = 0.9 / np.max(np.abs(K).sum(axis=1)) if model == "svm" else None
    ridge = 0.5 if model == "krr" else None
    res = certify_partition_ensemble(K, K_test, y, parts, 3, model=model, C=C, ridge=ridge)
    assert np.all(res.costs_exact)
    np.testing.assert_array_equal(res.predictions, majority_vote(res.votes, 2))
    best = _brute_force_ensemble(K, K_test, y, parts, 3, 2, model, C, ridge, res.predictions)
    np.testing.assert_array_equal(res.ensemble_cert + 1, best)
    assert np.all(res.ensemble_cert >= res.dpa)
    assert np.unique(best).size >= 2


def test_multiclass_ensemble_is_sound_and_exact_where_flagged():
    """3 classes: per-rival costs are lower bounds, so EnsembleCert never exceeds the true
    fewest flips (all 3^8 labellings); where every cost is flagged exact it is equal."""
    X, K, K_test, rng = _kernel(4, 8, 10, gamma=0.1)
    y = rng.choice(3, size=8, p=[0.6, 0.25, 0.15])
    parts = hash_partition(X, 3)
    res = certify_partition_ensemble(K, K_test, y, parts, 3, n_classes=3, ridge=0.5)
    best = _brute_force_ensemble(K, K_test, y, parts, 3, 3, "krr", None, 0.5, res.predictions)
    assert np.all(res.ensemble_cert + 1 <= best)
    exact = res.costs_exact.all(axis=(0, 2))
    assert exact.any()
    np.testing.assert_array_equal((res.ensemble_cert + 1)[exact], best[exact])
    assert np.all(res.ensemble_cert >= res.dpa)


def test_certify_partition_ensemble_bad_input():
    X, K, K_test, rng = _kernel(2, 12, 2)
    y = rng.integers(0, 2, size=12)
    parts = hash_partition(X, 3)
    with pytest.raises(ValueError, match="one entry per training sample"):
        certify_partition_ensemble(K, K_test, y, parts[:-1], 3, ridge=1.0)
    with pytest.raises(ValueError, match="class indices"):
        certify_partition_ensemble(K, K_test, y - 1, parts, 3, ridge=1.0)
    with pytest.raises(ValueError, match="needs ridge"):
        certify_partition_ensemble(K, K_test, y, parts, 3, model="krr")
    with pytest.raises(ValueError, match="regime"):
        certify_partition_ensemble(K, K_test, y, parts, 3, model="svm", C=10.0)
    with pytest.raises(ValueError, match="n_parts"):
        certify_partition_ensemble(K, K_test, y, parts, 13, ridge=1.0)


def test_empty_parts_vote_class_zero_and_cannot_be_flipped():
    X, K, K_test, rng = _kernel(3, 6, 2)
    y = np.array([1, 1, 1, 1, 1, 1])
    parts = np.array([0, 0, 0, 2, 2, 2])  # part 1 is empty
    res = certify_partition_ensemble(K, K_test, y, parts, 3, ridge=1.0)
    assert res.part_sizes.tolist() == [3, 0, 3]
    np.testing.assert_array_equal(res.votes[1], 0)
    assert np.all(np.isinf(res.costs[1, :, 1]))


def test_block_kernels_equal_full_kernels():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(30, 5)), rng.normal(size=(7, 5))
    K, K_test = mlp_ntk(x_train, x_test)
    np.testing.assert_allclose(mlp_ntk_cross(x_train, x_train, same=True), K, rtol=1e-12)
    np.testing.assert_allclose(mlp_ntk_cross(x_test, x_train), K_test, rtol=1e-12)
    y = rng.integers(0, 3, size=30)
    parts = hash_partition(x_train, 4)
    full = certify_partition_ensemble(K, K_test, y, parts, 4, n_classes=3, ridge=0.7)
    blocks = certify_partition_ensemble_blocks(mlp_ntk_blocks(x_train, x_test), 7, y, parts, 4,
                                               n_classes=3, ridge=0.7)
    np.testing.assert_array_equal(full.votes, blocks.votes)
    np.testing.assert_array_equal(full.costs, blocks.costs)
    np.testing.assert_array_equal(full.ensemble_cert, blocks.ensemble_cert)
    with pytest.raises(ValueError, match="n_test"):
        certify_partition_ensemble_blocks(mlp_ntk_blocks(x_train, x_test), 0, y, parts, 4,
                                          ridge=0.7)
    with pytest.raises(ValueError, match="returned shapes"):
        certify_partition_ensemble_blocks(mlp_ntk_blocks(x_train, x_test), 6, y, parts, 4,
                                          ridge=0.7)


def test_certified_accuracy_and_median():
    cert = np.array([0, 3, 5, np.inf])
    correct = np.array([True, True, False, True])
    np.testing.assert_allclose(certified_accuracy(cert, correct, [0, 1, 3, 4, 100]),
                               [0.75, 0.5, 0.5, 0.25, 0.25])
    assert median_certified_flips(cert, correct) == 1.5  # the wrong point counts as -1
    with pytest.raises(TypeError, match="boolean"):
        certified_accuracy(cert, correct.astype(int), [0])
    with pytest.raises(ValueError, match="same length"):
        median_certified_flips(cert, correct[:2])


def test_compare_median_certificates_best_and_p_vs_100p():
    ensemble = {10: 44.5, 50: 91.0, 100: 119.0, 1000: 281.0}
    dpa = {10: 4.0, 50: 24.0, 100: 49.0, 1000: 281.0}
    c = compare_median_certificates(ensemble, dpa)
    assert (c.best_ensemble_parts, c.best_ensemble, c.best_dpa_parts, c.best_dpa) == (
        1000, 281.0, 1000, 281.0)
    assert c.best_change == 0.0
    assert c.p_vs_100p == {10: pytest.approx(100 * (44.5 - 281) / 281)}
    # ties go to the smallest P; a DPA median below 1 counts as 1 (no division by zero)
    c = compare_median_certificates({1: 3.0, 2: 3.0, 100: 0.0}, {1: 0.0, 2: -1.0, 100: 0.0})
    assert c.best_ensemble_parts == 1 and c.best_dpa_parts == 1
    assert c.p_vs_100p == {1: 300.0} and relative_change(3.0, 0.0) == 300.0
    assert relative_change(5.0, -1.0) == 600.0 and relative_change(2.0, 4.0) == -50.0
    with pytest.raises(ValueError, match="same, non-empty set of P"):
        compare_median_certificates({10: 1.0}, {50: 1.0})
    with pytest.raises(ValueError, match="same, non-empty set of P"):
        compare_median_certificates({}, {})
    with pytest.raises(ValueError, match="positive integers"):
        compare_median_certificates({0: 1.0}, {0: 1.0})
    with pytest.raises(ValueError, match="NaN"):
        compare_median_certificates({10: math.nan}, {10: 1.0})


def test_merge_median_tables_of_a_sweeps_pieces():
    """Pieces of one setting (JSON keys, "inf" allowed) merge; a disagreement is an error."""
    pieces = [{"10": [44.5, 4.0], "1000": [281.0, 281.0]}, {"50": [91, 24], "500": ["inf", 198]},
              {"100": [119.0, 49.0], "10": [44.5, 4]}]
    ensemble, dpa = merge_median_tables(pieces)
    assert ensemble == {10: 44.5, 50: 91.0, 100: 119.0, 500: math.inf, 1000: 281.0}
    assert dpa == {10: 4.0, 50: 24.0, 100: 49.0, 500: 198.0, 1000: 281.0}
    merged = compare_median_certificates(ensemble, dpa)
    assert merged.best_ensemble_parts == 500 and merged.p_vs_100p == {
        10: pytest.approx(100 * (44.5 - 281) / 281)}
    with pytest.raises(ValueError, match="disagree on the medians at P = 10"):
        merge_median_tables([{"10": [44.5, 4.0]}, {"10": [45.0, 4.0]}])
    for bad in ({"10": [44.5]}, {"ten": [44.5, 4.0]}, {"10": "45"}):
        with pytest.raises(ValueError, match="a whole number of parts and a pair of medians"):
            merge_median_tables([bad])


def test_pca_feature_map():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    fmap = fit_pca_feature_map(images, 5)
    again = fit_pca_feature_map(images.copy(), 5)
    np.testing.assert_array_equal(fmap.components, again.components)
    z = fmap.transform(images)
    assert z.shape == (40, 5)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0)
    np.testing.assert_allclose(fmap.components @ fmap.components.T, np.eye(5), atol=1e-12)
    assert np.all(np.diff(fmap.explained_variance_ratio) <= 1e-12)
    with pytest.raises(ValueError, match="n_components"):
        fit_pca_feature_map(images, 41)
    with pytest.raises(ValueError, match="pixels"):
        fmap.transform(images[:, :5, :5])


def test_mnist_subset_binary_task():
    data = mnist_subset(60, 20, classes=(1, 7), n_components=10, n_fit=200, seed=3)
    assert data.x_train.shape == (60, 10) and data.x_test.shape == (20, 10)
    assert set(np.unique(data.y_train)) <= {0, 1} and data.classes == (1, 7)
    from certlab.data import load_mnist

    _, labels = load_mnist("train")
    np.testing.assert_array_equal(np.array([1, 7])[data.y_train], labels[data.train_index])
    again = mnist_subset(60, 20, classes=(1, 7), n_components=10, n_fit=200, seed=3)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    with pytest.raises(ValueError, match="distinct digits"):
        mnist_subset(10, 5, classes=(1, 1))
