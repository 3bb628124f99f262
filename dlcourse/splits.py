"""Stratified subsets and splits, the profile-sized train / validation / test sets, and pixels as floats.

Every draw depends only on its ``seed`` and keeps the original order. Re-exported by :mod:`dlcourse.data`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .datasets import canonical_name, class_names
from .sources import notice, resolve

__all__ = ["Splits", "make_splits", "pick_indices", "subset", "to_float", "train_val_split"]


def as_pair(x, y):
    """``x`` and ``y`` as arrays, checked: ``y`` 1-D labels, one per row of ``x``."""
    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels, got shape {y.shape}")
    if x.ndim == 0 or len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x) if x.ndim else 'a scalar'} and {len(y)}")
    return x, y


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over classes in proportion to ``counts`` (largest remainder method).

    Each class gets the floor of its exact share, and the left-over units go
    to the largest fractional remainders (ties: the larger class, then the
    lower label), so the result sums to ``n`` and is never more than one away
    from the exact proportion.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    exact = counts * n / total
    base = np.floor(exact).astype(np.int64)
    left = n - int(base.sum())
    order = sorted(range(len(counts)), key=lambda c: (-(exact[c] - base[c]), -counts[c], c))
    for c in order[:left]:
        base[c] += 1
    return np.minimum(base, counts)


def pick_indices(y: np.ndarray, n: int, rng: np.random.Generator, stratify: bool) -> np.ndarray:
    """Sorted indices of ``n`` items of ``y`` drawn without replacement from ``rng``, stratified by
    class when asked (each class in proportion to its frequency, by :func:`_allocate`)."""
    if not stratify:
        return np.sort(rng.choice(len(y), size=n, replace=False))
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    take = _allocate(counts, n)
    chosen = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        chosen.append(rng.choice(members, size=int(take[c]), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _check_stratifiable(y: np.ndarray, n_side: dict[str, int]) -> None:
    classes, counts = np.unique(y, return_counts=True)
    for side, n in n_side.items():
        if n < len(classes):
            raise ValueError(
                f"stratification impossible: the {side} set would hold {n} items but there are "
                f"{len(classes)} classes; use more data, a different size, or stratify=False"
            )
    if len(n_side) > 1 and counts.min() < 2:
        rare = classes[counts < 2].tolist()
        raise ValueError(
            f"stratification impossible: class(es) {rare} have a single item, which cannot appear "
            "in both sets; pass stratify=False"
        )


def train_val_split(x, y, *, val_fraction: float = 0.1, seed: int = 0, stratify: bool = True):
    """Split ``(x, y)`` into ``((x_train, y_train), (x_val, y_val))``.

    The validation set holds ``round(val_fraction * len(y))`` items; with
    ``stratify=True`` each class contributes in proportion to its frequency
    (largest remainder, so within one item of exact). Which items go where
    depends only on ``seed``; both parts keep the original order.
    """
    x, y = as_pair(x, y)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating)) \
            or not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, got {val_fraction!r}")
    n = len(y)
    n_val = int(round(float(val_fraction) * n))
    if n_val < 1 or n_val > n - 1:
        raise ValueError(
            f"val_fraction={val_fraction} of {n} items gives {n_val} validation and {n - n_val} "
            "training items; both sets need at least one"
        )
    if stratify:
        _check_stratifiable(y, {"validation": n_val, "training": n - n_val})
    val_idx = pick_indices(y, n_val, np.random.default_rng(seed), stratify)
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    return (x[mask], y[mask]), (x[val_idx], y[val_idx])


def subset(x, y, n: int, *, seed: int = 0, stratify: bool = True):
    """``n`` items of ``(x, y)`` drawn without replacement, in their original order.

    With ``stratify=True`` the class proportions of ``y`` are kept (within one
    item per class). ``n`` equal to the length returns everything (a copy).
    """
    x, y = as_pair(x, y)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be an integer, got {n!r}")
    n = int(n)
    if not 1 <= n <= len(y):
        raise ValueError(f"n must be between 1 and the number of items ({len(y)}), got {n}")
    if stratify:
        _check_stratifiable(y, {"subset": n})
    idx = pick_indices(y, n, np.random.default_rng(seed), stratify)
    return x[idx], y[idx]


def to_float(x) -> np.ndarray:
    """uint8 pixels (0-255) to float32 in [0, 1]; float input already in [0, 1] is cast to float32."""
    a = np.asarray(x)
    if a.dtype == np.uint8:
        return np.divide(a, np.float32(255.0), dtype=np.float32)
    if np.issubdtype(a.dtype, np.floating):
        if a.size and not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
            raise ValueError(
                f"to_float expects float pixels in [0, 1], got values in [{a.min()}, {a.max()}] "
                "(already standardized? pass the uint8 images instead)"
            )
        return a.astype(np.float32, copy=False)
    raise ValueError(
        f"to_float expects uint8 pixels (0-255) or floats in [0, 1], got dtype {a.dtype}; "
        "for 0-255 integers use x.astype(np.uint8) first"
    )


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Splits:
    """Train / validation / test arrays: images float32 in [0, 1] ``(N, 28, 28)``, labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = ""
    source: str = ""  # the folder the data came from, or "sample"

    @property
    def train(self):
        return self.x_train, self.y_train

    @property
    def val(self):
        return self.x_val, self.y_val

    @property
    def test(self):
        return self.x_test, self.y_test

    @property
    def class_names(self) -> list[str]:
        return class_names(self.name)

    def __repr__(self) -> str:
        return (
            f"Splits({self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, source={self.source!r})"
        )


