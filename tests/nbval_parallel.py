"""Run nbval on many notebooks in parallel worker processes (``make nbval``, ``make nbval-portable``).

nbval re-executes a notebook in one kernel, so a run over all chapters is a sequence of
single-kernel jobs that leave the other cores idle. This runner starts ``--jobs`` pytest
processes at a time, one notebook each, heaviest first (the order given on the command line),
and gives every process ``--threads`` (default ``cores // jobs``) threads (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``) so
that the jobs do not oversubscribe the machine. The chapters' checked cells print the same
on any thread count (issue: portable nbval checks), so splitting the cores changes nothing
they check.

Usage::

    python tests/nbval_parallel.py --jobs 2 -- notebooks/42_x.ipynb notebooks/12_y.ipynb ...
    python tests/nbval_parallel.py --jobs 2 --pytest-args "--nbval-lax ..." -- NOTEBOOKS

Each notebook's pytest output is printed in full when it fails and summarised in one line
when it passes; the exit status is 0 only if every notebook passed. Ctrl-C stops every job.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs must be a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be a positive integer, got {text!r}")
    return value


def _threads_per_job(jobs: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // jobs)


def _run_one(notebook: str, pytest_args: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *pytest_args, notebook], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode, proc.stdout, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=_positive_int, default=2,
                        help="notebooks checked at the same time (default 2)")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="threads per job (default: cores // jobs, at least 1)")
    parser.add_argument("--pytest-args", default="",
                        help="arguments for each pytest run (one quoted string)")
    parser.add_argument("notebooks", nargs="+", help="notebooks, heaviest first")
    args = parser.parse_args(argv)
    missing = [nb for nb in args.notebooks if not Path(nb).is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if len(set(args.notebooks)) != len(args.notebooks):
        parser.error("a notebook is listed twice")
    pytest_args = shlex.split(args.pytest_args)
    env = dict(os.environ)
    threads = str(args.threads or _threads_per_job(args.jobs))
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    print(f"nbval: {len(args.notebooks)} notebooks, {args.jobs} at a time, "
          f"{env['OMP_NUM_THREADS']} thread(s) each", flush=True)
    failed = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_run_one, nb, pytest_args, env): nb for nb in args.notebooks}
        try:
            for future in as_completed(futures):
                notebook = futures[future]
                code, output, seconds = future.result()
                last = output.strip().splitlines()[-1] if output.strip() else ""
                status = "ok" if code == 0 else f"FAILED (exit {code})"
                print(f"  {notebook}: {status} in {seconds:.0f} s  [{last}]", flush=True)
                if code != 0:
                    failed.append(notebook)
                    print(output, flush=True)
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            raise
    if failed:
        print(f"nbval failed on {len(failed)} notebook(s): {' '.join(failed)}", flush=True)
        return 1
    print("nbval: every notebook passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
