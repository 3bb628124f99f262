"""Build and grading pipeline of the Deep Learning Fundamentals course.

Two commands (see ``autograder/README.md``)::

    python -m autograder build [--check]
    python -m autograder grade ASSIGNMENT SUBMISSIONS --out OUT

The package never imports torch or tensorflow; it drives nbgrader.
"""

from __future__ import annotations

import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE_DIR = pathlib.Path(__file__).resolve().parent

__all__ = ["REPO_ROOT", "PACKAGE_DIR"]
