"""dlcourse.checks: verdicts and failure messages of the test-cell helpers."""

import re

import numpy as np
import pytest

from dlcourse import checks


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------- assert_close


def test_assert_close_passes_within_tolerance():
    checks.assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-7]))
    checks.assert_close(1.0, 1.0)
    checks.assert_close([[1, 2], [3, 4]], np.array([[1.0, 2.0], [3.0, 4.0]]))
    checks.assert_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))  # NaN where expected
    checks.assert_close(np.array([1.05]), np.array([1.0]), rtol=0.1)
    checks.assert_close(np.array([1.05]), np.array([1.0]), atol=0.06, rtol=0)


def test_assert_close_message_has_name_expected_got_difference_index_tolerance():
    expected = np.zeros((3, 4))
    got = expected.copy()
    got[1, 2] = 0.5
    got[2, 3] = 0.25
    message = _message(checks.assert_close, got, expected, name="bn_out", rtol=1e-4, atol=1e-6)
    assert message.startswith("bn_out:")
    assert "2 of 12" in message
    assert "largest absolute difference: 0.5 at index (1, 2)" in message
    assert "rtol=0.0001" in message and "atol=1e-06" in message
    assert "expected:" in message and "got:" in message


def test_assert_close_is_asymmetric_relative_to_expected():
    # |got - expected| <= atol + rtol * |expected|
    checks.assert_close(109.0, 100.0, rtol=0.1, atol=0)
    _message(checks.assert_close, 100.0, 90.0, rtol=0.1, atol=0)  # 10 > 9


def test_assert_close_shape_mismatch_reports_both_shapes():
    message = _message(checks.assert_close, np.ones((2, 3)), np.ones((3, 2)), name="w")
    assert "shape mismatch" in message
    assert "expected shape (3, 2)" in message and "got shape (2, 3)" in message
    # No silent broadcasting either.
    _message(checks.assert_close, np.ones(3), np.ones((1, 3)))
    _message(checks.assert_close, np.ones(1), 1.0)


