"""Wall time and peak memory of every solution notebook, per profile.

Each notebook ``solutions/NN_topic/NN_topic.ipynb`` (generated from ``source/``
by ``python -m autograder build``) is executed, in each chosen profile, by

    DLCOURSE_PROFILE=<profile> /usr/bin/time -v jupyter nbconvert --to notebook \\
        --execute NN_topic.ipynb --output-dir <tmp>

in a subprocess, from a temporary copy of the notebook's folder (nothing is
written into the repository). Recorded per (notebook, profile):

- ``wall_s``: wall seconds of the whole subprocess (nbconvert start-up, kernel
  start, every cell, saving); what a student or CI waits for.
- ``peak_kernel_tree_mb``: peak of the *summed* resident set size of the
  kernel process and all its descendants (e.g. DataLoader workers), sampled
  from ``/proc`` every ``--sample-interval`` seconds (psutil is not installed
  here, so /proc is read directly; a spike shorter than the interval can be
  missed).
- ``max_rss_largest_process_mb``: GNU time's "Maximum resident set size". It
  comes from ``wait4``'s ``ru_maxrss`` over the reaped descendants, which is
  the peak of the *largest single process* in the tree (here: the kernel), not
  a sum; it never misses a spike but undercounts a multi-process kernel.
- ``over_budget``: which budgets were exceeded: time (``ci`` 60 s,
  ``default`` 300 s; ``full`` has none) and memory (3000 MB, checked on the
  larger of the two memory numbers).

Each run gets a fresh, empty experiment cache (``DLCOURSE_CACHE`` in the
temporary folder), so the numbers are a student's first run; ``--warm-cache``
keeps the user's cache instead. MB here means 10**6 bytes. Results are merged into
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
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_SOLUTIONS = os.path.join(REPO, "solutions")
DEFAULT_OUT = os.path.join(HERE, "results", "notebooks.csv")
PROFILES = ("ci", "default", "full")
sys.path.insert(0, REPO)
from autograder.verify import MEMORY_BUDGET_MB, TIME_BUDGET_S  # noqa: E402  (the budgets `verify` checks)
GNU_TIME = "/usr/bin/time"
FIELDS = ["notebook", "profile", "status", "wall_s", "peak_kernel_tree_mb", "max_rss_largest_process_mb",
          "time_budget_s", "over_budget", "date_utc", "load_avg_before", "error"]
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ /proc sampling

def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields follow the last ')'.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(root: int, children: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _is_kernel(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"ipykernel" in f.read()
    except OSError:
        return False


class KernelTreeSampler(threading.Thread):
    """Polls the process tree under ``root``; tracks the peak summed RSS of the kernel's subtree."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_bytes = 0
        self.kernel_pid: int | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            children = _children_map()
            if self.kernel_pid is None or not os.path.exists(f"/proc/{self.kernel_pid}"):
                self.kernel_pid = next((p for p in _descendants(self.root, children) if _is_kernel(p)), None)
            if self.kernel_pid is not None:
                total = sum(_rss_bytes(p) for p in _descendants(self.kernel_pid, children))
                self.peak_bytes = max(self.peak_bytes, total)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# ------------------------------------------------------------------ running one notebook

def parse_gnu_time(text: str) -> dict:
    out = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["max_rss_kb"] = int(m.group(1))
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        out["exit_status"] = int(m.group(1))
    return out


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.search(r"(Error|Exception|Timeout)\b", ln):
            return ln[:300]
    return lines[-1][:300] if lines else ""


