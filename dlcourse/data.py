"""MNIST and Fashion-MNIST (and Imagenette) for the course: loading, splits, loaders.

Loading returns the Keras convention, ``(x_train, y_train), (x_test, y_test)``
as uint8 arrays with images ``(N, 28, 28)``::

    from dlcourse import data
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    splits = data.make_splits("fashion-mnist")     # float32 in [0, 1], sized by the profile

Where the files come from, first match wins:

1. ``data_dir=`` or ``$DLCOURSE_DATA``: a folder holding ``mnist/`` and
   ``fashion-mnist/``, each with the four standard IDX ``.gz`` files. A missing,
   truncated or corrupt file there is an error (never a silent fallback).
2. The user cache, ``$DLCOURSE_DATA_CACHE`` or ``~/.cache/dlcourse/data``.
3. A download into that cache, tried mirror by mirror (:data:`MIRRORS`, or
   ``$DLCOURSE_MIRRORS``), each file checked against its published SHA-256.
4. Offline: the stratified sample bundled with the package (10,000 training
   and 2,000 test images per dataset, real images), with a notice on stdout.

Every file is checked against its known SHA-256 and its IDX structure before
any array is returned; a bad file raises :class:`DataError`, naming the file
and the fix. Nothing in this module writes to stderr, and torch / TensorFlow
are imported only inside :func:`torch_loader` and :func:`tf_dataset`.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from . import _download
from ._idx import IDXError, parse_idx

__all__ = [
    "DATASETS",
    "FILES",
    "IMAGENETTE_CLASSES",
    "IMAGENETTE_WNIDS",
    "MIRRORS",
    "DataError",
    "Splits",
    "class_names",
    "load_dataset",
    "load_fashion_mnist",
    "load_imagenette",
    "load_mnist",
    "make_splits",
    "sample_indices",
    "subset",
    "tf_dataset",
    "to_float",
    "torch_loader",
    "train_val_split",
]

DATASETS = ("mnist", "fashion-mnist")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}

#: the four standard file names, in the order train images, train labels, test images, test labels
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 and size (bytes) of the files as their authors published them
# (the MD5s match the published references; see the course's shared/data/README.md).
_KNOWN = {
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

_SAMPLES = Path(__file__).resolve().parent / "samples"
_FIX = (
    "Fix: delete the file and load again (it is then downloaded), or copy the original "
    "file there, or point DLCOURSE_DATA (or data_dir=) at a folder with the original files."
)


class DataError(ValueError):
    """A data file is missing, corrupt, truncated or not the expected file."""


# --------------------------------------------------------------------------- names


def _canonical(name: str) -> str:
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
        return list(IMAGENETTE_CLASSES)
    return list(_CLASS_NAMES[_canonical(name)])


# --------------------------------------------------------------------------- reading files

# Decoded arrays of recently loaded, verified files, keyed by what identifies the
# files on disk; callers always get copies, so this can never hand out edited data.
_MEMO: dict = {}
_MEMO_MAX = 2


def _memo_get(key):
    arrays = _MEMO.get(key)
    return None if arrays is None else tuple(a.copy() for a in arrays)


def _memo_put(key, arrays) -> None:
    _MEMO.pop(key, None)
    while len(_MEMO) >= _MEMO_MAX:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[key] = tuple(arrays)


def _file_key(path: Path):
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _read_verified(path: Path, name: str, filename: str) -> np.ndarray:
    """Read one ``.gz`` IDX file, check size, SHA-256 and structure, and decode it."""
    sha, size = _KNOWN[name][filename]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}. {_FIX}") from exc
    if len(raw) != size:
        kind = "truncated" if len(raw) < size else "longer than the original"
        raise DataError(
            f"{path} is {kind}: {len(raw)} bytes, the published {name} file {filename} has {size}. {_FIX}"
        )
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha:
        raise DataError(
            f"{path} is corrupt or not the published {name} file {filename}: "
            f"SHA-256 {digest}, expected {sha}. {_FIX}"
        )
    try:
        array = parse_idx(gzip.decompress(raw), source=str(path))
    except (OSError, EOFError, zlib.error, IDXError) as exc:  # unreachable for a file with the right SHA-256
        raise DataError(f"{path} could not be decoded ({exc}). {_FIX}") from exc
    return array


def _check_arrays(arrays, source: str, expect=None) -> None:
    """Shapes, label range and matching counts of the four decoded arrays."""
    x_train, y_train, x_test, y_test = arrays
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{source}: {split} images have shape {x.shape} {x.dtype}, expected (N, 28, 28) uint8")
        if y.dtype != np.uint8 or y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{source}: {split} labels have shape {y.shape}, expected ({len(x)},) to match the images")
        if len(y) and int(y.max()) > 9:
            raise DataError(f"{source}: {split} labels go up to {int(y.max())}, expected 0-9")
        if expect is not None and len(x) != expect[split]:
            raise DataError(f"{source}: {len(x)} {split} images, expected {expect[split]}")


def _load_folder(folder: Path, name: str):
    """The four verified arrays from ``folder`` (all four files must be there)."""
    paths = [folder / f for f in FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        hint = ""
        if all((folder.parent / f).is_file() for f in FILES):
            hint = (f"\nThe files are in {folder.parent} itself: data_dir / DLCOURSE_DATA must name the "
                    f"folder that holds {name}/, i.e. {folder.parent.parent}.")
        raise DataError(
            f"{name}: {len(missing)} of the 4 files are missing in {folder}:\n  "
            + "\n  ".join(missing)
            + f"\nFix: put the four original IDX .gz files ({', '.join(FILES)}) in {folder}, "
            "or point DLCOURSE_DATA (or data_dir=) at a folder holding mnist/ and fashion-mnist/ with them."
            + hint
        )
    key = ("files", name) + tuple(_file_key(p) for p in paths)
    cached = _memo_get(key)
    if cached is not None:
        return cached
    arrays = tuple(_read_verified(p, name, f) for p, f in zip(paths, FILES))
    _check_arrays(arrays, str(folder), expect={"train": 60000, "test": 10000})
    _memo_put(key, arrays)
    return tuple(a.copy() for a in arrays)


# --------------------------------------------------------------------------- bundled sample


def _sample_manifest() -> dict:
    path = _SAMPLES / "MANIFEST.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(
            f"the bundled sample's manifest {path} is missing or unreadable ({exc}). "
            "Fix: reinstall dlcourse (pip install --force-reinstall ...) or rebuild it with scripts/build_samples.py."
        ) from exc


def _read_sample_file(filename: str, sha256: str) -> np.ndarray:
    path = _SAMPLES / filename
    fix = "Fix: reinstall dlcourse, or rebuild the sample with scripts/build_samples.py."
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"bundled sample file {path} is missing ({exc}). {fix}") from exc
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(f"bundled sample file {path} is corrupt (SHA-256 mismatch). {fix}")
    try:
        return parse_idx(lzma.decompress(raw), source=str(path))
    except (lzma.LZMAError, IDXError) as exc:
        raise DataError(f"bundled sample file {path} could not be decoded ({exc}). {fix}") from exc


def _load_sample(name: str):
    """``(x_train, y_train, x_test, y_test, idx_train, idx_test)`` of the bundled sample."""
    key = ("sample", name)
    cached = _memo_get(key)
    if cached is not None:
        return cached
    entry = _sample_manifest()["datasets"][name]
    arrays = []
    for split in ("train", "test"):
        for kind in ("images", "labels", "indices"):
            info = entry[split][kind]
            arrays.append(_read_sample_file(info["file"], info["sha256"]))
    x_tr, y_tr, i_tr, x_te, y_te, i_te = arrays
    _check_arrays((x_tr, y_tr, x_te, y_te), f"bundled {name} sample")
    for idx, x in ((i_tr, x_tr), (i_te, x_te)):
        if idx.shape != (len(x),):
            raise DataError(f"bundled {name} sample: {len(idx)} indices for {len(x)} images")
    result = (x_tr, y_tr, x_te, y_te, i_tr.astype(np.int64), i_te.astype(np.int64))
    _memo_put(key, result)
    return tuple(a.copy() for a in result)


def sample_indices(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the full training and test sets of the bundled sample's images
    (``x_sample[i] == x_full[indices[i]]``)."""
    *_, idx_train, idx_test = _load_sample(_canonical(name))
    return idx_train, idx_test


