"""One command for authors: ``python -m autograder verify NN_topic``.

Everything a notebook must satisfy before students get it, in one run:

1. the student and solution versions are in sync with the master (``build --check``, this topic);
2. the master runs top to bottom in the profile (``ci`` by default): no cell raises, no cell
   writes to stderr; its wall time and the kernel's peak memory are measured;
3. in the same kernel, every graded test cell passes under ``--seeds`` more grading seeds (the
   hidden tests' inputs drawn for that many students);
4. every graded test cell fails on the student version (nbgrader's ``Validator(invert=True)``):
   the stubs test something;
5. the time and memory are within the profile's budget (``ci`` 60 s, ``default`` 300 s,
   3000 MB): reported, and a failure of the command, but not of the test suite, which runs on a
   loaded machine (budgets are measured with ``benchmarks/notebook_times.py``).

``tests/test_notebooks.py`` runs steps 2–4 for every notebook; the solution's nbval run stays
there.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import tempfile
import time

from .execution import NotebookRun
from .seed_sweep import CellReport, run_and_sweep

TIME_BUDGET_S = {"ci": 60.0, "default": 300.0, "full": None}
MEMORY_BUDGET_MB = 3000.0


@dataclasses.dataclass
class Verification:
    topic: str
    profile: str
    seeds: int
    stale: list[str] = dataclasses.field(default_factory=list)        # generated files out of date
    master: NotebookRun | None = None                                   # the master's first, ordinary run
    master_error: str = ""                                              # the first cell that raised
    sweep: list[CellReport] = dataclasses.field(default_factory=list)
    stub_passed: list[str] = dataclasses.field(default_factory=list)  # test cells that pass on the stubs
    stub_error: str = ""
    stub_seconds: float = 0.0

    def correctness_problems(self) -> list[str]:
        """What is wrong with the notebook itself, whatever the machine's load."""
        problems = [f"stale: {path} (run `python -m autograder build`)" for path in self.stale]
        if self.master_error:
            problems.append(f"the master fails: {self.master_error}")
        if self.master is not None:
            problems += [f"the master writes to stderr in cell {i}: {text.strip()[:200]!r}"
                         for i, text in self.master.stderr_cells]
        problems += [f"{r.grade_id} fails a correct solution for grading seeds {r.failed_seeds[:10]} "
                     f"({r.first_error}); reproduce with `python -m autograder seed-sweep {self.topic} "
                     f"--first-seed {r.failed_seeds[0]} --seeds 1`" for r in self.sweep if r.failures]
        if self.stub_error:
            problems.append(f"the student version could not be checked: {self.stub_error}")
        problems += [f"a test cell passes on the unsolved stubs (it tests nothing):\n{source}"
                     for source in self.stub_passed]
        return problems

    def budget_problems(self) -> list[str]:
        if self.master is None:
            return []
        problems = []
        budget = TIME_BUDGET_S.get(self.profile)
        if budget is not None and self.master.seconds > budget:
            problems.append(f"the master took {self.master.seconds:.0f} s in {self.profile}, over the "
                            f"{budget:.0f} s budget")
        if self.master.kernel_peak_mb is not None and self.master.kernel_peak_mb > MEMORY_BUDGET_MB:
            problems.append(f"the kernel's peak memory was {self.master.kernel_peak_mb:.0f} MB, over the "
                            f"{MEMORY_BUDGET_MB:.0f} MB budget")
        return problems

    def summary(self) -> str:
        lines = [f"{self.topic} ({self.profile} profile)"]
        if self.master is not None:
            peak = "?" if self.master.kernel_peak_mb is None else f"{self.master.kernel_peak_mb:.0f} MB"
            lines.append(f"  master: ran in {self.master.seconds:.1f} s, kernel peak {peak}, "
                         f"{len(self.master.stderr_cells)} cells wrote to stderr")
        runs = sum(r.runs for r in self.sweep)
        lines.append(f"  grading seeds: {self.seeds} x {len(self.sweep)} graded cells = {runs} runs, "
                     f"{sum(r.failures for r in self.sweep)} failed")
        lines.append(f"  student version: {len(self.stub_passed)} graded test cells pass on the stubs "
                     f"({self.stub_seconds:.1f} s)")
        problems = self.correctness_problems() + self.budget_problems()
        lines += [f"  PROBLEM: {p}" for p in problems] or ["  ok"]
        return "\n".join(lines)


def stale_files(topic: str, root: pathlib.Path) -> list[str]:
    from .build import plan, stale

    mine = [f for f in plan(root, source_dir=root / "source", out_root=root) if f.path.parent.name == topic]
    return [str(path.relative_to(root)) for path in stale(mine)]


def check_stubs(student: pathlib.Path, env: dict, timeout: int) -> tuple[list[str], str]:
    """Sources (first 300 characters) of the graded test cells that pass on the student version,
    and an error if the version could not be checked."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    from .execution import environment

    config = Config()
    config.Execute.timeout = timeout
    config.Validator.invert = True
    with environment(env):
        results = Validator(config=config).validate(str(student))
    if "type_changed" in results or "changed" in results:
        return [], f"nbgrader reports changed cells: {sorted(k for k in results if 'changed' in k)}"
    return [item["source"][:300] for item in results.get("passed", [])], ""


def verify(topic: str, *, root: pathlib.Path | None = None, seeds: int = 20, first_seed: int = 10_000,
           profile: str = "ci", timeout: int = 300, log=print) -> Verification:
    from .build import REPO_ROOT
    from .execution import notebook_env

    root = root or REPO_ROOT
    master = root / "source" / topic / f"{topic}.ipynb"
    if not master.is_file():
        raise ValueError(f"no master {master.relative_to(root)}: give a folder of source/, e.g. 00_getting_started")
    result = Verification(topic, profile, seeds, stale=stale_files(topic, root))
    try:
        result.master, result.sweep = run_and_sweep(master, seeds, first_seed=first_seed, timeout=timeout,
                                                    profile=profile, log=log)
    except RuntimeError as error:
        result.master_error = str(error)
    student = root / "notebooks" / topic / f"{topic}.ipynb"
    if not student.is_file():
        result.stub_error = f"{student.relative_to(root)} is missing: run `python -m autograder build`"
        return result
    with tempfile.TemporaryDirectory(prefix="verify-") as cache:
        start = time.perf_counter()
        result.stub_passed, result.stub_error = check_stubs(student, notebook_env(profile, cache_dir=cache), timeout)
        result.stub_seconds = time.perf_counter() - start
    return result


def main(topics: list[str], *, seeds: int, first_seed: int, profile: str, timeout: int,
         source_dir: pathlib.Path) -> int:
    from .build import find_masters

    known = [p.parent.name for p in find_masters(source_dir)]
    chosen = []
    for name in topics:
        hits = [t for t in known if t == name or t.startswith(name)]
        if len(hits) != 1:
            print(f"error: {name!r} matches {len(hits)} notebooks; choose one of: {', '.join(known)}", file=sys.stderr)
            return 2
        chosen.append(hits[0])
    failed = False
    for topic in chosen:
        result = verify(topic, root=source_dir.parent, seeds=seeds, first_seed=first_seed, profile=profile,
                        timeout=timeout, log=lambda *a: None)
        print(result.summary(), flush=True)
        failed |= bool(result.correctness_problems() or result.budget_problems())
    return 1 if failed else 0
