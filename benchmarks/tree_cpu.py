#!/usr/bin/env python3
"""CPU seconds of a command's whole process tree, by kind of process.

    python benchmarks/tree_cpu.py OUT.json COMMAND [ARGS...]

Runs COMMAND and samples ``/proc`` every 0.1 s: every process below this one (the grading
process, its workers, bubblewrap and the sandboxed kernels, which the workers never reap
themselves and ``time`` therefore misses) is charged its last seen user + system time. Written
to OUT.json: seconds per kind (``kernel``: ipykernel processes; ``bwrap``; ``grader``: the rest)
and their total. CPU seconds, unlike wall seconds, hardly change with the machine's load, so two
versions can be compared on a busy machine. A process's last 0.1 s before it exits can be
missed (under 1 % for kernels that live several seconds).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, list[tuple[int, float, str]]]:
    """Children of every process: (pid, CPU seconds so far, start time)."""
    children: dict[int, list[tuple[int, float, str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        children.setdefault(int(fields[1]), []).append((int(entry), cpu, fields[19]))
    return children


def kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            command = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "grader"
    return "kernel" if "ipykernel" in command else "bwrap" if "bwrap" in command else "grader"


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    proc = subprocess.Popen(argv[2:])
    seen: dict[tuple[int, str], tuple[str, float]] = {}
    while proc.poll() is None:
        children = processes()
        stack = [os.getpid()]
        while stack:
            for pid, cpu, started in children.get(stack.pop(), []):
                key = (pid, started)
                label = seen[key][0] if key in seen else kind(pid)
                seen[key] = (label, max(cpu, seen.get(key, (label, 0.0))[1]))
                stack.append(pid)
        time.sleep(0.1)
    totals: dict[str, float] = {}
    for label, cpu in seen.values():
        totals[label] = totals.get(label, 0.0) + cpu
    result = {"cpu_s": {k: round(v, 1) for k, v in sorted(totals.items())},
              "total_cpu_s": round(sum(totals.values()), 1), "returncode": proc.returncode}
    with open(argv[1], "w") as fh:
        json.dump(result, fh)
    print(json.dumps(result))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