# --------------------------------------------------------------------------- resolution


def _notice(message: str) -> None:
    print(message, flush=True)  # stdout: nbgrader zeroes test cells that write to stderr


def _resolve(name: str, data_dir, sample: bool):
    """The four uint8 arrays and where they came from (``"sample"`` or a folder)."""
    if sample:
        return _load_sample(name)[:4], "sample"
    explicit = data_dir if data_dir is not None else os.environ.get("DLCOURSE_DATA") or None
    if explicit is not None:
        root = Path(explicit).expanduser()
        origin = "data_dir" if data_dir is not None else "DLCOURSE_DATA"
        if not root.is_dir():
            raise DataError(
                f"{origin} points at {root}, which is not a folder. Fix: point it at a folder "
                "holding mnist/ and fashion-mnist/ with the four IDX .gz files each, or unset it."
            )
        return _load_folder(root / name, name), str(root / name)

    cache = _download.cache_root() / name
    missing = [f for f in FILES if not (cache / f).is_file()]
    failures = []
    if missing:
        bases = _download.mirror_bases(name, MIRRORS[name])
        dead: set[str] = set()
        for filename in missing:
            try:
                _download.fetch(filename, _KNOWN[name][filename][0], cache, bases, dead=dead)
            except _download.DownloadFailed as exc:
                failures.append(exc)
                if bases and all(b in dead for b in bases):
                    break  # offline: no point trying the other files
            except OSError as exc:  # cache folder not writable
                failures.append(_download.DownloadFailed(filename, [(str(cache), str(exc))]))
                break
    if not failures:
        return _load_folder(cache, name), str(cache)

    arrays = _load_sample(name)[:4]
    reasons = "\n".join(f"  {line}" for exc in failures for line in str(exc).splitlines())
    tried = any(exc.attempts for exc in failures)  # downloads off (DLCOURSE_MIRRORS=none): nothing to list
    _notice(
        f"dlcourse.data: the full {name} data set is not available here, so this uses the "
        f"sample bundled with dlcourse: {len(arrays[0]):,} training and {len(arrays[2]):,} test "
        "images (real images, stratified by class). Results differ from the full data set.\n"
        + (f"Looked in the user cache {cache} and tried to download:\n{reasons}\n"
           "To use the full data: connect to the internet and load again, or set DLCOURSE_DATA "
           if tried else "Downloads are off here. To use the full data, set DLCOURSE_DATA ")
        + "(or data_dir=) to a folder holding mnist/ and fashion-mnist/ with the original IDX files."
    )
    return arrays, "sample"


