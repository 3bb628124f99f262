"""The datasets the course knows: names, files, published checksums, mirrors and class names.

This is the registry only; :mod:`dlcourse.sources` finds and verifies the files,
:mod:`dlcourse.imagenette` loads Imagenette. Everything here is re-exported by
:mod:`dlcourse.data`.
"""

from __future__ import annotations

__all__ = ["CHECKSUMS", "DATASETS", "FILES", "MIRRORS", "DataError", "canonical_name", "class_names"]

DATASETS = ("mnist", "fashion-mnist")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}

#: the four standard file names, in the order train images, train labels, test images, test labels
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: SHA-256 and size (bytes) of each file as its authors published it, per dataset
# (the MD5s match the published references; see the course's shared/data/README.md).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    },
}

#: Base URLs tried in order for each dataset (the file name is appended).
#: Override for every dataset with ``$DLCOURSE_MIRRORS`` ("{dataset}" is replaced
#: by the dataset name; "none" disables downloads), or edit this dict.
MIRRORS = {
    "mnist": (
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    ),
    "imagenette": ("https://s3.amazonaws.com/fast-ai-imageclas/",),
}

_CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or not the expected file."""


def canonical_name(name: str) -> str:
    """The registry's spelling of a dataset name (``"Fashion_MNIST"`` -> ``"fashion-mnist"``); ValueError if unknown."""
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, one of {DATASETS}; got {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)} (alias: fashion_mnist)")
    return key


def class_names(name: str) -> list[str]:
    """Class names in label order: ``"0"``..``"9"`` for MNIST, the article names for
    Fashion-MNIST, the Imagenette class names for ``"imagenette"``."""
    if isinstance(name, str) and name.strip().lower() in ("imagenette", "imagenette2-160"):
        from .imagenette import IMAGENETTE_CLASSES  # the loader's module holds its own names

        return list(IMAGENETTE_CLASSES)
    return list(_CLASS_NAMES[canonical_name(name)])
