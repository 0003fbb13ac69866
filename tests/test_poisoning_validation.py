"""Bad input to the label-flip certificates: clear errors naming the argument."""

import numpy as np
import pytest

from certlab.poisoning.certificates import (certified_fraction, certify_samplewise,
                                            collective_flips, collective_flips_curve,
                                            min_label_flips)
from certlab.poisoning.validation import (check_positive_semidefinite, validate_budget,
                                          validate_certificate_inputs, validate_labels)


def _psd(m=6, t=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m + t, 3))
    K = X @ X.T + np.eye(m + t)
    return K[:m, :m], K[m:, :m]


def test_valid_inputs_are_normalised():
    K, Kt = _psd()
    Kn, Ktn, y, c = validate_certificate_inputs(K.tolist(), Kt, [0, 1, 1, 0, 1, 0],
                                                model="svm", C=0.1, budget=2)
    assert Kn.dtype == np.float64 and Ktn.shape == (3, 6)
    np.testing.assert_array_equal(y, [-1, 1, 1, -1, 1, -1])
    assert c == 2
    _, _, y, c = validate_certificate_inputs(K, Kt, np.array([0., 2, 1, 1, 0, 2]), model="krr",
                                             ridge=1.0, budget=0)
    np.testing.assert_array_equal(y, [0, 2, 1, 1, 0, 2])
    assert c == 3
    _, _, y, c = validate_certificate_inputs(K, Kt, [1, -1, 1, 1, -1, 1], model="svm", C=1,
                                             budget=6)
    assert c == 2 and set(y.tolist()) == {-1, 1}


@pytest.mark.parametrize("K_train, match", [
    (np.ones((3, 4)), "square"),
    (np.ones(4), "2-D"),
    (np.array([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), "finite"),
    (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
])
def test_bad_kernel(K_train, match):
    m = K_train.shape[-1]
    with pytest.raises(ValueError, match=match):
        validate_certificate_inputs(K_train, np.ones((1, m)), np.ones(m), model="svm", C=1.0,
                                    budget=0)


def test_shape_mismatches():
    K, Kt = _psd()
    with pytest.raises(ValueError, match="K_test"):
        validate_certificate_inputs(K, Kt[:, :5], np.ones(6), model="svm", C=1.0, budget=0)
    with pytest.raises(ValueError, match="K_test"):
        validate_certificate_inputs(K, Kt[0], np.ones(6), model="svm", C=1.0, budget=0)
    with pytest.raises(ValueError, match="y_train"):
        validate_certificate_inputs(K, Kt, np.ones(5), model="svm", C=1.0, budget=0)
    with pytest.raises(ValueError, match="y_train"):
        validate_certificate_inputs(K, Kt, np.ones((6, 1)), model="svm", C=1.0, budget=0)


@pytest.mark.parametrize("labels, err", [
    ([-1, 0, 1, 1, 0, -1], ValueError),
    ([0.5, 1, 1, 0, 0, 1], ValueError),
    ([-2, 3, 1, 0, 0, 1], ValueError),
    ([True, False, True, True, False, True], TypeError),
    (["a", "b", "a", "a", "b", "a"], TypeError),
])
def test_bad_labels(labels, err):
    K, Kt = _psd()
    with pytest.raises(err, match="y_train"):
        validate_certificate_inputs(K, Kt, np.array(labels), model="svm", C=1.0, budget=0)


@pytest.mark.parametrize("model, C, ridge, err, match", [
    ("svm", 0.0, None, ValueError, "C"),
    ("svm", -1.0, None, ValueError, "C"),
    ("svm", None, None, ValueError, "needs C"),
    ("svm", float("inf"), None, ValueError, "C"),
    ("svm", "1", None, TypeError, "C"),
    ("krr", None, 0.0, ValueError, "ridge"),
    ("krr", None, None, ValueError, "needs ridge"),
    ("tree", 1.0, None, ValueError, "model"),
    (3, 1.0, None, TypeError, "model"),
])
def test_bad_model_parameters(model, C, ridge, err, match):
    K, Kt = _psd()
    with pytest.raises(err, match=match):
        validate_certificate_inputs(K, Kt, np.ones(6), model=model, C=C, ridge=ridge, budget=0)


def test_bad_budgets():
    K, Kt = _psd()
    y = np.array([1, -1, 1, -1, 1, -1])
    with pytest.raises(ValueError, match="max_flips must be >= 0"):
        min_label_flips(K, Kt, y, C=1.0, max_flips=-1)
    with pytest.raises(ValueError, match="max_flips must be <= .* m = 6"):
        min_label_flips(K, Kt, y, C=1.0, max_flips=7)
    with pytest.raises(TypeError, match="max_flips"):
        min_label_flips(K, Kt, y, C=1.0, max_flips=1.5)
    with pytest.raises(ValueError, match="budget must be <="):
        collective_flips(K, Kt, y, model="svm", C=1.0, budget=10)
    with pytest.raises(ValueError, match="budget must be >= 0"):
        certify_samplewise(K, Kt, y, C=1.0, budget=-2)
    with pytest.raises(TypeError, match="budget"):
        validate_budget(True, "budget", 6)


def test_bad_method_and_time_limit():
    K, Kt = _psd()
    y = np.array([1, -1, 1, -1, 1, -1])
    with pytest.raises(ValueError, match="method"):
        min_label_flips(K, Kt, y, C=1.0, max_flips=1, method="brute")
    with pytest.raises(ValueError, match="time_limit"):
        min_label_flips(K, Kt, y, C=1.0, max_flips=1, method="milp", time_limit=0)


def test_krr_singular_and_psd_helpers():
    K = np.zeros((3, 3))
    with pytest.raises(ValueError, match="singular"):
        validate_certificate_inputs(K - 1.0 * np.eye(3), np.ones((1, 3)), np.ones(3),
                                    model="krr", ridge=1.0, budget=0)
    check_positive_semidefinite(K)  # zero kernel is PSD
    with pytest.raises(ValueError, match="positive semi-definite"):
        check_positive_semidefinite(-np.eye(2))
    assert validate_labels(np.array([2, 2, 0]))[1] == 3


def test_certified_fraction_checks():
    np.testing.assert_allclose(certified_fraction([0, 1, 2, 3], [0, 1, 2]), [0.75, 0.5, 0.25])
    np.testing.assert_allclose(
        certified_fraction([0, 1, 2, 3], [0, 1], correct=[True, True, False, True]),
        [0.5, 0.25])
    with pytest.raises(ValueError, match="correct"):
        certified_fraction([1, 2], [0], correct=[True])
    with pytest.raises(ValueError, match="budgets"):
        certified_fraction([1, 2], [-1])
    with pytest.raises(ValueError, match="budgets"):
        certified_fraction([1, 2], [np.nan])
    with pytest.raises(ValueError, match="min_flips"):
        certified_fraction([1, np.nan], [0])
    with pytest.raises(ValueError, match="min_flips"):
        certified_fraction([1, -2], [0])
    with pytest.raises(TypeError, match="budgets"):
        certified_fraction([1, 2], ["a"])
    with pytest.raises(TypeError, match="min_flips"):
        certified_fraction(["1", "2"], [0])
    with pytest.raises(TypeError, match="correct"):
        certified_fraction([1, 2], [0], correct=[1, 0])


@pytest.mark.parametrize("time_limit, err", [(-5, ValueError), ("abc", TypeError),
                                             (np.nan, ValueError), (True, TypeError)])
def test_collective_curve_rejects_bad_time_limit(time_limit, err):
    K, Kt = _psd()
    y = np.array([1, -1, 1, -1, 1, -1])
    with pytest.raises(err, match="time_limit"):
        collective_flips_curve(K, Kt, y, model="svm", C=1.0, max_budget=1,
                               time_limit=time_limit)


def test_svm_fitting_refuses_non_psd_kernels_up_front():
    """fit_svm, select_C_cv, solve_svm_dual and kernel_svm_accuracy refuse an indefinite
    kernel (the dual is not convex) instead of iterating on it."""
    from certlab.ntk import kernel_svm_accuracy
    from certlab.poisoning.svm import fit_svm, select_C_cv, solve_svm_dual

    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 3))
    K = X @ X.T - 2.0 * np.eye(12)  # indefinite
    y = np.array([1, -1] * 6)
    for call in (lambda: fit_svm(K[:8, :8], y[:8], 1.0),
                 lambda: select_C_cv(K[:8, :8], y[:8]),
                 lambda: solve_svm_dual(K[:8, :8], y[:8], 1.0),
                 lambda: kernel_svm_accuracy(K, y, np.arange(8), np.arange(8, 12)),
                 lambda: kernel_svm_accuracy(K, y, np.arange(8), np.arange(8, 12), C=1.0)):
        with pytest.raises(ValueError, match="positive semi-definite"):
            call()