def load_dataset(name: str, *, data_dir=None, sample: bool = False):
    """Load ``name`` (one of :data:`DATASETS`) as ``(x_train, y_train), (x_test, y_test)``.

    uint8 arrays, images ``(N, 28, 28)`` with 0 = background, labels 0-9:
    the Keras ``load_data()`` convention. ``sample=True`` forces the bundled
    sample. See the module docstring for where the files are looked for.
    """
    name = _canonical(name)
    (x_train, y_train, x_test, y_test), _ = _resolve(name, data_dir, sample)
    return (x_train, y_train), (x_test, y_test)


def load_mnist(*, data_dir=None, sample: bool = False):
    """MNIST digits as ``(x_train, y_train), (x_test, y_test)``, uint8 (see :func:`load_dataset`)."""
    return load_dataset("mnist", data_dir=data_dir, sample=sample)


def load_fashion_mnist(*, data_dir=None, sample: bool = False):
    """Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8 (see :func:`load_dataset`)."""
    return load_dataset("fashion-mnist", data_dir=data_dir, sample=sample)


# --------------------------------------------------------------------------- splits


def _xy(x, y):
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


def _pick(y: np.ndarray, n: int, rng: np.random.Generator, stratify: bool) -> np.ndarray:
    """Sorted indices of ``n`` items, stratified by ``y`` when asked."""
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
    x, y = _xy(x, y)
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
    val_idx = _pick(y, n_val, np.random.default_rng(seed), stratify)
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    return (x[mask], y[mask]), (x[val_idx], y[val_idx])


