"""How long a fresh ``kefu`` process takes to answer, beside a bare Python process, in one run.

    .venv/bin/python bench/bench_startup.py [--n 5]

Times (median of ``n`` runs each, the index built once first, so every run is a cold process
over a built index): ``python -c pass`` (the floor), ``kefu check "您好"`` (goal <= 0.5 s) and
``kefu draft "能便宜点吗"`` (goal <= 2 s). Each kefu figure is also printed as a ratio to the floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GOALS = {"check": 0.5, "draft": 2.0}


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "KEFU_DATA_DIR": data}
        subprocess.run([str(BIN / "kefu"), "index"], env=env, check=True, stdout=subprocess.DEVNULL)
        runs = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "check": [str(BIN / "kefu"), "check", "您好"],
            "draft": [str(BIN / "kefu"), "draft", "能便宜点吗"],
        }
        medians = {}
        for name, cmd in runs.items():
            _timed(cmd, env)  # one warm-up: the OS file cache, not kefu's state
            medians[name] = statistics.median(_timed(cmd, env) for _ in range(args.n))
    floor = medians["python -c pass"]
    ok = True
    print(f"cold start, median of {args.n} runs (index built)")
    for name, seconds in medians.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"  goal <= {goal:g} s: {'met' if seconds <= goal else 'MISSED'}"
        ok = ok and (goal is None or seconds <= goal)
        print(f"  {name:<16} {seconds:6.2f} s   x{seconds / floor:5.1f} of bare python{verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
