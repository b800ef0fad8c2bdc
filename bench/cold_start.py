"""Cold start of the neural core: a first completion with an empty Numba cache, against another checkout, alternating.

    .venv/bin/python bench/cold_start.py [--ref /path/to/other/checkout/.venv/bin/python] [--repeats 3]

Each run is a fresh ``sparkls complete examples/demo/inventory.py:37:25`` (load the model, compile the kernels,
complete) with its own empty ``NUMBA_CACHE_DIR``, then the same command again with that cache filled (the warm
start). Figures are the child's CPU seconds (user + system, all its threads, from ``getrusage(RUSAGE_CHILDREN)``)
and wall seconds. With ``--ref`` the other checkout's interpreter (a venv with that checkout installed) runs the
same commands, its runs alternating with this tree's, so a busy host slows both alike; medians and the ratios
of medians are printed. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
POSITION = "examples/demo/inventory.py:37:25"
MAIN = "import sys; from sparkls.server.cli import main; sys.exit(main())"


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def complete(python: str, cache: str) -> dict:
    """One ``sparkls complete`` in a fresh process with ``cache`` as Numba's cache: CPU and wall seconds, output."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    cpu, wall = child_cpu(), time.perf_counter()
    out = subprocess.run([python, "-c", MAIN, "complete", "--engine", "neural", POSITION], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    r = {"cpu_s": child_cpu() - cpu, "wall_s": time.perf_counter() - wall, "text": out.stdout.strip()}
    if out.returncode not in (0, 1):  # 1: an empty completion
        raise RuntimeError(f"{python} failed: {out.stderr[-2000:]}")
    return r


def start(python: str) -> dict:
    """Cold, then warm, start of one tree."""
    with tempfile.TemporaryDirectory(prefix="sparkls-cold-") as cache:
        cold = complete(python, cache)
        warm = complete(python, cache)
    return {"cold_cpu_s": cold["cpu_s"], "cold_wall_s": cold["wall_s"], "warm_cpu_s": warm["cpu_s"],
            "warm_wall_s": warm["wall_s"], "text": cold["text"], "same": cold["text"] == warm["text"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", help="python of another checkout's venv, run alternately as the reference")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="end with one line of JSON holding the medians")
    args = ap.parse_args()
    trees = {"this tree": sys.executable, **({"reference": args.ref} if args.ref else {})}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for i in range(args.repeats):
        for name, python in (trees.items() if i % 2 == 0 else reversed(trees.items())):
            r = start(python)
            runs[name].append(r)
            print(f"  {name:9s} run {i + 1}: cold {r['cold_cpu_s']:5.1f} CPU s / {r['cold_wall_s']:5.1f} s wall, "
                  f"warm {r['warm_cpu_s']:4.1f} CPU s / {r['warm_wall_s']:4.1f} s wall; completion {r['text'][:40]!r}"
                  f"{'' if r['same'] else ' (differs warm)'}", flush=True)
    keys = ("cold_cpu_s", "cold_wall_s", "warm_cpu_s", "warm_wall_s")
    med = {name: {k: float(np.median([r[k] for r in rs])) for k in keys} for name, rs in runs.items()}
    print(f"\n`sparkls complete {POSITION}` (load + compile + first completion), medians of {args.repeats}"
          f"{' alternating runs' if args.ref else ''}:")
    for name, m in med.items():
        print(f"  {name:9s} cold {m['cold_cpu_s']:5.1f} CPU s, {m['cold_wall_s']:5.1f} s wall; "
              f"warm {m['warm_cpu_s']:4.1f} CPU s, {m['warm_wall_s']:4.1f} s wall")
    if args.ref:
        a, b = med["this tree"], med["reference"]
        print("  this tree / reference: " + ", ".join(f"{k} x{a[k] / b[k]:.2f}" for k in keys))
    if args.json:
        print(json.dumps(med))


if __name__ == "__main__":
    main()