def subset(x, y, n: int, *, seed: int = 0, stratify: bool = True):
    """``n`` items of ``(x, y)`` drawn without replacement, in their original order.

    With ``stratify=True`` the class proportions of ``y`` are kept (within one
    item per class). ``n`` equal to the length returns everything (a copy).
    """
    x, y = _xy(x, y)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be an integer, got {n!r}")
    n = int(n)
    if not 1 <= n <= len(y):
        raise ValueError(f"n must be between 1 and the number of items ({len(y)}), got {n}")
    if stratify:
        _check_stratifiable(y, {"subset": n})
    idx = _pick(y, n, np.random.default_rng(seed), stratify)
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
    name = _canonical(name)
    if profile is None:
        from . import profiles

        profile = profiles.get()
    n_train, n_val, n_test = (_size(profile, a) for a in ("n_train", "n_val", "n_test"))
    (x_tr, y_tr, x_te, y_te), source = _resolve(name, data_dir, sample)

    available = len(y_tr)
    if n_val is None:
        n_val = max(1, int(round(0.1 * available)))
    if n_val > available // 2:
        raise ValueError(
            f"profile asks for {n_val} validation images but {name} ({source}) has only {available} "
            "training images; use a smaller n_val"
        )
    val_idx = _pick(y_tr, n_val, np.random.default_rng((seed, 1)), True)
    rest = np.ones(available, dtype=bool)
    rest[val_idx] = False
    rest_idx = np.flatnonzero(rest)
    if n_train is not None and n_train > len(rest_idx):
        _notice(
            f"dlcourse.data: {name} ({source}) has {len(rest_idx)} training images left after the "
            f"{n_val} validation images; using them all instead of the {n_train} the profile asks for."
        )
        n_train = None
    if n_train is not None:
        rest_idx = rest_idx[_pick(y_tr[rest_idx], n_train, np.random.default_rng((seed, 2)), True)]
    if n_test is not None and n_test > len(y_te):
        _notice(
            f"dlcourse.data: {name} ({source}) has {len(y_te)} test images; using them all instead "
            f"of the {n_test} the profile asks for."
        )
        n_test = None
    test_idx = np.arange(len(y_te)) if n_test is None else _pick(y_te, n_test, np.random.default_rng(3), True)

    return Splits(
        x_train=to_float(x_tr[rest_idx]), y_train=y_tr[rest_idx].astype(np.int64),
        x_val=to_float(x_tr[val_idx]), y_val=y_tr[val_idx].astype(np.int64),
        x_test=to_float(x_te[test_idx]), y_test=y_te[test_idx].astype(np.int64),
        name=name, source=source,
    )


# --------------------------------------------------------------------------- framework pipelines


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
        import torch

        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.tensors[0][idx], self.tensors[1][idx]


def _pass_batch(batch):
    return batch


