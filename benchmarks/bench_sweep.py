"""Speed-up of a sweep on two Dask workers over one, on a real chapter.

The same spec (chapter 11 at a small scale, one grid point per seed) runs twice through
``python -m certlab.sweep``: on an embedded ``LocalCluster`` with one worker, then with two,
each into a fresh output folder, one thread per worker (``OMP_NUM_THREADS=1``). The baseline
is the one-worker run measured in the same invocation; the record holds both wall times, the
speed-up, and a check that both runs stored the same key numbers for every point (a sweep's
results do not depend on how many workers ran it).

Usage::

    .venv/bin/python benchmarks/bench_sweep.py [--points 4] [--out benchmarks/results]

Run it on an otherwise idle machine with at least two cores: the target is a speed-up of at
least 1.5 with two workers (each point is one kernel; start-up and the client's bookkeeping
are the serial part).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from certlab.benchmarking import save_record
from certlab.provenance import repo_root

CHAPTER = "notebooks/11_smoothing_certificate.py"
#: small enough that a point takes tens of seconds, large enough that the kernel's start-up is
#: not everything
PARAMETERS = {"toy_dim": 8, "imagenet_inputs": 20000, "imagenet_max_r": 7}


def spec_text(points: int) -> str:
    params = ", ".join(f"{k}: {v}" for k, v in PARAMETERS.items())
    return (f"chapter: {CHAPTER}\nparameters: {{{params}}}\n"
            f"grid: {{seed: [{', '.join(str(s) for s in range(points))}]}}\n")


def run_sweep(spec: Path, workers: int, out: Path) -> float:
    """Wall time (s) of ``certlab.sweep`` with ``workers`` workers into ``out``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "certlab.sweep", str(spec), "--workers",
                    str(workers), "--out", str(out), "--no-progress"], env=env, check=True,
                   cwd=repo_root(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def stored_values(out: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / "record.json").read_text())["values"]
            for p in sorted(out.iterdir()) if (p / "record.json").is_file()}


def _without_timings(values: dict) -> dict:
    return {k: v for k, v in values.items() if not k.endswith(("_ms", "_us"))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=4, help="grid points (seeds)")
    parser.add_argument("--out", default=None, help="record folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.points < 2:
        parser.error(f"--points must be at least 2, got {args.points}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="certlab-bench-sweep-") as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(spec_text(args.points))
        wall = {n: run_sweep(spec, n, Path(tmp) / f"out{n}") for n in (1, 2)}
        values = {n: stored_values(Path(tmp) / f"out{n}") for n in (1, 2)}
    same = (len(values[1]) == args.points
            and {k: _without_timings(v) for k, v in values[1].items()}
            == {k: _without_timings(v) for k, v in values[2].items()})
    speedup = wall[1] / wall[2]
    results = {"points": args.points, "one_worker_s": round(wall[1], 2),
               "two_workers_s": round(wall[2], 2), "speedup": round(speedup, 2),
               "same_key_numbers": same, "cpu_count": os.cpu_count()}
    print(f"{args.points} points: 1 worker {wall[1]:.1f} s, 2 workers {wall[2]:.1f} s "
          f"(speed-up {speedup:.2f}); same key numbers: {same}")
    save_record(
        "sweep",
        description=f"certlab.sweep of {CHAPTER} ({args.points} grid points) on a "
                    "LocalCluster with one worker (baseline) and with two workers.",
        target="speed-up >= 1.5 with two workers on two idle cores, identical key numbers",
        target_met=bool(speedup >= 1.5 and same), results=results,
        parameters={"chapter": CHAPTER, "chapter_parameters": PARAMETERS,
                    "points": args.points},
        wall_time_s=time.perf_counter() - start, argv=argv, directory=args.out,
        headline={"speed-up, 2 workers over 1": round(speedup, 2),
                  "wall time s, 1 / 2 workers": [round(wall[1], 1), round(wall[2], 1)],
                  "same key numbers": same})
    return results


if __name__ == "__main__":
    main()