def run_notebook(path: str, profile: str, *, timeout: float, sample_interval: float,
                 warm_cache: bool = False) -> dict:
    """Execute one notebook in ``profile``; return its CSV row."""
    name = os.path.splitext(os.path.basename(path))[0]
    budget = TIME_BUDGET_S[profile]
    row = {"notebook": name, "profile": profile, "time_budget_s": "" if budget is None else budget,
           "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
           "load_avg_before": " ".join(f"{v:.2f}" for v in os.getloadavg()), "error": ""}
    env = dict(os.environ, DLCOURSE_PROFILE=profile)
    shared = os.path.join(os.path.dirname(REPO), "shared", "data")  # the checkout's ../shared/data
    env.setdefault("DLCOURSE_DATA", shared if os.path.isdir(shared) else "")
    if not env["DLCOURSE_DATA"]:
        env.pop("DLCOURSE_DATA")
    with tempfile.TemporaryDirectory(prefix=f"nbtime_{name}_") as tmp:
        if not warm_cache:
            # Cold experiment cache: what a student's first run costs (a cached
            # re-run skips the training and would hide it).
            env["DLCOURSE_CACHE"] = os.path.join(tmp, "experiment-cache")
        work = os.path.join(tmp, "nb")
        shutil.copytree(os.path.dirname(os.path.abspath(path)), work)
        time_file = os.path.join(tmp, "time.txt")
        cmd = [GNU_TIME, "-v", "-o", time_file, sys.executable, "-m", "jupyter", "nbconvert",
               "--to", "notebook", "--execute", os.path.basename(path),
               "--output-dir", os.path.join(tmp, "out"), "--ExecutePreprocessor.timeout=-1"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        sampler = KernelTreeSampler(proc.pid, sample_interval)
        sampler.start()
        try:
            output, _ = proc.communicate(timeout=timeout)
            status = "ok" if proc.returncode == 0 else "error"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)   # our own session: nbconvert, the kernel and its children
            output, _ = proc.communicate()
            status = "timeout"
        wall = time.perf_counter() - start
        sampler.stop()
        gnu = parse_gnu_time(open(time_file).read()) if os.path.exists(time_file) else {}
    row["status"] = status
    row["wall_s"] = round(wall, 1)
    row["peak_kernel_tree_mb"] = round(sampler.peak_bytes / 1e6, 1) if sampler.peak_bytes else ""
    row["max_rss_largest_process_mb"] = round(gnu["max_rss_kb"] * 1024 / 1e6, 1) if "max_rss_kb" in gnu else ""
    if status == "error":
        row["error"] = _last_error_line(output)
    elif status == "timeout":
        row["error"] = f"killed after {timeout:.0f} s (--timeout)"
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
    mems = [float(row[k]) for k in ("peak_kernel_tree_mb", "max_rss_largest_process_mb") if row.get(k) not in ("", None)]
    if mems and max(mems) > MEMORY_BUDGET_MB:
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
    lines = ["| notebook | profile | status | wall s | peak kernel tree MB | max RSS largest process MB | over budget | measured (UTC) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        flag = f"**{r['over_budget']}**" if r.get("over_budget") else "no"
        status = r["status"] if r["status"] == "ok" else f"**{r['status']}**: {r.get('error', '')}"
        lines.append(f"| {r['notebook']} | {r['profile']} | {status} | {r['wall_s']} | {r['peak_kernel_tree_mb']} | "
                     f"{r['max_rss_largest_process_mb']} | {flag} | {r['date_utc']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["ci"], metavar="PROFILE",
                        help=f"profiles to run, from {', '.join(PROFILES)} (default: ci)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="notebooks to run: folder names or prefixes (00, 02_dropout); default all")
    parser.add_argument("--solutions-dir", default=DEFAULT_SOLUTIONS)
    parser.add_argument("--out", default=DEFAULT_OUT, help="CSV to merge the rows into (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds before a notebook is killed")
    parser.add_argument("--sample-interval", type=float, default=0.2, help="seconds between /proc samples")
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
    if args.timeout <= 0 or args.sample_interval <= 0:
        parser.error("--timeout and --sample-interval must be positive")
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"{GNU_TIME} (GNU time) is needed for the max-RSS column: apt-get install time")

    notebooks = find_notebooks(args.solutions_dir, args.only)
    check_dlcourse_install()
    measured = []
    for profile in args.profiles:
        for path in notebooks:
            print(f"{os.path.basename(path)} [{profile}] ...", end=" ", flush=True)
            row = run_notebook(path, profile, timeout=args.timeout, sample_interval=args.sample_interval,
                               warm_cache=args.warm_cache)
            print(f"{row['status']}, {row['wall_s']} s, kernel tree {row['peak_kernel_tree_mb']} MB"
                  + (f", OVER BUDGET: {row['over_budget']}" if row["over_budget"] else ""), flush=True)
            measured.append(row)
            write_csv(args.out, merge(read_csv(args.out), [row]))   # keep what is done if interrupted
    print(markdown_table(measured))
    print(f"wrote {args.out}")
    return 1 if any(r["status"] != "ok" for r in measured) else 0


if __name__ == "__main__":
    sys.exit(main())