def torch_loader(x, y, *, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
                 flatten: bool = False, channels: bool = False):
    """A ``torch.utils.data.DataLoader`` of ``(images, labels)`` batches over in-memory tensors.

    Images become float32 in [0, 1] (uint8 input is scaled), ``(B, 28, 28)``,
    ``(B, 784)`` with ``flatten=True`` or ``(B, 1, 28, 28)`` with
    ``channels=True``; labels int64. With ``shuffle=True`` the order of every
    epoch is drawn from a ``torch.Generator`` seeded with ``seed``: two loaders
    built with the same seed give the same sequence of epochs.
    """
    x, y = _xy(x, y)
    batch_size = _check_batch(batch_size)
    images = _images_for_model(x, flatten=flatten, channels=channels, channels_last=False)
    labels = _labels(y)
    import torch

    dataset = _BatchTensors(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels))
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=bool(shuffle), generator=generator, collate_fn=_pass_batch
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
    x, y = _xy(x, y)
    batch_size = _check_batch(batch_size)
    images = _images_for_model(x, flatten=False, channels=channels, channels_last=True)
    labels = _labels(y)
    tf = _import_tensorflow()
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=int(seed), reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- Imagenette

#: WordNet ids of the 10 Imagenette classes, in label order (sorted, as the folders)
IMAGENETTE_WNIDS = (
    "n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
    "n03394916", "n03417042", "n03425413", "n03445777", "n03888257",
)
#: human-readable Imagenette class names, in label order
IMAGENETTE_CLASSES = (
    "tench", "English springer", "cassette player", "chain saw", "church",
    "French horn", "garbage truck", "gas pump", "golf ball", "parachute",
)
IMAGENETTE_FOLDER = "imagenette2-160"
IMAGENETTE_ARCHIVE = "imagenette2-160.tgz"
#: pooch hash of the archive: the MD5 used by torchvision's ``Imagenette`` dataset for this URL
IMAGENETTE_HASH = "md5:e793b78cc4c9e9a4ccc0c1155377a412"
_IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _imagenette_layout_problems(root: Path) -> list[str]:
    problems = []
    for split in ("train", "val"):
        for wnid in IMAGENETTE_WNIDS:
            folder = root / split / wnid
            if not folder.is_dir():
                problems.append(f"missing folder {folder}")
            elif not any(p.suffix.lower() in _IMAGE_SUFFIXES for p in folder.iterdir()):
                problems.append(f"no images in {folder}")
    return problems


def _find_imagenette(base: Path) -> Path | None:
    for candidate in (base / IMAGENETTE_FOLDER, base):
        if (candidate / "train").is_dir() and (candidate / "val").is_dir():
            return candidate
    return None


