"""In-memory arrays as framework pipelines: a PyTorch ``DataLoader`` or a ``tf.data.Dataset``.

Both scale uint8 images to float32 in [0, 1] (:func:`~dlcourse.splits.to_float`)
and give int64 labels. torch and TensorFlow are imported only when called.
Re-exported by :mod:`dlcourse.data`.
"""

from __future__ import annotations

import numpy as np

from .splits import as_pair, to_float

__all__ = ["tf_dataset", "torch_loader"]


def _images_for_model(x, *, flatten: bool, channels: bool, channels_last: bool) -> np.ndarray:
    if flatten and channels:
        raise ValueError("flatten=True and channels=True exclude each other: pick one")
    a = to_float(x)
    if a.ndim < 2:
        raise ValueError(f"x must hold one image (or vector) per row, got shape {a.shape}")
    if flatten:
        return a.reshape(len(a), -1)
    if channels:
        if a.ndim != 3:
            raise ValueError(f"channels=True expects images (N, H, W), got shape {a.shape}")
        return a[..., None] if channels_last else a[:, None]
    return a


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


def _check_batch(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def torch_loader(x, y, *, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
                 flatten: bool = False, channels: bool = False):
    """A ``torch.utils.data.DataLoader`` of ``(images, labels)`` batches over in-memory tensors.

    Images become float32 in [0, 1] (uint8 input is scaled), ``(B, 28, 28)``,
    ``(B, 784)`` with ``flatten=True`` or ``(B, 1, 28, 28)`` with
    ``channels=True``; labels int64. With ``shuffle=True`` the order of every
    epoch is drawn from a ``torch.Generator`` seeded with ``seed``: two loaders
    built with the same seed give the same sequence of epochs. Batches come from
    :func:`dlcourse.batching.pair_loader`, the batcher ``train.fit`` uses for pairs.
    """
    x, y = as_pair(x, y)
    batch_size = _check_batch(batch_size)
    images = _images_for_model(x, flatten=flatten, channels=channels, channels_last=False)
    labels = _labels(y)
    from .batching import pair_loader, torch

    # Unshuffled, the loader draws its per-epoch number from torch's global RNG, as a plain
    # DataLoader does: results recorded with these loaders depend on that stream.
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else torch.default_generator
    return pair_loader(
        torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels),
        batch_size=batch_size, shuffle=bool(shuffle), generator=generator,
    )


def _import_tensorflow():
    try:
        from .frameworks import import_tensorflow
    except ImportError:  # frameworks module unavailable: plain import
        import tensorflow as tf

        return tf
    return import_tensorflow()


def tf_dataset(x, y, *, batch_size: int = 128, shuffle: bool = False, seed: int = 0, channels: bool = False):
    """A batched ``tf.data.Dataset`` of ``(images, labels)``: float32 in [0, 1],
    ``(B, 28, 28)`` or ``(B, 28, 28, 1)`` with ``channels=True`` (Keras is
    channels-last), labels int64. With ``shuffle=True`` each epoch is
    reshuffled, reproducibly from ``seed``."""
    x, y = as_pair(x, y)
    batch_size = _check_batch(batch_size)
    images = _images_for_model(x, flatten=False, channels=channels, channels_last=True)
    labels = _labels(y)
    tf = _import_tensorflow()
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=int(seed), reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
