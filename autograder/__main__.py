"""Command line: ``python -m autograder build [--check]``, ``grade ...``, ``export OUT``, ``report OUT``,
``python -m autograder verify NN_topic`` (authors: everything a notebook must satisfy),
``python -m autograder seed-sweep ...`` (maintainers: hidden tests under many grading seeds) and
``python -m autograder release DEST [--force]`` (the public student repository)."""

from __future__ import annotations

import argparse
import pathlib
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder",
                                     description="Build the course notebooks and grade submissions.")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="regenerate notebooks/ and solutions/ (and the masters' badge/setup cells) from source/")
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 and list what is stale")

    g = sub.add_parser("grade", help="grade a folder or zip of STUDENT_ID/NOTEBOOK.ipynb submissions")
    g.add_argument("assignment", help="the assignment, e.g. 00_getting_started (a folder of source/)")
    g.add_argument("submissions", type=pathlib.Path, help="folder of STUDENT_ID/NOTEBOOK.ipynb, or a .zip of one")
    g.add_argument("--out", type=pathlib.Path, required=True, help="output folder (grades.csv, breakdown.csv, feedback/, grading.log)")
    g.add_argument("--source", type=pathlib.Path, default=None, help="folder of masters (default: the repository's source/)")
    g.add_argument("--no-sandbox", action="store_true", help="run student kernels without bubblewrap (trusted submissions only)")
    g.add_argument("--timeout", type=int, default=None, help="seconds per cell before it is interrupted (default 120)")
    g.add_argument("--memory", type=int, default=None, help="address-space limit of a student kernel in MB (default 6144)")
    g.add_argument("--cpu", type=int, default=None, help="CPU seconds for a student's whole kernel (default 900)")
    g.add_argument("--max-notebook-mb", type=int, default=None,
                   help="largest notebook read, in MB (a file, or a zip member uncompressed; default 50)")
    g.add_argument("--max-total-mb", type=int, default=None,
                   help="all notebooks of a zip together, uncompressed, in MB (default 2048)")
    g.add_argument("--secret", type=pathlib.Path, default=None,
                   help="file holding the course secret that seeds hidden tests (default: OUT/course-secret, created once)")
    g.add_argument("--student", action="append", default=None, metavar="ID",
                   help="grade only this student (repeatable); everyone else in OUT keeps their grades")
    g.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="students graded at the same time (default: one per CPU core; 1: one after another)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on the workers of this Dask scheduler, e.g. tcp://10.0.0.5:8786 (needs the "
                        "[cluster] extra; OUT on a file system the workers share)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar on the terminal")

    e = sub.add_parser("export", help="rewrite OUT/grades.csv and OUT/breakdown.csv from the gradebook "
                                      "(grades entered by hand in the Formgrader included)")
    e.add_argument("out", type=pathlib.Path, help="the --out folder of a grade run")

    rp = sub.add_parser("report", help="write OUT/report.html, the class report of a graded batch")
    rp.add_argument("out", type=pathlib.Path, help="the --out folder of a grade run")

    s = sub.add_parser("seed-sweep", aliases=["seeds"], help="re-run every hidden test of a master under many grading seeds (finds flaky tests)")
    s.add_argument("assignments", nargs="+", help="assignments, e.g. 09_data_augmentation or 09 (folders of source/)")
    s.add_argument("--seeds", type=int, default=100, help="how many grading seeds (default 100)")
    s.add_argument("--first-seed", type=int, default=0, help="first seed of the window (default 0)")
    s.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    s.add_argument("--source", type=pathlib.Path, default=None, help="folder of masters (default: the repository's source/)")
    s.add_argument("--json", type=pathlib.Path, default=None, help="also write the per-cell results as JSON here")

    v = sub.add_parser("verify", help="check a notebook as CI does: in sync, the master runs cleanly and silently, "
                                      "its tests pass under many grading seeds, the stubs fail them, within budget")
    v.add_argument("topics", nargs="+", help="notebooks, e.g. 03_weight_penalties or 03 (folders of source/)")
    v.add_argument("--seeds", type=int, default=20, help="grading seeds to re-run the graded tests under (default 20)")
    v.add_argument("--first-seed", type=int, default=10_000, help="first seed of the window (default 10000)")
    v.add_argument("--profile", choices=("ci", "default", "full"), default="ci", help="DLCOURSE_PROFILE (default ci)")
    v.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    v.add_argument("--source", type=pathlib.Path, default=None, help="folder of masters (default: the repository's source/)")

    r = sub.add_parser("release", help="write the public student repository (notebooks, dlcourse, README, ...) into DEST")
    r.add_argument("dest", type=pathlib.Path, help="folder outside this repository, e.g. a clone of the public repository")
    r.add_argument("--force", action="store_true", help="write into a non-empty DEST, overwriting the released files")

    args = parser.parse_args(argv)
    if args.command == "release":
        from .release import ReleaseError, release
        try:
            written = release(args.dest, force=args.force)
        except ReleaseError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"released {len(written)} files into {args.dest}; commit them to the public repository")
        return 0
    if args.command == "verify":
        from .build import REPO_ROOT
        from .verify import main as verify_main
        if args.seeds < 0:
            print(f"error: --seeds must be 0 or more, got {args.seeds}", file=sys.stderr)
            return 2
        return verify_main(args.topics, seeds=args.seeds, first_seed=args.first_seed, profile=args.profile,
                           timeout=args.timeout, source_dir=args.source or REPO_ROOT / "source")
    if args.command in ("seed-sweep", "seeds"):
        from .build import REPO_ROOT
        from .seed_sweep import main as seeds_main
        return seeds_main(args.assignments, seeds=args.seeds, first_seed=args.first_seed, timeout=args.timeout,
                          source_dir=args.source or REPO_ROOT / "source", json_out=args.json)
    if args.command == "build":
        from .build import BuildError, build
        try:
            return build(check=args.check)
        except BuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command in ("report", "export"):
        from .errors import GradeError
        try:
            if args.command == "report":
                from .report import write_report
                print(f"wrote {write_report(args.out)}")
            else:
                from .grade import export_results
                rows = export_results(args.out)
                print(f"wrote {args.out / 'grades.csv'} and {args.out / 'breakdown.csv'} ({len(rows)} rows)")
        except GradeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    from .grade import GradeError, GradeOptions, grade
    opts = GradeOptions(sandbox=not args.no_sandbox)
    if args.timeout is not None:
        opts.timeout = args.timeout
    if args.memory is not None:
        opts.memory_mb = args.memory
    if args.cpu is not None:
        opts.cpu_seconds = args.cpu
    if args.max_notebook_mb is not None:
        opts.max_notebook_mb = args.max_notebook_mb
    if args.max_total_mb is not None:
        opts.max_total_mb = args.max_total_mb
    if args.jobs is not None:
        if args.jobs < 1:
            print(f"error: --jobs {args.jobs}: give at least 1", file=sys.stderr)
            return 2
        opts.jobs = args.jobs
    opts.scheduler = args.scheduler
    if args.no_progress:
        opts.progress = False
    try:
        return grade(args.assignment, args.submissions, args.out, source_dir=args.source,
                     secret_file=args.secret, options=opts, students=args.student)
    except GradeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
