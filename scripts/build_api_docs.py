#!/usr/bin/env python
"""Build the API reference (HTML) from the docstrings with pdoc; fail on any pdoc warning.

    python scripts/build_api_docs.py [OUT] [MODULE ...]    # `make docs`: OUT = docs/api

Without modules: ``dlcourse`` (its public submodules) and every ``autograder`` module. pdoc
reports what it cannot document (a name in ``__all__`` that does not exist, an annotation it
cannot resolve, a submodule that fails to import) as Python warnings; they are printed and the
exit status is 1, so the reference cannot silently lose a page. Importing the submodules loads
PyTorch and TensorFlow (seconds); their own log output is not a pdoc warning.
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]


def default_modules() -> list[str]:
    """``dlcourse`` and ``autograder`` with each autograder module (its ``__all__`` lists none);
    ``__main__`` is left out: importing it would run the command line."""
    names = sorted(p.stem for p in (ROOT / "autograder").glob("*.py") if not p.stem.startswith("__"))
    return ["dlcourse", "autograder", *(f"autograder.{name}" for name in names)]


def build(out: pathlib.Path, modules: list[str]) -> list[str]:
    """Write the HTML for ``modules`` into ``out``; return pdoc's warnings as text."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import pdoc  # imported here: only `make docs` and its test need it

    pdoc_dir = pathlib.Path(pdoc.__file__).parent
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules, output_directory=out)
    # Only pdoc's own warnings: deprecation notices that importing the frameworks raises are not
    # about these docstrings.
    return [f"{w.category.__name__}: {w.message}" for w in caught
            if pathlib.Path(w.filename).resolve().is_relative_to(pdoc_dir)]


def main(argv: list[str]) -> int:
    out = pathlib.Path(argv[0]) if argv else ROOT / "docs" / "api"
    modules = argv[1:] or default_modules()
    sys.path.insert(0, str(ROOT))
    problems = build(out, modules)
    for problem in problems:
        print(f"pdoc: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} pdoc warning(s): fix the docstrings or __all__ lists above", file=sys.stderr)
        return 1
    print(f"API reference: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