def _size(profile, attr: str):
    value = getattr(profile, attr)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"profile.{attr} must be a positive integer or None (all), got {value!r}")
    return int(value)


def make_splits(name: str, profile=None, *, seed: int = 0, data_dir=None, sample: bool = False) -> Splits:
    """Stratified train / validation / test arrays sized by a profile.

    ``profile`` has ``n_train``, ``n_val``, ``n_test`` (ints, or None for all;
    ``None`` for ``n_val`` means 10% of the training set); ``profile=None``
    uses ``dlcourse.profiles.get()``. The validation set is carved from the
    training set first (it depends only on ``seed`` and ``n_val``), then the
    training subset is drawn from the rest. The test subset does not depend on
    ``seed``, so runs with different seeds are scored on the same images.
    When the data holds fewer images than asked (e.g. the bundled sample
    under the ``default`` profile) the training set is shrunk, with a notice.
    """
    name = canonical_name(name)
    if profile is None:
        from . import profiles

        profile = profiles.get()
    n_train, n_val, n_test = (_size(profile, a) for a in ("n_train", "n_val", "n_test"))
    (x_tr, y_tr, x_te, y_te), source = resolve(name, data_dir, sample)

    available = len(y_tr)
    if n_val is None:
        n_val = max(1, int(round(0.1 * available)))
    if n_val > available // 2:
        raise ValueError(
            f"profile asks for {n_val} validation images but {name} ({source}) has only {available} "
            "training images; use a smaller n_val"
        )
    val_idx = pick_indices(y_tr, n_val, np.random.default_rng((seed, 1)), True)
    rest = np.ones(available, dtype=bool)
    rest[val_idx] = False
    rest_idx = np.flatnonzero(rest)
    if n_train is not None and n_train > len(rest_idx):
        notice(
            f"dlcourse.data: {name} ({source}) has {len(rest_idx)} training images left after the "
            f"{n_val} validation images; using them all instead of the {n_train} the profile asks for."
        )
        n_train = None
    if n_train is not None:
        rest_idx = rest_idx[pick_indices(y_tr[rest_idx], n_train, np.random.default_rng((seed, 2)), True)]
    if n_test is not None and n_test > len(y_te):
        notice(
            f"dlcourse.data: {name} ({source}) has {len(y_te)} test images; using them all instead "
            f"of the {n_test} the profile asks for."
        )
        n_test = None
    test_idx = np.arange(len(y_te)) if n_test is None else pick_indices(y_te, n_test, np.random.default_rng(3), True)

    return Splits(
        x_train=to_float(x_tr[rest_idx]), y_train=y_tr[rest_idx].astype(np.int64),
        x_val=to_float(x_tr[val_idx]), y_val=y_tr[val_idx].astype(np.int64),
        x_test=to_float(x_te[test_idx]), y_test=y_te[test_idx].astype(np.int64),
        name=name, source=source,
    )