def _extract_imagenette(archive: Path, cache: Path) -> Path:
    """Extract into a temporary folder next to the final one, check the layout, then rename."""
    target = cache / IMAGENETTE_FOLDER
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{archive} is not a readable .tgz archive ({exc}). Fix: delete it and load again.") from exc
        root = _find_imagenette(tmp)
        problems = ["no imagenette2-160/train and /val folders"] if root is None else _imagenette_layout_problems(root)
        if problems:
            raise DataError(
                f"{archive} does not have the Imagenette layout imagenette2-160/{{train,val}}/<wnid>/*.JPEG: "
                + "; ".join(problems[:5]) + ". Fix: delete it and load again, or pass data_dir= to an extracted copy."
            )
        if target.exists():
            shutil.rmtree(target)
        root.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _imagenette_root(data_dir, download: bool) -> Path:
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        found = _find_imagenette(base)
        if found is not None:
            return found
        if (base / IMAGENETTE_ARCHIVE).is_file():
            cache = _download.cache_root()
            cache.mkdir(parents=True, exist_ok=True)
            return _extract_imagenette(base / IMAGENETTE_ARCHIVE, cache)
        raise DataError(
            f"no Imagenette in {base}: expected {base / IMAGENETTE_FOLDER}/{{train,val}}/<wnid>/ "
            f"(or train/ and val/ directly in it, or the archive {IMAGENETTE_ARCHIVE}). "
            "Fix: extract imagenette2-160.tgz there, or leave data_dir=None to download it."
        )
    env = os.environ.get("DLCOURSE_DATA")
    if env:
        found = _find_imagenette(Path(env).expanduser() / IMAGENETTE_FOLDER)
        if found is not None:
            return found
    cache = _download.cache_root()
    done = cache / IMAGENETTE_FOLDER / ".complete"
    if done.is_file():
        return cache / IMAGENETTE_FOLDER
    if not download:
        raise DataError(
            f"Imagenette is not in the cache {cache} and download=False. Fix: pass download=True, "
            f"or data_dir= pointing at an extracted {IMAGENETTE_FOLDER} folder."
        )
    bases = _download.mirror_bases("imagenette", MIRRORS["imagenette"])
    try:
        archive = _download.fetch(IMAGENETTE_ARCHIVE, IMAGENETTE_HASH, cache, bases)
    except _download.DownloadFailed as exc:
        raise DataError(
            f"Imagenette is not available offline and the download failed ({exc}). Fix: connect "
            f"to the internet, or download {MIRRORS['imagenette'][0]}{IMAGENETTE_ARCHIVE} elsewhere "
            "and pass data_dir= to the folder holding it (or its extracted copy)."
        ) from exc
    try:
        root = _extract_imagenette(archive, cache)
    except DataError:
        archive.unlink(missing_ok=True)  # a downloaded archive with the wrong layout is of no further use
        raise
    archive.unlink()
    done.write_text("extracted and checked\n")
    return root


def _load_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = size / min(w, h)
            new = (max(size, round(w * scale)), max(size, round(h * scale)))
            img = img.resize(new, Image.Resampling.BILINEAR, reducing_gap=3.0)
            left, top = (new[0] - size) // 2, (new[1] - size) // 2
            img = img.crop((left, top, left + size, top + size))
            return np.asarray(img, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read image {path} ({exc}). Fix: delete the extracted folder and load again.") from exc


def load_imagenette(*, data_dir=None, download: bool = True, size: int = 160, limit=None, seed: int = 0):
    """The 160 px Imagenette (fast.ai): 10 ImageNet classes, ``train`` and ``val`` splits.

    Returns ``(x_train, y_train), (x_val, y_val)``: uint8 images
    ``(N, size, size, 3)`` (shorter side resized to ``size``, then center
    crop) and uint8 labels indexing :data:`IMAGENETTE_CLASSES`. ``limit``
    caps the images per split (a stratified draw from ``seed``) to bound memory:
    all 9,469 + 3,925 images at 160 px take about 1 GB as uint8.

    Looks in ``data_dir`` (an extracted ``imagenette2-160`` folder, a folder
    containing it, or the ``.tgz``), then ``$DLCOURSE_DATA/imagenette2-160``,
    then the user cache; otherwise downloads the archive (MD5-checked),
    extracts it and checks the folder layout. There is no offline sample.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    root = _imagenette_root(data_dir, download)
    problems = _imagenette_layout_problems(root)
    if problems:
        raise DataError(f"{root} is not a complete Imagenette folder: " + "; ".join(problems[:5]))
    out = []
    for split in ("train", "val"):
        files, labels = [], []
        for label, wnid in enumerate(IMAGENETTE_WNIDS):
            names = sorted(p for p in (root / split / wnid).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            files += names
            labels += [label] * len(names)
        labels = np.asarray(labels, dtype=np.uint8)
        keep = np.arange(len(files))
        if limit is not None and limit < len(files):
            keep = _pick(labels, int(limit), np.random.default_rng(seed), stratify=limit >= len(IMAGENETTE_WNIDS))
        images = np.empty((len(keep), size, size, 3), dtype=np.uint8)
        for row, i in enumerate(keep):
            images[row] = _load_image(files[i], int(size))
        out.append((images, labels[keep]))
    return out[0], out[1]
