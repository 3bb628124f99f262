"""Comparison helpers for the notebooks' test cells, with readable failure messages.

Every helper raises ``AssertionError`` with a message that says what was
expected, what came back, and (for arrays) the largest absolute difference and
where it occurs. Inputs may be NumPy arrays, PyTorch tensors (detached and
moved to the CPU), TensorFlow tensors or variables, Python scalars or
(nested) lists.

Student code shares the kernel with the tests, so it could patch NumPy
(``np.allclose = lambda *a, **k: True``). The NumPy functions used here are
captured when this module is imported, so later patches do not change a
verdict.

``grading_rng(test_name)`` is the random generator hidden tests draw their
inputs from: reproducible per student when the grader sets the grading seed
(:func:`use_grading_seed` around hidden tests, or ``$DLCOURSE_GRADING_SEED``),
fresh entropy otherwise.

``student`` (from :mod:`dlcourse.channel`) is how hidden tests reach the
student's code: ``student.accuracy_from_logits(z, y)``. At grading time hidden
tests run outside the student's kernel and every such call is a request to it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re

import numpy as np

from .channel import student

__all__ = ["assert_close", "assert_shape", "assert_equal", "assert_raises", "grading_rng", "use_grading_seed",
           "student", "GRADING_SEED_VAR"]

GRADING_SEED_VAR = "DLCOURSE_GRADING_SEED"

# Captured at import time: student code run later in the same kernel may
# monkeypatch NumPy, and the verdict must not change when it does.
_asarray = np.asarray
_isclose = np.isclose
_isnan = np.isnan
_isfinite = np.isfinite
_abs = np.abs
_where = np.where
_argmax = np.argmax
_unravel_index = np.unravel_index
_array2string = np.array2string
_issubdtype = np.issubdtype
_number = np.number
_bool_ = np.bool_
_complexfloating = np.complexfloating
_inexact = np.inexact
_ndarray = np.ndarray
_float64 = np.float64
_count_nonzero = np.count_nonzero
_generic = np.generic
_errstate = np.errstate
_inf = np.inf
_default_rng = np.random.default_rng
_sha256 = hashlib.sha256
_re_search = re.search
_environ_get = os.environ.get


# --------------------------------------------------------------------------- conversion


def _to_numpy(value, name: str, role: str) -> np.ndarray:
    """``value`` as a NumPy array; torch and TF tensors are converted without importing them."""
    if value is None:
        raise AssertionError(
            f"{name}: {role} is None" + (" (did the function forget to `return` its result?)" if role == "got" else "")
        )
    module = type(value).__module__ or ""
    try:
        if module.startswith("torch") and hasattr(value, "detach"):
            tensor = value.detach().cpu()
            if getattr(tensor, "is_conj", lambda: False)():
                tensor = tensor.resolve_conj()
            if str(tensor.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
                tensor = tensor.float()
            return _asarray(tensor.numpy())
        if not isinstance(value, (_ndarray, _generic)) and callable(getattr(value, "numpy", None)):
            return _asarray(value.numpy())  # TF eager tensors, tf.Variable, keras.Variable
        array = _asarray(value)
    except (ValueError, TypeError) as error:
        raise AssertionError(f"{name}: could not read {role} as an array ({type(value).__name__}): {error}") from None
    return array


def _check_numeric(array: np.ndarray, name: str, role: str, value) -> None:
    if not (_issubdtype(array.dtype, _number) or array.dtype == _bool_):
        raise AssertionError(
            f"{name}: {role} must hold numbers, got dtype {array.dtype} "
            f"(type {type(value).__name__}: {_preview(value)})"
        )


def _preview(value, limit: int = 200) -> str:
    if isinstance(value, _ndarray):
        text = _array2string(value, threshold=20, edgeitems=3, precision=6, max_line_width=100)
        text = text.replace("\n", "\n" + " " * 12)  # align rows under "  expected: "
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _index(flat_index: int, shape: tuple) -> tuple | str:
    if not shape:
        return "()"
    return tuple(int(i) for i in _unravel_index(flat_index, shape))


def _fmt(x) -> str:
    return repr(x.item()) if hasattr(x, "item") else repr(x)


# --------------------------------------------------------------------------- assertions


def assert_close(got, expected, *, rtol: float = 1e-5, atol: float = 1e-8, name: str = "result") -> None:
    """Assert ``|got - expected| <= atol + rtol * |expected|`` elementwise, shapes equal.

    NaN in ``got`` passes only where ``expected`` is NaN too. The failure message
    gives both shapes or, for equal shapes, how many elements differ, the largest
    absolute difference, its index, and the tolerance used.
    """
    got_array = _to_numpy(got, name, "got")
    expected_array = _to_numpy(expected, name, "expected")
    _check_numeric(got_array, name, "got", got)
    _check_numeric(expected_array, name, "expected", expected)
    tolerance = f"rtol={rtol:g}, atol={atol:g}"

    if got_array.shape != expected_array.shape:
        raise AssertionError(
            f"{name}: shape mismatch: expected shape {tuple(expected_array.shape)}, "
            f"got shape {tuple(got_array.shape)}\n"
            f"  expected: {_preview(expected_array)}\n  got:      {_preview(got_array)}"
        )
    if _issubdtype(got_array.dtype, _complexfloating) and not _issubdtype(expected_array.dtype, _complexfloating):
        raise AssertionError(f"{name}: expected real numbers, got complex dtype {got_array.dtype}")

    # Compare in float64 (or complex) so integer and bool inputs behave.
    if not _issubdtype(got_array.dtype, _complexfloating):
        got_array = got_array.astype(_float64)
    if not _issubdtype(expected_array.dtype, _complexfloating):
        expected_array = expected_array.astype(_float64)

    close = _isclose(got_array, expected_array, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return

    mismatched = ~close
    n_bad = int(_count_nonzero(mismatched))
    n_total = close.size
    got_nan = _isnan(got_array) & ~_isnan(expected_array)
    lines = [f"{name}: values differ: {n_bad} of {n_total} element(s) outside tolerance ({tolerance})"]
    if got_nan.any():
        first = int(_argmax(got_nan.ravel()))
        lines.append(
            f"  got NaN where a number was expected: {int(_count_nonzero(got_nan))} element(s), "
            f"first at index {_index(first, got_array.shape)} (expected {_fmt(expected_array.ravel()[first])})"
        )
    with _errstate(invalid="ignore", over="ignore"):
        difference = _abs(got_array - expected_array)
    # Rank only the mismatched elements; NaN/inf differences count as the largest.
    ranked = _where(mismatched, difference, -1.0).astype(_float64)
    ranked = _where(_isfinite(ranked), ranked, _inf)
    worst = int(_argmax(ranked.ravel()))
    where = _index(worst, got_array.shape)
    lines.append(
        f"  largest absolute difference: {_fmt(difference.ravel()[worst])} at index {where} "
        f"(got {_fmt(got_array.ravel()[worst])}, expected {_fmt(expected_array.ravel()[worst])})"
    )
    lines.append(f"  expected: {_preview(expected_array)}")
    lines.append(f"  got:      {_preview(got_array)}")
    raise AssertionError("\n".join(lines))


def _shape_of(value) -> tuple:
    shape = getattr(value, "shape", None)
    if shape is None:
        return tuple(_asarray(value).shape)
    dims = getattr(shape, "as_list", None)  # tf.TensorShape
    if callable(dims) and getattr(shape, "rank", 0) is not None:
        return tuple(dims())
    return tuple(None if d is None else int(d) for d in shape)


def assert_shape(got, shape, *, name: str = "result") -> None:
    """Assert that ``got`` has shape ``shape``; ``None`` in ``shape`` matches any size."""
    if got is None:
        raise AssertionError(f"{name}: got None (did the function forget to `return` its result?)")
    expected = tuple(shape)
    actual = _shape_of(got)
    matches = len(actual) == len(expected) and all(e is None or e == a for a, e in zip(actual, expected))
    if not matches:
        raise AssertionError(f"{name}: expected shape {expected}, got shape {actual} ({type(got).__name__})")


def _is_array_like(value) -> bool:
    module = type(value).__module__ or ""
    return (
        isinstance(value, (_ndarray, _generic, list, tuple, int, float, complex, bool))
        or module.startswith(("torch", "tensorflow"))
    )


def assert_equal(got, expected, *, name: str = "result") -> None:
    """Assert exact equality: elementwise for arrays/tensors/lists (shapes must match), ``==`` otherwise."""
    if _is_array_like(got) and _is_array_like(expected):
        got_array = _to_numpy(got, name, "got")
        expected_array = _to_numpy(expected, name, "expected")
        if got_array.dtype != object and expected_array.dtype != object:
            if got_array.shape != expected_array.shape:
                raise AssertionError(
                    f"{name}: shape mismatch: expected shape {tuple(expected_array.shape)}, "
                    f"got shape {tuple(got_array.shape)}\n"
                    f"  expected: {_preview(expected_array)}\n  got:      {_preview(got_array)}"
                )
            try:
                equal = _asarray(got_array == expected_array)
            except (TypeError, ValueError):
                equal = None
            if equal is not None and equal.shape == got_array.shape:
                both_nan = False
                if _issubdtype(got_array.dtype, _inexact) and _issubdtype(expected_array.dtype, _inexact):
                    both_nan = _isnan(got_array) & _isnan(expected_array)
                equal = equal | both_nan
                if equal.all():
                    return
                differ = ~equal
                first = int(_argmax(differ.ravel()))
                raise AssertionError(
                    f"{name}: {int(_count_nonzero(differ))} of {equal.size} element(s) differ; first at index "
                    f"{_index(first, got_array.shape)} (got {_fmt(got_array.ravel()[first])}, "
                    f"expected {_fmt(expected_array.ravel()[first])})\n"
                    f"  expected: {_preview(expected_array)}\n  got:      {_preview(got_array)}"
                )
    # Anything else (strings, dicts, objects): plain equality.
    if got is None and expected is not None:
        raise AssertionError(f"{name}: got None, expected {_preview(expected)} (did the function forget to `return`?)")
    try:
        same = bool(got == expected)
    except Exception as error:  # noqa: BLE001 - an ambiguous comparison is a failure, not a crash
        raise AssertionError(f"{name}: could not compare got ({type(got).__name__}) with expected: {error}") from None
    if not same:
        raise AssertionError(f"{name}: expected {_preview(expected)}, got {_preview(got)}")


def assert_raises(exc_type, fn, *args, match: str | None = None, **kwargs) -> BaseException:
    """Assert that ``fn(*args, **kwargs)`` raises ``exc_type`` (whose message matches ``match``).

    ``match`` is a regular expression searched for in ``str(exception)``.
    Returns the exception so a test can inspect it further.
    """
    expected_name = (
        " or ".join(t.__name__ for t in exc_type) if isinstance(exc_type, tuple) else exc_type.__name__
    )
    call = f"{getattr(fn, '__name__', repr(fn))}(...)"
    try:
        fn(*args, **kwargs)
    except exc_type as error:
        if match is not None and not _re_search(match, str(error)):
            raise AssertionError(
                f"{call} raised {type(error).__name__} as expected, but its message {str(error)!r} "
                f"does not match {match!r}"
            ) from None
        return error
    except Exception as error:  # noqa: BLE001 - report what was raised instead
        raise AssertionError(
            f"{call} should raise {expected_name}, but it raised {type(error).__name__}: {error}"
        ) from None
    raise AssertionError(f"{call} should raise {expected_name}, but it returned without raising")


# --------------------------------------------------------------------------- grading inputs


_seed_in_use: contextvars.ContextVar[str | None] = contextvars.ContextVar("dlcourse_grading_seed", default=None)


@contextlib.contextmanager
def use_grading_seed(seed):
    """Draw hidden tests' inputs from ``seed`` in this thread (the grader's trusted process does
    this per student; it takes precedence over ``$DLCOURSE_GRADING_SEED``)."""
    token = _seed_in_use.set(str(seed))
    try:
        yield
    finally:
        _seed_in_use.reset(token)


def grading_rng(test_name: str) -> np.random.Generator:
    """The generator a hidden test draws its inputs from.

    When a grading seed is set (:func:`use_grading_seed`, or
    ``$DLCOURSE_GRADING_SEED``; the grader sets it per student) the seed is the SHA-256 of that value and ``test_name``, so a re-grade draws the
    same inputs and different tests draw different ones. Unset, the generator
    is seeded from fresh OS entropy.
    """
    if not isinstance(test_name, str) or not test_name:
        raise TypeError(f"test_name must be a non-empty string, got {test_name!r}")
    grading_seed = _seed_in_use.get() or _environ_get(GRADING_SEED_VAR)
    if not grading_seed:
        return _default_rng()
    digest = _sha256(f"{grading_seed}\x00{test_name}".encode("utf-8")).digest()
    return _default_rng(int.from_bytes(digest, "big"))
