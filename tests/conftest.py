"""Session-wide test environment.

- DLCOURSE_DATA points at the full IDX files when ../shared/data exists (CI sets it too).
- Experiment results are cached in a fresh temporary folder, so no test reuses
  results from an earlier run.
- Matplotlib draws off-screen.
- The fixture notebooks (hostile submissions: infinite loops, kernel deaths, sandbox escapes,
  corrupt JSON) are never collected as tests, also under ``pytest --nbval-lax``: they are
  inputs of the grading tests, to be run only inside the sandbox.
"""

import os
import pathlib
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
collect_ignore_glob = ["fixtures/*"]
_SHARED_DATA = ROOT.parent / "shared" / "data"

if "DLCOURSE_DATA" not in os.environ and (_SHARED_DATA / "mnist").is_dir():
    os.environ["DLCOURSE_DATA"] = str(_SHARED_DATA)
os.environ.setdefault("DLCOURSE_CACHE", tempfile.mkdtemp(prefix="dlcourse-cache-"))
os.environ.setdefault("MPLBACKEND", "Agg")
