"""Mini-batches of in-memory tensors for PyTorch: the one batcher behind ``fit`` and ``data.torch_loader``.

:func:`pair_loader` cuts an ``(x, y)`` pair of tensors into batches by indexing
whole batches at once (no per-item collation) and returns a ``DataLoader``.
Two decisions hold for every caller:

* **Values are never changed here.** Scaling pixels is data preparation, done
  before batching: :func:`dlcourse.data.torch_loader` scales uint8 images to
  [0, 1]; :func:`dlcourse.train.fit` takes its tensors as given (float64 becomes
  float32, integer labels int64, nothing is rescaled). A batcher that scaled
  would scale twice whatever had already been prepared.
* **Where the shuffled order comes from is the caller's explicit choice.** With
  ``generator`` (a ``torch.Generator``) the order, and the one number a
  ``DataLoader`` draws per epoch, come from it: reproducible from its seed and
  independent of everything else (``torch_loader(seed=...)``). With
  ``generator=None`` each epoch's order is a fresh permutation seeded by one draw
  from torch's global RNG, and nothing else is drawn, so
  ``profiles.seed_everything`` makes ``fit`` repeatable and its batch order is
  the one the course's recorded results were made with.

:func:`as_batches` turns ``fit``'s ``train_data`` / ``val_data`` argument (a
DataLoader or an ``(x, y)`` pair) into batches, and :func:`split_batch` checks
that a batch is an ``(x, y)`` pair.
"""

from __future__ import annotations

from dlcourse import frameworks

torch = frameworks.import_torch()

__all__ = ["as_batches", "as_tensor", "pair_loader", "split_batch"]


class _BatchTensors:
    """Map-style dataset over in-memory tensors that hands out whole batches at once
    (``DataLoader`` calls ``__getitems__``), far faster than item-by-item collation."""

    def __init__(self, x, y):
        self.tensors = (x, y)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i):
        return self.tensors[0][i], self.tensors[1][i]

    def __getitems__(self, indices):
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.tensors[0][idx], self.tensors[1][idx]


def _pass_batch(batch):
    return batch


class _GlobalRNGOrder(torch.utils.data.Sampler):
    """A new permutation every epoch, from a generator seeded by one draw from torch's global RNG."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        return iter(torch.randperm(self.n, generator=generator).tolist())


def pair_loader(x, y, *, batch_size: int, shuffle: bool = False, generator=None):
    """A ``DataLoader`` of ``(x[i:j], y[i:j])`` batches over two tensors of the same length.

    ``shuffle=True`` draws a new order every epoch: from ``generator`` when one
    is given, else from torch's global RNG (one draw per epoch, nothing else);
    see the module docstring. The last batch may be smaller.
    """
    dataset = _BatchTensors(x, y)
    if not shuffle:
        sampler = torch.utils.data.SequentialSampler(dataset)
    elif generator is None:
        sampler = _GlobalRNGOrder(len(dataset))
    else:
        sampler = torch.utils.data.RandomSampler(dataset, generator=generator)
    # Without a generator of the caller's, the DataLoader's per-epoch draw comes from a
    # private one, so iterating leaves torch's global RNG alone.
    loader_generator = generator if generator is not None else torch.Generator()
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, generator=loader_generator, collate_fn=_pass_batch
    )


def as_tensor(value, role: str):
    """``value`` as a tensor: float64 becomes float32; integer labels (``role`` ending in "labels") int64."""
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{role} must be a tensor or an array, got {type(value).__name__}: {error}") from None
    if tensor.dtype == torch.float64:
        tensor = tensor.float()
    elif tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8) and role.endswith("labels"):
        tensor = tensor.long()
    return tensor


def as_batches(data, *, role: str, batch_size: int, shuffle: bool):
    """A re-iterable of (x, y) batches from a DataLoader-like iterable or an (x, y) pair.

    A pair goes through :func:`pair_loader` with torch's global RNG; an iterable is returned as it is.
    """
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(f"{role} must be a DataLoader or an (x, y) pair, got a sequence of length {len(data)}")
        x = as_tensor(data[0], f"{role} inputs")
        y = as_tensor(data[1], f"{role} labels")
        if len(x) != len(y):
            raise ValueError(f"{role}: x has {len(x)} examples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"{role} is empty")
        return pair_loader(x, y, batch_size=batch_size, shuffle=shuffle)
    if data is None or isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"{role} must be a DataLoader (or another iterable of (x, y) batches) or an (x, y) pair, "
            f"got {type(data).__name__}"
        )
    return data


def split_batch(batch, role: str):
    """``batch`` as ``(x, y)``; ValueError naming ``role`` when it is not a pair."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch
    raise ValueError(f"{role} must yield (x, y) batches, got {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}")
