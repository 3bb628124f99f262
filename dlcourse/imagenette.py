"""The 160 px Imagenette (fast.ai): 10 ImageNet classes, found, downloaded, extracted and checked.

Re-exported by :mod:`dlcourse.data`.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from . import _download
from .datasets import MIRRORS, DataError
from .splits import pick_indices

__all__ = [
    "IMAGENETTE_ARCHIVE", "IMAGENETTE_CLASSES", "IMAGENETTE_FOLDER", "IMAGENETTE_HASH", "IMAGENETTE_WNIDS", "load_imagenette",
]

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
            keep = pick_indices(labels, int(limit), np.random.default_rng(seed), stratify=limit >= len(IMAGENETTE_WNIDS))
        images = np.empty((len(keep), size, size, 3), dtype=np.uint8)
        for row, i in enumerate(keep):
            images[row] = _load_image(files[i], int(size))
        out.append((images, labels[keep]))
    return out[0], out[1]
