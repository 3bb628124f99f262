"""``pytest --nbval-lax`` from the repository root never collects the hostile fixture notebooks."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_fixture_notebooks_are_not_collected():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--nbval-lax", "tests/fixtures"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    # Exit 5: nothing collected; no collection error, no fixture notebook listed.
    assert proc.returncode == 5, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert ".ipynb" not in proc.stdout
