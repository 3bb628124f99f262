"""Tests for dlcourse.data: loading, verification, download, sample, splits, loaders, Imagenette.

Full-data tests read $DLCOURSE_DATA (tests/conftest.py points it at ../shared/data)
and are skipped, with the reason, when it is unset. Download tests run a real
HTTP server on 127.0.0.1 and point the user cache at a temporary folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import importlib.util
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from dlcourse import _download, data
from dlcourse.idx import IDXError, encode_idx, parse_idx

ROOT = Path(__file__).resolve().parents[1]
FULL = os.environ.get("DLCOURSE_DATA")
needs_full = pytest.mark.skipif(
    not FULL or not (Path(FULL) / "mnist").is_dir(),
    reason="DLCOURSE_DATA is not set to a folder with mnist/ and fashion-mnist/ (the full IDX files)",
)

# Class counts 0..9 of the published files (shared/data/README.md).
COUNTS = {
    "mnist": {
        "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    },
    "fashion-mnist": {"train": [6000] * 10, "test": [1000] * 10},
}


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    """No DLCOURSE_DATA, an empty user cache in tmp_path, downloads disabled."""
    monkeypatch.delenv("DLCOURSE_DATA", raising=False)
    monkeypatch.setenv("DLCOURSE_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DLCOURSE_MIRRORS", "none")
    data._MEMO.clear()
    yield tmp_path / "cache"
    data._MEMO.clear()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the default writes every request to stderr
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """An HTTP server on 127.0.0.1 (free port) serving ``folder``; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _mirror_tree(dest: Path, corrupt: str | None = None) -> Path:
    """``dest/mnist/`` with links to the four real files; ``corrupt`` is copied with one bit flipped."""
    folder = dest / "mnist"
    folder.mkdir(parents=True)
    for f in data.FILES:
        src = Path(FULL) / "mnist" / f
        if f == corrupt:
            raw = bytearray(src.read_bytes())
            raw[len(raw) // 2] ^= 0x10
            (folder / f).write_bytes(bytes(raw))
        else:
            (folder / f).symlink_to(src)
    return dest


def _cache_listing(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "mnist").iterdir()) if (cache / "mnist").is_dir() else []


# ----------------------------------------------------------------------------- full data


@needs_full
@pytest.mark.parametrize("name", data.DATASETS)
def test_full_data_shapes_dtypes_and_class_counts(name):
    (x_train, y_train), (x_test, y_test) = data.load_dataset(name)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8
    assert x_train.min() == 0 and x_train.max() == 255
    assert np.bincount(y_train, minlength=10).tolist() == COUNTS[name]["train"]
    assert np.bincount(y_test, minlength=10).tolist() == COUNTS[name]["test"]


@needs_full
def test_loaders_match_reference_decoding_and_return_fresh_copies():
    import gzip

    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    with gzip.open(Path(FULL) / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
        ref = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    np.testing.assert_array_equal(x_test, ref)
    x_test[:] = 0  # editing a result must not leak into the next load
    (_, _), (x_again, _) = data.load_mnist()
    np.testing.assert_array_equal(x_again, ref)
    (fx, fy), _ = data.load_fashion_mnist()
    (ax, ay), _ = data.load_dataset("fashion_mnist", data_dir=FULL)
    np.testing.assert_array_equal(fx, ax)
    assert not np.array_equal(fx[:100], x_train[:100])


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="mnist, fashion-mnist"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="valid names"):
        data.class_names("svhn")


def test_class_names():
    assert data.class_names("mnist") == [str(i) for i in range(10)]
    assert data.class_names("fashion-mnist")[0] == "T-shirt/top"
    assert data.class_names("fashion_mnist")[9] == "Ankle boot"
    assert data.class_names("imagenette") == list(data.IMAGENETTE_CLASSES)
    assert len(data.IMAGENETTE_CLASSES) == len(data.IMAGENETTE_WNIDS) == 10


# ----------------------------------------------------------------------------- bad files


