"""The status table of autograder/README.md lists exactly the statuses the grader can write."""

from __future__ import annotations

import pathlib
import re

from autograder.status import Status

README = pathlib.Path(__file__).resolve().parents[1] / "autograder" / "README.md"


def test_readme_status_table_matches_the_enum():
    text = README.read_text()
    table = text[text.index("`status` in `breakdown.csv`"):]
    table = table[: table.index("\n\n", table.index("| status |"))]
    documented = re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)
    assert sorted(documented) == sorted(s.value for s in Status)
    assert len(documented) == len(set(documented))
