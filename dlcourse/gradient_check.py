"""Numeric gradient checks for hand-written backward passes.

A backward pass returns ``dx``, the gradient of a scalar loss with respect to a layer's input
``x``, given ``dout``, the gradient with respect to the layer's output. To check it without
trusting any derivation, take the loss ``L(x) = sum(dout * f(x))`` (so that ``dL/dout = dout``)
and differentiate it numerically, one entry of ``x`` at a time, with central differences::

    from dlcourse import gradient_check

    numeric = gradient_check.numeric_gradient(lambda x: layer_forward(x, w), x, dout)
    print(gradient_check.relative_error(dx, numeric))     # about 1e-10 or less: correct

Central differences have an error of order ``h**2`` (truncation) plus one of order
``machine epsilon / h`` (rounding), so they are reliable in float64 with ``h`` near ``1e-5``;
in float32 the rounding term alone is about ``1e-7 / 1e-5 = 1e-2``. The functions work in the
dtype of ``x``: pass float64 arrays. Neither imports a framework.
"""

from __future__ import annotations

import numpy as np

__all__ = ["numeric_gradient", "relative_error"]


def numeric_gradient(f, x, dout, *, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``L(x) = sum(dout * f(x))`` with respect to ``x``.

    Parameters
    ----------
    f : callable taking an array shaped like ``x`` and returning an array shaped like ``dout``.
        It must be deterministic: a forward pass that draws a random mask must draw the same
        mask on every call (fix it outside ``f``, or reseed inside it).
    x : floating-point array (float64 recommended). It is perturbed in place during the
        computation and restored exactly before returning.
    dout : array shaped like ``f(x)``, the upstream gradient dL/d(f(x)).
    h : float > 0, the step.

    Returns an array shaped like ``x`` in ``x``'s dtype. Entry ``i`` is
    ``sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2 h)``: the outputs are subtracted before they
    are summed, so outputs that do not depend on ``x[i]`` cancel exactly.

    Raises ValueError if ``x`` is not a floating-point NumPy array, ``h <= 0``, or ``f(x)`` does
    not have the shape of ``dout``.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a floating-point NumPy array (it is perturbed in place), got "
                         f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)}; pass np.asarray(x, dtype=np.float64)")
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h}")
    dout = np.asarray(dout)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        try:
            x[index] = original + h
            up = np.array(f(x), dtype=x.dtype)      # a copy: f may return a view of x
            x[index] = original - h
            down = np.array(f(x), dtype=x.dtype)
        finally:
            x[index] = original
        if up.shape != dout.shape:
            raise ValueError(f"f(x) has shape {up.shape} but dout has shape {dout.shape}; they must match")
        grad[index] = np.sum((up - down) * dout) / (2 * h)
    return grad


def relative_error(got, expected) -> float:
    """The largest entry-wise relative error ``|got - expected| / max(|got| + |expected|, 1e-8)``.

    0 for identical arrays, at most 1. As a rule of thumb for float64 gradient checks: below
    ``1e-7`` the gradients agree; above ``1e-2`` one of them is wrong. Entries where both are
    (nearly) 0 count by their absolute difference over ``1e-8``.

    Raises ValueError if the shapes differ.
    """
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise ValueError(f"got has shape {got.shape} but expected has shape {expected.shape}; they must match")
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - expected) / np.maximum(np.abs(got) + np.abs(expected), 1e-8)))
