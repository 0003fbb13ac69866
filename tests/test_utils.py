import numpy as np
import pytest
import torch

from certlab.utils import (check_nonnegative_int, check_probability, resolve_device,
                           seed_everything)


def test_seeding_is_reproducible():
    a = seed_everything(3).normal(size=4), torch.rand(3)
    b = seed_everything(3).normal(size=4), torch.rand(3)
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu-please")
    with pytest.raises(TypeError):
        resolve_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_checks():
    assert check_probability(0.3, "p") == 0.3
    np.testing.assert_array_equal(check_probability([0, 1], "p"), [0, 1])
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match="p_plus"):
            check_probability(bad, "p_plus")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        check_probability(0.0, "alpha", open_low=True, open_high=True)
    assert check_nonnegative_int(np.int64(4), "k") == 4
    with pytest.raises(ValueError, match="budget"):
        check_nonnegative_int(-1, "budget")
    for bad in (1.0, True, "3"):
        with pytest.raises(TypeError, match="budget"):
            check_nonnegative_int(bad, "budget")


def test_numeric_arrays_refuse_strings_ragged_and_non_numbers():
    from certlab.utils import as_float_array, check_finite

    np.testing.assert_array_equal(as_float_array([[1, 2], [3, 4]], "x"), [[1, 2], [3, 4]])
    assert as_float_array(np.array([True, False]), "x").dtype == np.float64
    for bad in ("0.5", b"1", None, {"a": 1}, np.array(["1"]), [0.5, "0.7"]):
        with pytest.raises(TypeError, match="p_lower must be a number"):
            as_float_array(bad, "p_lower")
        with pytest.raises(TypeError, match="p_lower"):
            check_probability(bad, "p_lower")
    with pytest.raises(ValueError, match="p_lower must be .*rectangular"):
        check_probability([0.5, [0.6, 0.7]], "p_lower")
    assert np.isnan(as_float_array(float("nan"), "x"))
    with pytest.raises(ValueError, match=r"x must be finite.*inf"):
        check_finite([1.0, np.inf], "x")


def test_seed_everything_requests_deterministic_algorithms_and_fixes_threads():
    before = torch.get_num_threads()
    try:
        seed_everything(0, threads=1)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.get_num_threads() == 1
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        seed_everything(0, threads=0)