def test_assert_close_nan_where_not_expected():
    message = _message(checks.assert_close, np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert "NaN" in message and "index (1,)" in message
    # Also NaN expected but a number came back.
    _message(checks.assert_close, np.array([0.0]), np.array([np.nan]))


def test_assert_close_inf_handling():
    checks.assert_close(np.array([np.inf]), np.array([np.inf]))
    _message(checks.assert_close, np.array([np.inf]), np.array([1.0]))
    _message(checks.assert_close, np.array([-np.inf]), np.array([np.inf]))


def test_assert_close_none_and_non_numeric():
    assert "return" in _message(checks.assert_close, None, np.ones(2))
    assert "dtype" in _message(checks.assert_close, np.array(["a", "b"]), np.ones(2))
    assert "complex" in _message(checks.assert_close, np.array([1 + 1j]), np.array([1.0]))


def test_assert_close_accepts_torch_tensors_with_grad():
    torch = pytest.importorskip("torch")
    weight = torch.ones(3, requires_grad=True)
    checks.assert_close(weight * 2, np.full(3, 2.0))
    checks.assert_close(np.full(3, 2.0), weight * 2)
    checks.assert_close(torch.tensor([1.0], dtype=torch.bfloat16), [1.0])
    message = _message(checks.assert_close, weight * 2, torch.tensor([2.0, 2.0, 3.0]), name="grad")
    assert "index (2,)" in message and "grad:" in message


def test_assert_close_accepts_tensorflow_tensors():
    from dlcourse import frameworks

    tf = frameworks.import_tensorflow()
    checks.assert_close(tf.constant([1.0, 2.0]), np.array([1.0, 2.0]))
    checks.assert_close(tf.Variable([1.0, 2.0]), [1.0, 2.0])
    message = _message(checks.assert_close, tf.constant([1.0, 2.5]), tf.constant([1.0, 2.0]))
    assert "0.5 at index (1,)" in message


# ----------------------------------------------------------------- assert_shape


def test_assert_shape():
    checks.assert_shape(np.zeros((2, 3)), (2, 3))
    checks.assert_shape(np.zeros((2, 3)), (None, 3))
    message = _message(checks.assert_shape, np.zeros((2, 3)), (3, 2), name="logits")
    assert "logits" in message and "expected shape (3, 2)" in message and "got shape (2, 3)" in message
    _message(checks.assert_shape, np.zeros((2, 3)), (2, 3, 1))
    assert "return" in _message(checks.assert_shape, None, (2,))
    checks.assert_shape([[1, 2, 3]], (1, 3))


def test_assert_shape_tensors():
    torch = pytest.importorskip("torch")
    checks.assert_shape(torch.zeros(4, 5), (4, 5))
    _message(checks.assert_shape, torch.zeros(4, 5), (5, 4))


# ----------------------------------------------------------------- assert_equal


def test_assert_equal_arrays():
    checks.assert_equal(np.array([1, 2, 3]), [1, 2, 3])
    checks.assert_equal(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    message = _message(checks.assert_equal, np.array([[1, 2], [3, 5]]), np.array([[1, 2], [3, 4]]), name="labels")
    assert "labels" in message and "1 of 4" in message and "index (1, 1)" in message
    assert "got 5" in message and "expected 4" in message
    assert "shape mismatch" in _message(checks.assert_equal, np.zeros(3), np.zeros(4))


def test_assert_equal_scalars_and_objects():
    checks.assert_equal(3, 3)
    checks.assert_equal("relu", "relu")
    checks.assert_equal({"a": 1}, {"a": 1})
    checks.assert_equal((2, 3), (2, 3))
    assert "expected 'relu', got 'tanh'" in _message(checks.assert_equal, "tanh", "relu")
    _message(checks.assert_equal, 3, 4)
    _message(checks.assert_equal, None, 4)
    _message(checks.assert_equal, {"a": 1}, {"a": 2})


def test_assert_equal_torch():
    torch = pytest.importorskip("torch")
    checks.assert_equal(torch.tensor([1, 2]), np.array([1, 2]))
    _message(checks.assert_equal, torch.tensor([1, 3]), np.array([1, 2]))


# ----------------------------------------------------------------- assert_raises


def _raise(exc):
    raise exc


def test_assert_raises_passes_and_returns_the_exception():
    error = checks.assert_raises(ValueError, _raise, ValueError("rate must be in [0, 1)"), match=r"rate")
    assert isinstance(error, ValueError)
    checks.assert_raises((TypeError, ValueError), _raise, TypeError("x"))
    checks.assert_raises(ValueError, int, "abc")
    checks.assert_raises(ValueError, lambda value, *, base: int(value, base=base), "z", base=10)


def test_assert_raises_failures_are_explained():
    assert "returned without raising" in _message(checks.assert_raises, ValueError, lambda: None)
    message = _message(checks.assert_raises, ValueError, _raise, NotImplementedError("stub"))
    assert "should raise ValueError" in message and "NotImplementedError: stub" in message
    message = _message(checks.assert_raises, ValueError, _raise, ValueError("wrong text"), match="rate")
    assert "does not match" in message and "'rate'" in message


# ----------------------------------------------------------------- grading_rng


def test_grading_rng_reproducible_with_seed(monkeypatch):
    monkeypatch.setenv("DLCOURSE_GRADING_SEED", "student-42")
    a = checks.grading_rng("test_bn").normal(size=5)
    b = checks.grading_rng("test_bn").normal(size=5)
    np.testing.assert_array_equal(a, b)
    other_test = checks.grading_rng("test_dropout").normal(size=5)
    assert not np.array_equal(a, other_test)
    monkeypatch.setenv("DLCOURSE_GRADING_SEED", "student-43")
    assert not np.array_equal(a, checks.grading_rng("test_bn").normal(size=5))


def test_grading_rng_seed_is_sha256_of_seed_and_name(monkeypatch):
    import hashlib

    monkeypatch.setenv("DLCOURSE_GRADING_SEED", "s")
    digest = hashlib.sha256(b"s\x00t").digest()
    expected = np.random.default_rng(int.from_bytes(digest, "big")).integers(0, 2**62, size=4)
    np.testing.assert_array_equal(checks.grading_rng("t").integers(0, 2**62, size=4), expected)


def test_grading_rng_fresh_entropy_without_seed(monkeypatch):
    monkeypatch.delenv("DLCOURSE_GRADING_SEED", raising=False)
    a = checks.grading_rng("test_bn").integers(0, 2**62, size=4)
    b = checks.grading_rng("test_bn").integers(0, 2**62, size=4)
    assert not np.array_equal(a, b)
    with pytest.raises(TypeError):
        checks.grading_rng(3)


# ----------------------------------------------------------------- robustness to student patches


def test_numpy_monkeypatches_do_not_change_verdicts(monkeypatch):
    always_true = lambda *args, **kwargs: True  # noqa: E731
    for attr in ("allclose", "isclose", "array_equal", "array_equiv", "all", "any"):
        monkeypatch.setattr(np, attr, always_true)
    monkeypatch.setattr(np, "asarray", lambda *args, **kwargs: np.zeros(3))
    monkeypatch.setattr(np, "abs", lambda x: x * 0)
    monkeypatch.setattr(np, "isnan", lambda x: False)
    monkeypatch.setattr(np.testing, "assert_allclose", always_true)
    message = _message(checks.assert_close, [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert "largest absolute difference: 1.0 at index (2,)" in message
    _message(checks.assert_equal, [1, 2, 3], [1, 2, 4])
    _message(checks.assert_close, [1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    checks.assert_close([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])


def test_failures_are_assertion_errors_not_crashes():
    for got, expected in [([1, 2], [[1, 2]]), ([[1], [1, 2]], [1, 2]), ("abc", [1.0])]:
        with pytest.raises(AssertionError):
            checks.assert_close(got, expected)
    assert re.search(r"could not read got", _message(checks.assert_close, [[1], [1, 2]], [1, 2]))