@needs_full
@pytest.mark.parametrize("damage", ["truncate", "bitflip", "garbage"])
def test_damaged_file_in_data_dir_raises_naming_file_and_fix(tmp_path, damage):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in data.FILES:
        (folder / f).symlink_to(Path(FULL) / "mnist" / f)
    bad = folder / "train-labels-idx1-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    bad.unlink()
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "bitflip":
        raw[len(raw) // 3] ^= 0x01
    else:
        raw = bytearray(b"<html>not found</html>")
    bad.write_bytes(bytes(raw))
    result = None
    with pytest.raises(data.DataError) as info:
        result = data.load_mnist(data_dir=tmp_path)
    assert result is None
    message = str(info.value)
    assert str(bad) in message
    assert "delete" in message and "DLCOURSE_DATA" in message
    expected = {"truncate": "truncated: 14440 bytes", "bitflip": "SHA-256", "garbage": "truncated: 22 bytes"}[damage]
    assert expected in message
    assert isinstance(info.value, ValueError)


@needs_full
def test_damaged_file_via_environment_variable_raises(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for f in data.FILES:
        raw = (Path(FULL) / "fashion-mnist" / f).read_bytes()
        if f == "t10k-images-idx3-ubyte.gz":
            raw = raw[:-100]
        (folder / f).write_bytes(raw)
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path))
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load_fashion_mnist()


def test_data_dir_missing_files_lists_them(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"x")
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"x")
    with pytest.raises(data.DataError) as info:
        data.load_mnist(data_dir=tmp_path)
    message = str(info.value)
    assert "2 of the 4 files are missing" in message
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images" not in message.split("Fix:")[0]
    with pytest.raises(data.DataError, match="not a folder"):
        data.load_mnist(data_dir=tmp_path / "nowhere")
    if FULL:  # pointing at the dataset folder itself gets a hint
        with pytest.raises(data.DataError, match="must name the folder that holds mnist/, i.e. " + re.escape(FULL)):
            data.load_mnist(data_dir=Path(FULL) / "mnist")


def test_idx_parser_rejects_malformed_bytes():
    labels = encode_idx(np.arange(10, dtype=np.uint8))
    np.testing.assert_array_equal(parse_idx(labels), np.arange(10))
    images = encode_idx(np.zeros((3, 28, 28), np.uint8))
    assert parse_idx(images).shape == (3, 28, 28)
    idx = encode_idx(np.array([5, 70000, 2**31 - 1], np.int32))
    np.testing.assert_array_equal(parse_idx(idx), [5, 70000, 2**31 - 1])
    with pytest.raises(IDXError, match="truncated"):
        parse_idx(images[:-1], source="demo")
    with pytest.raises(IDXError, match="trailing"):
        parse_idx(labels + b"\0")
    with pytest.raises(IDXError, match="magic"):
        parse_idx(b"\x1f\x8b" + labels[2:])
    with pytest.raises(IDXError, match="too short"):
        parse_idx(b"\0\0")


def test_corrupt_file_in_user_cache_raises(offline_env):
    cache = offline_env / "mnist"
    cache.mkdir(parents=True)
    for f in data.FILES:
        (cache / f).write_bytes(b"\0" * 100)
    with pytest.raises(data.DataError) as info:
        data.load_mnist()
    assert str(cache / "train-images-idx3-ubyte.gz") in str(info.value)
    assert "delete" in str(info.value)


# ----------------------------------------------------------------------------- bundled sample


def test_sample_sizes_stratification_and_labels():
    for name in data.DATASETS:
        (x_train, y_train), (x_test, y_test) = data.load_dataset(name, sample=True)
        assert x_train.shape == (10000, 28, 28) and x_test.shape == (2000, 28, 28)
        assert x_train.dtype == y_train.dtype == x_test.dtype == y_test.dtype == np.uint8
        for split, y, n in (("train", y_train, 10000), ("test", y_test, 2000)):
            full = np.array(COUNTS[name][split])
            exact = full * n / full.sum()
            got = np.bincount(y, minlength=10)
            assert got.sum() == n
            assert np.all(np.abs(got - exact) < 1), (name, split, got, exact)
        idx_train, idx_test = data.sample_indices(name)
        for idx, n_full in ((idx_train, 60000), (idx_test, 10000)):
            assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < n_full
    (_, y), _ = data.load_fashion_mnist(sample=True)
    assert np.bincount(y).tolist() == [1000] * 10


