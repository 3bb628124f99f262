"""Wall time and peak memory of every solution notebook, per profile.

Each notebook ``solutions/NN_topic/NN_topic.ipynb`` (generated from ``source/``
by ``python -m autograder build``) is executed, in each chosen profile, the way
``python -m autograder verify`` runs a master: from a temporary copy of its
folder (nothing is written into the repository), in a kernel whose environment
and client come from ``autograder.execution`` (``notebook_env``,
``notebook_client``, ``execute_cells``). Recorded per (notebook, profile):

- ``wall_s``: wall seconds from starting the kernel to the last cell's end
  (kernel start-up, every cell); what a student waits for after Run All.
- ``kernel_peak_mb``: the kernel process's peak resident memory (the kernel's
  ``VmHWM``: an exact high-water mark, no sampling). The notebooks start no
  worker processes (every loader runs in the kernel), so this is the whole
  notebook's memory.
- ``stderr_cells``: how many cells wrote to stderr (must be 0; ``verify``
  refuses a master that writes there).
- ``over_budget``: which budgets were exceeded: time (``ci`` 60 s,
  ``default`` 300 s; ``full`` has none) and memory (3000 MB), the budgets
  ``verify`` checks.

Each run gets a fresh, empty experiment cache (``DLCOURSE_CACHE`` in the
temporary folder), so the numbers are a student's first run; ``--warm-cache``
keeps the user's cache instead. ``--save-executed DIR`` keeps each executed
notebook (``DIR/NN_topic.<profile>.ipynb``), to read its prose against what
it printed. MB here means 10**6 bytes. Results are merged into
``benchmarks/results/notebooks.csv``: a row for the same (notebook, profile)
is replaced, other rows are kept. A markdown table of the rows measured in this
run is printed (``--markdown`` prints the whole CSV's table).

Usage (execute notebooks one at a time, holding the CPU lock)::

    flock /tmp/dlcourse-cpu.lock python benchmarks/notebook_times.py --profiles ci default
    flock /tmp/dlcourse-cpu.lock python benchmarks/notebook_times.py --profiles ci --only 00 02_dropout
    python benchmarks/notebook_times.py --markdown       # table of the recorded CSV, runs nothing
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_SOLUTIONS = os.path.join(REPO, "solutions")
DEFAULT_OUT = os.path.join(HERE, "results", "notebooks.csv")
PROFILES = ("ci", "default", "full")
sys.path.insert(0, REPO)
from autograder.execution import CellFailed, execute_cells, notebook_client, notebook_env  # noqa: E402
from autograder.verify import MEMORY_BUDGET_MB, TIME_BUDGET_S  # noqa: E402  (the budgets `verify` checks)
FIELDS = ["notebook", "profile", "status", "wall_s", "kernel_peak_mb", "stderr_cells", "time_budget_s",
          "over_budget", "date_utc", "load_avg_before", "error"]


# ------------------------------------------------------------------ running one notebook

def run_notebook(path: str, profile: str, *, timeout: float, warm_cache: bool = False,
                 save_executed: str | None = None) -> dict:
    """Execute one notebook in ``profile``; return its CSV row."""
    name = os.path.splitext(os.path.basename(path))[0]
    budget = TIME_BUDGET_S[profile]
    row = {"notebook": name, "profile": profile, "time_budget_s": "" if budget is None else budget,
           "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
           "load_avg_before": " ".join(f"{v:.2f}" for v in os.getloadavg()), "error": "",
           "kernel_peak_mb": "", "stderr_cells": ""}
    base = dict(os.environ)
    shared = os.path.join(os.path.dirname(REPO), "shared", "data")  # the checkout's ../shared/data
    if "DLCOURSE_DATA" not in base and os.path.isdir(shared):
        base["DLCOURSE_DATA"] = shared
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix=f"nbtime_{name}_") as tmp:
        # Cold experiment cache unless asked: what a student's first run costs (a cached
        # re-run skips the training and would hide it).
        env = notebook_env(profile, base=base,
                           cache_dir=None if warm_cache else os.path.join(tmp, "experiment-cache"))
        work = os.path.join(tmp, "nb")
        shutil.copytree(os.path.dirname(os.path.abspath(path)), work)
        client = notebook_client(nb, work, tmp, timeout=int(timeout))
        start = time.perf_counter()
        try:
            with client.setup_kernel(env=env):
                try:
                    run = execute_cells(client, nb)
                    row["status"] = "ok"
                    row["kernel_peak_mb"] = "" if run.kernel_peak_mb is None else round(run.kernel_peak_mb, 1)
                    row["stderr_cells"] = len(run.stderr_cells)
                except CellFailed as failed:
                    row["status"] = "timeout" if failed.timed_out else "error"
                    row["error"] = f"cell {failed.index}: {failed.summary}"[:300]
        except Exception as exc:   # the kernel did not start or died
            row["status"], row["error"] = "error", f"kernel: {exc}"[:300]
        row["wall_s"] = round(time.perf_counter() - start, 1)
    if save_executed:
        os.makedirs(save_executed, exist_ok=True)
        nbformat.write(nb, os.path.join(save_executed, f"{name}.{profile}.ipynb"))
    row["over_budget"] = over_budget(row)
    return row


def check_dlcourse_install() -> None:
    """The kernels must import this checkout's dlcourse (``pip install -e .``).

    Otherwise every notebook's setup cell tries to pip-install the course from
    GitHub, fails offline after a few seconds, and the sweep records errors.
    """
    probe = subprocess.run([sys.executable, "-c", "import dlcourse; print(dlcourse.__file__)"],
                           cwd=tempfile.gettempdir(), capture_output=True, text=True)
    where = probe.stdout.strip()
    expected = os.path.join(REPO, "dlcourse")
    if probe.returncode != 0 or os.path.realpath(os.path.dirname(where)) != os.path.realpath(expected):
        found = where or probe.stderr.strip().splitlines()[-1:]
        raise SystemExit(f"the notebooks' kernels would not import this checkout's dlcourse (found: {found}); "
                         f"run `pip install -e {REPO}` first")


def over_budget(row: dict) -> str:
    flags = []
    budget = row.get("time_budget_s")
    if budget not in ("", None) and float(row["wall_s"]) > float(budget):
        flags.append(f"time>{float(budget):.0f}s")
    peak = row.get("kernel_peak_mb")
    if peak not in ("", None) and float(peak) > MEMORY_BUDGET_MB:
        flags.append(f"memory>{MEMORY_BUDGET_MB:.0f}MB")
    return " ".join(flags)


# ------------------------------------------------------------------ discovery, CSV, table

def find_notebooks(solutions_dir: str, only=None) -> list[str]:
    if not os.path.isdir(solutions_dir):
        raise SystemExit(f"no solutions folder at {solutions_dir}: run `python -m autograder build` first")
    found = []
    for topic in sorted(os.listdir(solutions_dir)):
        path = os.path.join(solutions_dir, topic, f"{topic}.ipynb")
        if os.path.isfile(path):
            found.append(path)
    if only:
        names = [os.path.basename(os.path.dirname(p)) for p in found]
        unknown = [o for o in only if not any(n == o or n.startswith(o) for n in names)]
        if unknown:
            raise SystemExit(f"--only: no notebook matches {unknown}; available: {', '.join(names)}")
        found = [p for p, n in zip(found, names) if any(n == o or n.startswith(o) for o in only)]
    if not found:
        raise SystemExit(f"no notebooks found under {solutions_dir} (expected NN_topic/NN_topic.ipynb)")
    return found


def read_csv(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    rows = {(r["notebook"], r["profile"]): r for r in old}
    rows.update({(r["notebook"], r["profile"]): r for r in new})
    order = {p: i for i, p in enumerate(PROFILES)}
    return sorted(rows.values(), key=lambda r: (r["notebook"], order.get(r["profile"], 99)))


def write_csv(path: str, rows: list[dict]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| notebook | profile | status | wall s | kernel peak MB | cells with stderr | over budget | measured (UTC) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        flag = f"**{r['over_budget']}**" if r.get("over_budget") else "no"
        status = r["status"] if r["status"] == "ok" else f"**{r['status']}**: {r.get('error', '')}"
        lines.append(f"| {r['notebook']} | {r['profile']} | {status} | {r['wall_s']} | {r.get('kernel_peak_mb', '')} | "
                     f"{r.get('stderr_cells', '')} | {flag} | {r['date_utc']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["ci"], metavar="PROFILE",
                        help=f"profiles to run, from {', '.join(PROFILES)} (default: ci)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="notebooks to run: folder names or prefixes (00, 02_dropout); default all")
    parser.add_argument("--solutions-dir", default=DEFAULT_SOLUTIONS)
    parser.add_argument("--out", default=DEFAULT_OUT, help="CSV to merge the rows into (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=1200.0,
                        help="seconds one cell may run before the notebook is stopped (default: %(default)s)")
    parser.add_argument("--save-executed", metavar="DIR",
                        help="also write each executed notebook to DIR/NN_topic.<profile>.ipynb")
    parser.add_argument("--markdown", action="store_true", help="print the table of --out and exit")
    parser.add_argument("--warm-cache", action="store_true",
                        help="keep the user's experiment cache (default: a fresh, empty DLCOURSE_CACHE per run)")
    args = parser.parse_args(argv)

    if args.markdown:
        print(markdown_table(read_csv(args.out)))
        return 0
    bad = [p for p in args.profiles if p not in PROFILES]
    if bad:
        parser.error(f"unknown profile(s) {bad}: choose from {', '.join(PROFILES)}")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")

    notebooks = find_notebooks(args.solutions_dir, args.only)
    check_dlcourse_install()
    measured = []
    for profile in args.profiles:
        for path in notebooks:
            print(f"{os.path.basename(path)} [{profile}] ...", end=" ", flush=True)
            row = run_notebook(path, profile, timeout=args.timeout, warm_cache=args.warm_cache,
                               save_executed=args.save_executed)
            print(f"{row['status']}, {row['wall_s']} s, kernel peak {row['kernel_peak_mb']} MB"
                  + (f", OVER BUDGET: {row['over_budget']}" if row["over_budget"] else ""), flush=True)
            measured.append(row)
            write_csv(args.out, merge(read_csv(args.out), [row]))   # keep what is done if interrupted
    print(markdown_table(measured))
    print(f"wrote {args.out}")
    return 1 if any(r["status"] != "ok" for r in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
