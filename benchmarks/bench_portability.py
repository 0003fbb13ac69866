"""How much each chapter's key results vary between CPU kernels and thread counts.

Executes every chapter twice with ``python -m certlab.run`` (its default parameters, results
in a temporary folder; the paired notebooks are not touched):

* ``native``: the machine's own kernels and two threads (``OMP_NUM_THREADS=2``), as the
  notebooks are executed by ``make notebooks``;
* ``portable``: PyTorch's scalar kernels, MKL without AVX and one thread
  (``ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 OMP_NUM_THREADS=1``), the
  configuration of CI's second nbval run.

Each run writes its :class:`certlab.checks.KeyResults` record; the benchmark compares them:
exact results and claims must be identical (the target), and for every measured value it
records both values and their absolute difference: the spread the chapters quote.

Usage::

    .venv/bin/python benchmarks/bench_portability.py [--chapters 11 42] [--out DIR]
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
from certlab.checks import RECORD_ENV
from certlab.provenance import repo_root

CONFIGS = {
    "native": {"OMP_NUM_THREADS": "2"},
    "portable": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}


def run_chapter(chapter: Path, config: dict[str, str], workdir: Path) -> tuple[dict, float]:
    """Execute ``chapter`` under ``config``; return its key-results record and wall time."""
    record = workdir / f"{chapter.stem}-record.json"
    env = dict(os.environ, **config, **{RECORD_ENV: str(record)})
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "certlab.run", str(chapter), "--out",
                    str(workdir / chapter.stem)], env=env, check=True, cwd=repo_root(),
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if not record.is_file():
        raise RuntimeError(f"{chapter.name} wrote no key-results record")
    return json.loads(record.read_text()), wall


def compare(native: dict, portable: dict) -> dict:
    """Identity of exact results and claims, and the spread of each measured value."""
    spread = {}
    for name, a in native["measured"].items():
        b = portable["measured"].get(name)
        spread[name] = {"native": a, "portable": b,
                        "abs_diff": None if b is None else abs(a - b)}
    differing = sorted(name for name in set(native["exact"]) | set(portable["exact"])
                       if native["exact"].get(name) != portable["exact"].get(name))
    claims = sorted(name for name in set(native["claims"]) | set(portable["claims"])
                    if native["claims"].get(name) != portable["claims"].get(name))
    return {"exact_identical": not differing, "exact_differing": differing,
            "claims_identical": not claims, "claims_differing": claims,
            "claims_hold": all(native["claims"].values()) and all(portable["claims"].values()),
            "measured": spread,
            "max_abs_diff": max((s["abs_diff"] for s in spread.values()
                                 if s["abs_diff"] is not None), default=0.0)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="*", default=None,
                        help="chapter number prefixes (default: every chapter with key results)")
    parser.add_argument("--out", default=None, help="record folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    chapters = sorted((repo_root() / "notebooks").glob("[1-8]*.py"))
    if args.chapters:
        chapters = [c for c in chapters if any(c.stem.startswith(p) for p in args.chapters)]
        if not chapters:
            parser.error(f"no chapter matches {args.chapters}")
    start = time.perf_counter()
    results, times = {}, {}
    with tempfile.TemporaryDirectory(prefix="certlab-portability-") as tmp:
        for chapter in chapters:
            records = {}
            for label, config in CONFIGS.items():
                workdir = Path(tmp) / label
                workdir.mkdir(exist_ok=True)
                print(f"{chapter.stem}: {label} ...", flush=True)
                records[label], times[chapter.stem, label] = run_chapter(chapter, config,
                                                                         workdir)
            results[chapter.stem] = compare(records["native"], records["portable"])
            results[chapter.stem]["wall_s"] = {label: round(times[chapter.stem, label], 1)
                                               for label in CONFIGS}
            print(f"{chapter.stem}: exact identical {results[chapter.stem]['exact_identical']}, "
                  f"claims identical {results[chapter.stem]['claims_identical']}, largest "
                  f"measured difference {results[chapter.stem]['max_abs_diff']:.3g}", flush=True)
    met = all(r["exact_identical"] and r["claims_identical"] and r["claims_hold"]
              for r in results.values())
    save_record(
        "portability",
        description="Each chapter executed under two CPU configurations (native kernels, two "
                    "threads; scalar PyTorch kernels, MKL SSE4.2, one thread): identity of "
                    "the checked key results, spread of the measured (unchecked) values.",
        target="exact results and claims identical in both configurations, every claim holds",
        target_met=met, results=results, parameters={"configs": CONFIGS},
        wall_time_s=time.perf_counter() - start, argv=argv, directory=args.out)
    return results


if __name__ == "__main__":
    main()