@needs_full
@pytest.mark.parametrize("name", data.DATASETS)
def test_sample_images_equal_the_originals_at_stored_indices(name):
    (sx, sy), (tx, ty) = data.load_dataset(name, sample=True)
    (fx, fy), (gx, gy) = data.load_dataset(name)
    idx_train, idx_test = data.sample_indices(name)
    np.testing.assert_array_equal(sx, fx[idx_train])
    np.testing.assert_array_equal(sy, fy[idx_train])
    np.testing.assert_array_equal(tx, gx[idx_test])
    np.testing.assert_array_equal(ty, gy[idx_test])


@needs_full
def test_sample_selection_is_what_the_build_script_draws():
    spec = importlib.util.spec_from_file_location("build_samples", ROOT / "scripts" / "build_samples.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for d, name in enumerate(data.DATASETS):
        (_, y_train), (_, y_test) = data.load_dataset(name)
        stored = data.sample_indices(name)
        for s, y in enumerate((y_train, y_test)):
            split = ("train", "test")[s]
            again = data.pick_indices(y, build.SIZES[split], np.random.default_rng([build.SEED, d, s]), True)
            np.testing.assert_array_equal(again, stored[s])


def test_sample_files_under_8_mb_with_licenses():
    folder = ROOT / "dlcourse" / "samples"
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total < 8 * 1024 * 1024, f"bundled samples take {total} bytes"
    licenses = (folder / "LICENSES.md").read_text()
    for needle in ("LeCun", "Cortes", "Burges", "CC BY-SA 3.0", "Zalando", "Xiao", "Rasul", "Vollgraf", "MIT"):
        assert needle in licenses


def test_offline_without_mirrors_uses_sample_with_notice_on_stdout(offline_env, capfd):
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    out, err = capfd.readouterr()
    assert err == ""
    assert "bundled" in out and "sample" in out and "DLCOURSE_DATA" in out
    (sx, _), (tx, _) = data.load_mnist(sample=True)
    np.testing.assert_array_equal(x_train, sx)
    np.testing.assert_array_equal(x_test, tx)
    assert capfd.readouterr() == ("", "")  # forcing the sample is quiet


def test_offline_closed_ports_fall_back_quickly(offline_env, monkeypatch, capfd):
    ports = (_closed_port(), _closed_port())
    monkeypatch.setenv("DLCOURSE_MIRRORS", " ".join(f"http://127.0.0.1:{p}/{{dataset}}/" for p in ports))
    start = time.monotonic()
    (x_train, _), _ = data.load_fashion_mnist()
    elapsed = time.monotonic() - start
    out, err = capfd.readouterr()
    assert err == ""
    assert "sample" in out and f"127.0.0.1:{ports[0]}" in out and f"127.0.0.1:{ports[1]}" in out
    assert len(x_train) == 10000
    assert elapsed < 30, f"offline fallback took {elapsed:.1f} s"
    assert _cache_listing(offline_env) == []


def test_stalled_server_times_out_and_falls_back(offline_env, monkeypatch, capfd):
    monkeypatch.setattr(_download, "READ_TIMEOUT", 0.5)
    with socket.socket() as listener:  # accepts connections (kernel backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"http://127.0.0.1:{listener.getsockname()[1]}/")
        (x_train, _), _ = data.load_mnist()
    out, err = capfd.readouterr()
    assert err == "" and "sample" in out and "Timeout" in out
    assert len(x_train) == 10000


# ----------------------------------------------------------------------------- downloads


@needs_full
def test_download_from_local_mirror_is_verified_and_cached(offline_env, tmp_path, monkeypatch, capfd):
    tree = _mirror_tree(tmp_path / "site")
    with serve(tree) as url:
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"{url}/{{dataset}}/")
        got = data.load_mnist()
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    assert _cache_listing(offline_env) == sorted(data.FILES)
    for f in data.FILES:
        assert (offline_env / "mnist" / f).read_bytes() == (Path(FULL) / "mnist" / f).read_bytes()
    expected = data.load_mnist(data_dir=FULL)
    for a, b in zip(got[0] + got[1], expected[0] + expected[1]):
        np.testing.assert_array_equal(a, b)
    # The server is gone: the second load comes from the cache.
    monkeypatch.setenv("DLCOURSE_MIRRORS", f"http://127.0.0.1:{_closed_port()}/")
    data._MEMO.clear()
    again = data.load_mnist()
    np.testing.assert_array_equal(again[0][0], expected[0][0])
    assert capfd.readouterr() == ("", "")


@needs_full
def test_corrupt_mirror_leaves_no_file_and_falls_back_with_reason(offline_env, tmp_path, monkeypatch, capfd):
    tree = _mirror_tree(tmp_path / "site", corrupt="t10k-labels-idx1-ubyte.gz")
    with serve(tree) as url:
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"{url}/{{dataset}}/")
        (x_train, _), _ = data.load_mnist()
    out, err = capfd.readouterr()
    assert err == ""
    assert len(x_train) == 10000  # the sample, never data built from the bad file
    assert "checksum mismatch" in out and "t10k-labels-idx1-ubyte.gz" in out
    listing = _cache_listing(offline_env)
    assert "t10k-labels-idx1-ubyte.gz" not in listing
    assert set(listing) <= set(data.FILES), f"partial or temporary files left: {listing}"


@needs_full
def test_corrupt_first_mirror_then_good_second_mirror(offline_env, tmp_path, monkeypatch, capfd):
    bad = _mirror_tree(tmp_path / "bad", corrupt="train-images-idx3-ubyte.gz")
    good = _mirror_tree(tmp_path / "good")
    with serve(bad) as bad_url, serve(good) as good_url:
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"{bad_url}/{{dataset}}/,{good_url}/{{dataset}}/")
        (x_train, _), _ = data.load_mnist()
    assert capfd.readouterr() == ("", "")
    assert x_train.shape == (60000, 28, 28)
    assert _cache_listing(offline_env) == sorted(data.FILES)


@needs_full
def test_first_mirror_down_second_up(offline_env, tmp_path, monkeypatch, capfd):
    good = _mirror_tree(tmp_path / "good")
    down = f"http://127.0.0.1:{_closed_port()}/{{dataset}}/"
    with serve(good) as url:
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"{down} {url}/{{dataset}}/")
        (x_train, y_train), _ = data.load_mnist()
    assert capfd.readouterr() == ("", "")
    assert np.bincount(y_train).tolist() == COUNTS["mnist"]["train"]


def test_mirror_list_override(monkeypatch):
    monkeypatch.delenv("DLCOURSE_MIRRORS", raising=False)
    assert _download.mirror_bases("mnist", data.MIRRORS["mnist"]) == list(data.MIRRORS["mnist"])
    assert len(data.MIRRORS["mnist"]) >= 2 and len(data.MIRRORS["fashion-mnist"]) >= 2
    monkeypatch.setenv("DLCOURSE_MIRRORS", "http://a/{dataset}/, http://b/")
    assert _download.mirror_bases("fashion-mnist", ()) == ["http://a/fashion-mnist/", "http://b/"]
    monkeypatch.setenv("DLCOURSE_MIRRORS", "none")
    assert _download.mirror_bases("mnist", data.MIRRORS["mnist"]) == []


# ----------------------------------------------------------------------------- splits


def _toy(n_per_class=(50, 30, 20), seed=0):
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    y = np.random.default_rng(seed).permutation(y)
    x = np.arange(len(y))  # x[i] == i tracks where every item went
    return x, y


def test_train_val_split_exact_stratification_disjoint_and_deterministic():
    x, y = _toy((50, 30, 20))
    (xt, yt), (xv, yv) = data.train_val_split(x, y, val_fraction=0.2, seed=3)
    assert np.bincount(yv).tolist() == [10, 6, 4]
    assert np.bincount(yt).tolist() == [40, 24, 16]
    assert set(xt).isdisjoint(xv) and len(xt) + len(xv) == len(x)
    np.testing.assert_array_equal(y[xv], yv)  # images and labels stay paired
    assert np.all(np.diff(xt) > 0) and np.all(np.diff(xv) > 0)  # original order kept
    (_, _), (xv2, _) = data.train_val_split(x, y, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(xv, xv2)
    (_, _), (xv3, _) = data.train_val_split(x, y, val_fraction=0.2, seed=4)
    assert not np.array_equal(xv, xv3)
    # Unequal shares: within one item of the exact proportion, total exact.
    x, y = _toy((37, 23, 11))
    (_, _), (_, yv) = data.train_val_split(x, y, val_fraction=0.15)
    exact = np.array([37, 23, 11]) * round(0.15 * 71) / 71
    assert len(yv) == round(0.15 * 71) and np.all(np.abs(np.bincount(yv) - exact) < 1)
    (_, _), (xv, _) = data.train_val_split(x, y, val_fraction=0.3, stratify=False)
    assert len(xv) == round(0.3 * 71)


def test_train_val_split_invalid_arguments():
    x, y = _toy()
    for bad in (0, 1, 1.5, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="val_fraction"):
            data.train_val_split(x, y, val_fraction=bad)
    with pytest.raises(ValueError, match="same length"):
        data.train_val_split(x[:-1], y)
    with pytest.raises(ValueError, match="both sets"):
        data.train_val_split(x[:5], y[:5], val_fraction=0.01)
    y1 = y.copy()
    y1[0] = 7  # a class with a single member
    with pytest.raises(ValueError, match="stratification impossible"):
        data.train_val_split(x, y1)
    with pytest.raises(ValueError, match="stratification impossible"):
        data.train_val_split(x, y, val_fraction=0.02)  # 2 validation items, 3 classes
    (_, _), (xv, _) = data.train_val_split(x, y1, stratify=False)
    assert len(xv) == 10


def test_subset_stratified_deterministic_and_invalid():
    x, y = _toy((500, 300, 200))
    xs, ys = data.subset(x, y, 100, seed=1)
    assert np.bincount(ys).tolist() == [50, 30, 20]
    np.testing.assert_array_equal(y[xs], ys)
    assert len(set(xs)) == 100 and np.all(np.diff(xs) > 0)
    np.testing.assert_array_equal(data.subset(x, y, 100, seed=1)[0], xs)
    assert not np.array_equal(data.subset(x, y, 100, seed=2)[0], xs)
    assert len(data.subset(x, y, 2, stratify=False)[0]) == 2
    np.testing.assert_array_equal(data.subset(x, y, len(y))[0], x)
    for bad in (0, -1, len(y) + 1, 2.5, None):
        with pytest.raises(ValueError, match="n must be"):
            data.subset(x, y, bad)
    with pytest.raises(ValueError, match="stratification impossible"):
        data.subset(x, y, 2)
    with pytest.raises(ValueError, match="same length"):
        data.subset(x, y[:10], 5)
    with pytest.raises(ValueError, match="1-D"):
        data.subset(x, y.reshape(-1, 1), 5)


def test_to_float():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16)
    f = data.to_float(x)
    assert f.dtype == np.float32 and f.min() == 0.0 and f.max() == 1.0
    np.testing.assert_allclose(f, np.arange(256).reshape(16, 16) / 255.0, rtol=1e-7)
    assert data.to_float(f).dtype == np.float32
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.to_float(np.array([-0.5, 0.5]))
    with pytest.raises(ValueError, match="uint8"):
        data.to_float(np.array([0, 255], dtype=np.int64))


def _stand_in(n_train, n_val, n_test):
    return types.SimpleNamespace(name="stand-in", n_train=n_train, n_val=n_val, n_test=n_test)


def _check_splits(s, sizes):
    for x, y, n in ((s.x_train, s.y_train, sizes[0]), (s.x_val, s.y_val, sizes[1]), (s.x_test, s.y_test, sizes[2])):
        assert x.shape == (n, 28, 28) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0


def _rows(x):
    return {row.tobytes() for row in x}


def test_make_splits_sample_stand_in_profile_sizes_disjoint_deterministic(capfd):
    s = data.make_splits("fashion-mnist", _stand_in(2000, 500, 1000), seed=0, sample=True)
    _check_splits(s, (2000, 500, 1000))
    assert np.bincount(s.y_train).tolist() == [200] * 10
    assert np.bincount(s.y_val).tolist() == [50] * 10
    assert np.bincount(s.y_test).tolist() == [100] * 10
    assert _rows(s.x_train).isdisjoint(_rows(s.x_val))
    assert s.source == "sample" and s.class_names[0] == "T-shirt/top"
    same = data.make_splits("fashion-mnist", _stand_in(2000, 500, 1000), seed=0, sample=True)
    np.testing.assert_array_equal(s.x_train, same.x_train)
    np.testing.assert_array_equal(s.x_val, same.x_val)
    other = data.make_splits("fashion-mnist", _stand_in(2000, 500, 1000), seed=1, sample=True)
    assert not np.array_equal(s.x_val, other.x_val)
    np.testing.assert_array_equal(s.x_test, other.x_test)  # same test images for every seed
    bigger = data.make_splits("fashion-mnist", _stand_in(4000, 500, None), seed=0, sample=True)
    np.testing.assert_array_equal(s.x_val, bigger.x_val)  # validation set does not depend on n_train
    assert len(bigger.y_test) == 2000
    assert capfd.readouterr() == ("", "")


def test_make_splits_shrinks_training_set_with_notice_when_data_is_short(capfd):
    s = data.make_splits("mnist", _stand_in(10000, 2000, 2000), sample=True)
    _check_splits(s, (8000, 2000, 2000))
    out, err = capfd.readouterr()
    assert err == "" and "8000 training images left" in out
    with pytest.raises(ValueError, match="n_val"):
        data.make_splits("mnist", _stand_in(100, 6000, 100), sample=True)
    with pytest.raises(ValueError, match="n_train"):
        data.make_splits("mnist", _stand_in(-5, 100, 100), sample=True)
    with pytest.raises(ValueError, match="valid names"):
        data.make_splits("digits", _stand_in(100, 100, 100))


def test_make_splits_uses_the_active_profile(monkeypatch):
    profiles = pytest.importorskip("dlcourse.profiles")
    monkeypatch.setenv("DLCOURSE_PROFILE", "ci")
    p = profiles.get()
    s = data.make_splits("mnist", sample=True)
    _check_splits(s, (p.n_train, p.n_val, p.n_test))


@needs_full
def test_make_splits_full_data_full_profile_shape():
    s = data.make_splits("mnist", _stand_in(None, 5000, None), seed=0)
    _check_splits(s, (55000, 5000, 10000))
    assert s.source.endswith("mnist")
    counts = np.bincount(s.y_val)
    exact = np.array(COUNTS["mnist"]["train"]) * 5000 / 60000
    assert np.all(np.abs(counts - exact) < 1)


# ----------------------------------------------------------------------------- framework pipelines


def test_torch_loader_shapes_order_and_reproducible_shuffle():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    y = np.arange(300) % 10
    loader = data.torch_loader(x, y, batch_size=64)
    assert isinstance(loader, torch.utils.data.DataLoader)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [64, 64, 64, 64, 44]
    xb, yb = batches[0]
    assert xb.shape == (64, 28, 28) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    np.testing.assert_allclose(xb.numpy(), x[:64] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(torch.cat([b[1] for b in batches]).numpy(), y)
    assert next(iter(data.torch_loader(x, y, flatten=True)))[0].shape == (128, 784)
    assert next(iter(data.torch_loader(x, y, channels=True)))[0].shape == (128, 1, 28, 28)

    def epoch_labels(loader):
        return torch.cat([b[1] for b in loader]).numpy()

    def epoch_order(loader):  # recover the item order from the pixels
        return torch.cat([b[0][:, 0, 0] for b in loader]).numpy()

    a = data.torch_loader(x, y, shuffle=True, seed=5, batch_size=50)
    b = data.torch_loader(x, y, shuffle=True, seed=5, batch_size=50)
    c = data.torch_loader(x, y, shuffle=True, seed=6, batch_size=50)
    first_a, first_b, first_c = epoch_order(a), epoch_order(b), epoch_order(c)
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(first_a, first_c)
    assert not np.array_equal(epoch_order(a), first_a)  # a new order each epoch...
    np.testing.assert_array_equal(np.sort(epoch_labels(a)), np.sort(y))  # ...over every item once
    with pytest.raises(ValueError, match="exclude each other"):
        data.torch_loader(x, y, flatten=True, channels=True)
    with pytest.raises(ValueError, match="batch_size"):
        data.torch_loader(x, y, batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        data.torch_loader(x, y[:10])


def test_tf_dataset_shapes_and_reproducible_shuffle():
    pytest.importorskip("tensorflow")
    x = np.random.default_rng(1).integers(0, 256, (200, 28, 28), dtype=np.uint8)
    y = np.arange(200) % 10
    ds = data.tf_dataset(x, y, batch_size=64, channels=True)
    batches = [(bx.numpy(), by.numpy()) for bx, by in ds]
    assert [len(b[1]) for b in batches] == [64, 64, 64, 8]
    assert batches[0][0].shape == (64, 28, 28, 1) and batches[0][0].dtype == np.float32
    assert batches[0][1].dtype == np.int64
    np.testing.assert_allclose(batches[0][0][..., 0], x[:64] / 255.0, rtol=1e-6)

    def order(ds):
        return np.concatenate([bx.numpy()[:, 0, 0] for bx, _ in ds])

    a, b, c = (data.tf_dataset(x, y, shuffle=True, seed=s, batch_size=32) for s in (3, 3, 4))
    first = order(a)
    np.testing.assert_array_equal(first, order(b))
    assert not np.array_equal(first, order(c))
    np.testing.assert_array_equal(np.sort(first), np.sort(x[:, 0, 0] / np.float32(255)))
    with pytest.raises(ValueError, match="batch_size"):
        data.tf_dataset(x, y, batch_size=-1)


def test_import_does_not_load_frameworks():
    code = (
        "import sys, dlcourse.data as d; d.load_mnist(sample=True); "
        "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""


# ----------------------------------------------------------------------------- Imagenette


def _tiny_imagenette(folder: Path, per_class=(3, 2), drop_class=None) -> Path:
    """A .tgz in the Imagenette layout: each class's JPEGs are one solid colour."""
    from PIL import Image

    root = folder / "imagenette2-160"
    for split, n in zip(("train", "val"), per_class):
        for label, wnid in enumerate(data.IMAGENETTE_WNIDS):
            if wnid == drop_class:
                continue
            (root / split / wnid).mkdir(parents=True)
            for k in range(n):
                size = (200, 160) if k % 2 == 0 else (160, 240)
                Image.new("RGB", size, (label * 25, 255 - label * 25, 100)).save(
                    root / split / wnid / f"{wnid}_{k}.JPEG", quality=95
                )
    archive = folder / "imagenette2-160.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="imagenette2-160")
    shutil.rmtree(root)
    return archive


def _check_colours(x, y):
    expected = np.stack([y * 25, 255 - y * 25, np.full_like(y, 100)], axis=1).astype(float)
    np.testing.assert_allclose(x.reshape(len(x), -1, 3).mean(axis=1), expected, atol=4)


def test_imagenette_download_extract_and_cache(offline_env, tmp_path, monkeypatch, capfd):
    site = tmp_path / "site"
    site.mkdir()
    archive = _tiny_imagenette(site)
    monkeypatch.setattr(data, "IMAGENETTE_HASH", hashlib.sha256(archive.read_bytes()).hexdigest())
    with serve(site) as url:
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"http://127.0.0.1:{_closed_port()}/ {url}/")
        (x_train, y_train), (x_val, y_val) = data.load_imagenette(size=32)
    assert x_train.shape == (30, 32, 32, 3) and x_val.shape == (20, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [3] * 10 and np.bincount(y_val).tolist() == [2] * 10
    _check_colours(x_train, y_train)
    _check_colours(x_val, y_val)
    assert sorted(p.name for p in offline_env.iterdir()) == ["imagenette2-160"]  # archive removed
    # Cached now: no download needed, and limit draws a stratified subset.
    (xl, yl), (xv, yv) = data.load_imagenette(download=False, size=16, limit=10)
    assert xl.shape == (10, 16, 16, 3) and np.bincount(yl).tolist() == [1] * 10
    assert capfd.readouterr() == ("", "")


def test_imagenette_wrong_checksum_or_layout_fails_cleanly(offline_env, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    archive = _tiny_imagenette(site, drop_class=data.IMAGENETTE_WNIDS[4])
    with serve(site) as url:
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"{url}/")
        with pytest.raises(data.DataError, match="checksum mismatch"):
            data.load_imagenette(size=16)
        assert not offline_env.exists() or list(offline_env.iterdir()) == []
        monkeypatch.setattr(data, "IMAGENETTE_HASH", hashlib.sha256(archive.read_bytes()).hexdigest())
        with pytest.raises(data.DataError, match=f"missing folder .*{data.IMAGENETTE_WNIDS[4]}"):
            data.load_imagenette(size=16)
    assert [p.name for p in offline_env.iterdir()] == []  # neither the archive nor a partial extraction
    with pytest.raises(data.DataError, match="download=False"):
        data.load_imagenette(download=False)


def test_imagenette_from_extracted_data_dir(tmp_path):
    archive = _tiny_imagenette(tmp_path, per_class=(1, 1))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    (x, y), (xv, yv) = data.load_imagenette(data_dir=tmp_path / "x", size=24)
    assert x.shape == (10, 24, 24, 3) and y.tolist() == list(range(10))
    (x2, _), _ = data.load_imagenette(data_dir=tmp_path / "x" / "imagenette2-160", size=24)
    np.testing.assert_array_equal(x, x2)
    with pytest.raises(data.DataError, match="no Imagenette"):
        data.load_imagenette(data_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="limit"):
        data.load_imagenette(data_dir=tmp_path / "x", limit=0)


def test_download_with_synthetic_files_needs_no_full_data(offline_env, tmp_path, monkeypatch, capfd):
    """The download path on made-up IDX files (runs where the full data is absent)."""
    import gzip

    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": (rng.random((60000, 28, 28)) < 0.01).astype(np.uint8) * 255,
        "train-labels-idx1-ubyte.gz": (np.arange(60000) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": np.zeros((10000, 28, 28), np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(10000) % 10).astype(np.uint8),
    }
    good, bad = tmp_path / "good" / "mnist", tmp_path / "bad" / "mnist"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    known = {}
    for f, a in arrays.items():
        blob = gzip.compress(encode_idx(a), compresslevel=1, mtime=0)
        (good / f).write_bytes(blob)
        (bad / f).write_bytes(blob[:-10] + b"0123456789")
        known[f] = (hashlib.sha256(blob).hexdigest(), len(blob))
    monkeypatch.setitem(data.CHECKSUMS, "mnist", known)
    with serve(tmp_path / "bad") as bad_url, serve(tmp_path / "good") as good_url:
        down = f"http://127.0.0.1:{_closed_port()}/{{dataset}}/"
        monkeypatch.setenv("DLCOURSE_MIRRORS", f"{down} {bad_url}/{{dataset}}/ {good_url}/{{dataset}}/")
        (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert capfd.readouterr() == ("", "")
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert _cache_listing(offline_env) == sorted(data.FILES)
