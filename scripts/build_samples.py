#!/usr/bin/env python
"""Build the offline samples bundled in dlcourse/samples/ from the full IDX files.

For each of MNIST and Fashion-MNIST: 10,000 training and 2,000 test images,
stratified by class (each class in proportion to its frequency in the full
split, largest-remainder rounding), drawn with a fixed seed, kept in their
original order. Written as IDX re-encoded with xz (the smallest of gzip -9,
bzip2 -9 and xz -9e on these images), together with the original indices,
and MANIFEST.json with every file's SHA-256. Deterministic: running it twice
gives identical bytes (``--check`` verifies that the committed files match).

    python scripts/build_samples.py [--data-dir /path/with/mnist-and-fashion-mnist] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlcourse import data  # noqa: E402
from dlcourse.idx import encode_idx  # noqa: E402

OUT = ROOT / "dlcourse" / "samples"
SIZES = {"train": 10_000, "test": 2_000}
SEED = 20171
XZ_PRESET = 9 | lzma.PRESET_EXTREME


def build(data_dir: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    manifest = {
        "description": "Stratified samples of MNIST and Fashion-MNIST built by scripts/build_samples.py; "
        "IDX files compressed with xz. indices = positions in the original training/test files.",
        "seed": SEED,
        "datasets": {},
    }
    for d, name in enumerate(data.DATASETS):
        (x_train, y_train), (x_test, y_test) = data.load_dataset(name, data_dir=data_dir)
        entry = {"source_sha256": {f: data.CHECKSUMS[name][f][0] for f in data.FILES}}
        for s, (split, x, y) in enumerate((("train", x_train, y_train), ("test", x_test, y_test))):
            rng = np.random.default_rng([SEED, d, s])
            idx = data.pick_indices(y, SIZES[split], rng, stratify=True)
            entry[split] = {"count": len(idx)}
            for kind, array in (("images", x[idx]), ("labels", y[idx]), ("indices", idx.astype(np.int32))):
                filename = f"{name}-{split}-{kind}.idx.xz"
                blob = lzma.compress(encode_idx(array), format=lzma.FORMAT_XZ, preset=XZ_PRESET)
                files[filename] = blob
                entry[split][kind] = {"file": filename, "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
            entry[split]["class_counts"] = np.bincount(y[idx], minlength=10).tolist()
        manifest["datasets"][name] = entry
    manifest["total_bytes"] = sum(len(b) for b in files.values())
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DLCOURSE_DATA") or ROOT.parent / "shared" / "data")
    parser.add_argument("--check", action="store_true", help="only verify that the committed files match a fresh build")
    args = parser.parse_args()
    files = build(Path(args.data_dir))
    if args.check:
        stale = [f for f, b in files.items() if not (OUT / f).is_file() or (OUT / f).read_bytes() != b]
        if stale:
            print("stale or missing sample files:", ", ".join(stale))
            return 1
        print("sample files are up to date")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for filename, blob in files.items():
        (OUT / filename).write_bytes(blob)
        print(f"{filename:40s} {len(blob):>10,d} bytes")
    total = sum(len(b) for f, b in files.items())
    print(f"{'total':40s} {total:>10,d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
