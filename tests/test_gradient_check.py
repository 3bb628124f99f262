"""dlcourse.gradient_check: central differences and the relative error used by the notebooks' backward-pass tests."""

from __future__ import annotations

import numpy as np
import pytest

from dlcourse import gradient_check


def test_numeric_gradient_of_an_elementwise_function_matches_the_exact_one():
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    numeric = gradient_check.numeric_gradient(np.tanh, x, dout)
    exact = dout * (1 - np.tanh(x) ** 2)
    assert gradient_check.relative_error(numeric, exact) < 1e-8


def test_numeric_gradient_of_a_function_that_mixes_entries_and_changes_shape():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 2))
    x, dout = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    numeric = gradient_check.numeric_gradient(lambda a: a @ w, x, dout)
    np.testing.assert_allclose(numeric, dout @ w.T, rtol=1e-7, atol=1e-9)


def test_x_is_restored_exactly_even_when_f_returns_a_view():
    x = np.linspace(-1.0, 1.0, 7)
    before = x.copy()
    numeric = gradient_check.numeric_gradient(lambda a: a, x, np.ones(7))   # f returns x itself
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(numeric, np.ones(7), rtol=1e-9)


def test_outputs_that_do_not_depend_on_an_entry_cancel_exactly():
    mask = np.array([True, False, True, False])
    numeric = gradient_check.numeric_gradient(lambda a: np.where(mask, a / 0.7, 0.0),
                                              np.array([0.3, -1.2, 2.5, 0.1]), np.array([1.0, 2.0, -3.0, 4.0]))
    assert numeric[1] == 0.0 and numeric[3] == 0.0


def test_float32_keeps_its_dtype_and_shows_rounding_error():
    rng = np.random.default_rng(2)
    x, dout = rng.normal(size=20).astype(np.float32), rng.normal(size=20).astype(np.float32)
    numeric = gradient_check.numeric_gradient(np.tanh, x, dout, h=1e-5)
    assert numeric.dtype == np.float32
    exact = dout.astype(np.float64) * (1 - np.tanh(x.astype(np.float64)) ** 2)
    assert gradient_check.relative_error(numeric, exact) > 1e-4


@pytest.mark.parametrize("x", [np.arange(4), [0.0, 1.0], 1.5])
def test_numeric_gradient_refuses_anything_but_a_float_array(x):
    with pytest.raises(ValueError, match="floating-point NumPy array"):
        gradient_check.numeric_gradient(np.tanh, x, np.ones(np.shape(x)))


def test_numeric_gradient_refuses_a_bad_step_or_a_mismatched_dout():
    with pytest.raises(ValueError, match="h must be > 0"):
        gradient_check.numeric_gradient(np.tanh, np.ones(3), np.ones(3), h=0.0)
    with pytest.raises(ValueError, match="dout has shape"):
        gradient_check.numeric_gradient(np.tanh, np.ones(3), np.ones(4))


def test_relative_error():
    assert gradient_check.relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert gradient_check.relative_error([2.0], [1.0]) == pytest.approx(1 / 3)
    assert gradient_check.relative_error([1.0, 0.0], [0.0, 0.0]) == 1.0
    assert gradient_check.relative_error([0.0], [1e-12]) == pytest.approx(1e-4)
    assert gradient_check.relative_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    with pytest.raises(ValueError, match="shape"):
        gradient_check.relative_error(np.ones(2), np.ones(3))
