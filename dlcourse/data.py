"""MNIST and Fashion-MNIST (and Imagenette) for the course: loading, splits, loaders.

Loading returns the Keras convention, ``(x_train, y_train), (x_test, y_test)``
as uint8 arrays with images ``(N, 28, 28)``::

    from dlcourse import data
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    splits = data.make_splits("fashion-mnist")     # float32 in [0, 1], sized by the profile

This module is the one name notebooks use; each job lives in its own module
and every public name is re-exported here:

=================  ==========================================================
module             what it does
=================  ==========================================================
``datasets``       the registry: names, files, checksums, mirrors, class names
``sources``        where the files come from (folder, cache, download, bundled
                   sample), verified, with a small in-memory memo
``splits``         stratified subsets and splits, ``make_splits``, ``to_float``
``pipelines``      ``torch_loader`` and ``tf_dataset`` over in-memory arrays
``imagenette``     the Imagenette download and loader
=================  ==========================================================

Nothing here writes to stderr, and torch / TensorFlow are imported only inside
:func:`torch_loader` and :func:`tf_dataset`.

Setting a re-exported name on this module (``monkeypatch.setattr(data,
"IMAGENETTE_HASH", ...)``, ``data.MIRRORS = ...``) sets it in every module
that uses it, so it takes effect as it did when all lived here.
"""

from __future__ import annotations

import sys
import types

from . import datasets, imagenette, pipelines, sources, splits
from .datasets import CHECKSUMS, DATASETS, FILES, MIRRORS, DataError, canonical_name, class_names
from .imagenette import (
    IMAGENETTE_ARCHIVE,
    IMAGENETTE_CLASSES,
    IMAGENETTE_FOLDER,
    IMAGENETTE_HASH,
    IMAGENETTE_WNIDS,
    load_imagenette,
)
from .pipelines import tf_dataset, torch_loader
from .sources import _MEMO  # noqa: F401  (the memo of decoded files: tests clear it here)
from .sources import load_dataset, load_fashion_mnist, load_mnist, sample_indices
from .splits import Splits, make_splits, pick_indices, subset, to_float, train_val_split

__all__ = [
    "CHECKSUMS",
    "DATASETS",
    "FILES",
    "IMAGENETTE_ARCHIVE",
    "IMAGENETTE_CLASSES",
    "IMAGENETTE_FOLDER",
    "IMAGENETTE_HASH",
    "IMAGENETTE_WNIDS",
    "MIRRORS",
    "DataError",
    "Splits",
    "canonical_name",
    "class_names",
    "load_dataset",
    "load_fashion_mnist",
    "load_imagenette",
    "load_mnist",
    "make_splits",
    "pick_indices",
    "sample_indices",
    "subset",
    "tf_dataset",
    "to_float",
    "torch_loader",
    "train_val_split",
]

_PARTS = (datasets, sources, splits, pipelines, imagenette)


class _Facade(types.ModuleType):
    """Assigning a re-exported name also assigns it in every part that uses it."""

    def __setattr__(self, name: str, value) -> None:
        if name in __all__ or name == "_MEMO":
            for part in _PARTS:
                if name in vars(part):
                    setattr(part, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade
