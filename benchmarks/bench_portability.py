"""How much each chapter's key results vary between CPU kernels and thread counts.

Every chapter is executed in two configurations:

* ``native``: the machine's own kernels and two threads (``OMP_NUM_THREADS=2``), as the
  notebooks are executed by ``make notebooks``;
* ``portable``: PyTorch's scalar kernels, MKL without AVX and one thread
  (``ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 OMP_NUM_THREADS=1``), the
  configuration of CI's second nbval run (``make nbval-portable``).

Each execution writes its :class:`certlab.checks.KeyResults` record to a folder (environment
variable ``CERTLAB_KEY_RESULTS``); the benchmark compares the two folders: exact results and
claims must be identical (the target), and for every measured value it records both values
and their absolute difference, the spread the chapters quote.

Usage::

    # execute every chapter twice here (about twice the time of make notebooks)
    .venv/bin/python benchmarks/bench_portability.py [--chapters 11 42]
    # or compare the records of executions made anyway, e.g. by make notebooks and
    # make nbval-portable run with CERTLAB_KEY_RESULTS=<folder>
    .venv/bin/python benchmarks/bench_portability.py --compare NATIVE_DIR PORTABLE_DIR
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


def execute(chapters: list[Path], config: dict[str, str], records: Path, workdir: Path) -> None:
    """Execute each chapter under ``config`` (``certlab.run``), records into ``records``."""
    env = dict(os.environ, **config, **{RECORD_ENV: str(records)})
    for chapter in chapters:
        print(f"{chapter.stem} ({', '.join(f'{k}={v}' for k, v in config.items())})",
              flush=True)
        subprocess.run([sys.executable, "-m", "certlab.run", str(chapter), "--out",
                        str(workdir / chapter.stem)], env=env, check=True, cwd=repo_root(),
                       stdout=subprocess.DEVNULL)


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
            "n_exact": len(native["exact"]), "n_claims": len(native["claims"]),
            "n_measured": len(spread),
            "max_abs_diff": max((s["abs_diff"] for s in spread.values()
                                 if s["abs_diff"] is not None), default=0.0),
            "measured": spread}


def compare_folders(native_dir: Path, portable_dir: Path) -> dict[str, dict]:
    """Compare every chapter that has a record in both folders."""
    stems = sorted({p.stem for p in Path(native_dir).glob("*.json")}
                   & {p.stem for p in Path(portable_dir).glob("*.json")})
    if not stems:
        raise ValueError(f"no chapter has key results in both {native_dir} and {portable_dir}")
    return {stem: compare(json.loads((Path(native_dir) / f"{stem}.json").read_text()),
                          json.loads((Path(portable_dir) / f"{stem}.json").read_text()))
            for stem in stems}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="*", default=None,
                        help="chapter number prefixes (default: every chapter)")
    parser.add_argument("--compare", nargs=2, metavar=("NATIVE_DIR", "PORTABLE_DIR"),
                        help="compare existing record folders instead of executing")
    parser.add_argument("--out", default=None, help="record folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.compare:
        results = compare_folders(*map(Path, args.compare))
        source = "records of executions made elsewhere (--compare)"
    else:
        chapters = sorted((repo_root() / "notebooks").glob("[0-8]*.py"))
        if args.chapters:
            chapters = [c for c in chapters if any(c.stem.startswith(p) for p in args.chapters)]
            if not chapters:
                parser.error(f"no chapter matches {args.chapters}")
        with tempfile.TemporaryDirectory(prefix="certlab-portability-") as tmp:
            for label, config in CONFIGS.items():
                execute(chapters, config, Path(tmp) / label / "keys", Path(tmp) / label)
            results = compare_folders(Path(tmp) / "native" / "keys",
                                      Path(tmp) / "portable" / "keys")
        source = "executed by this script (certlab.run, default parameters)"
    for stem, r in results.items():
        print(f"{stem}: exact identical {r['exact_identical']}, claims identical "
              f"{r['claims_identical']}, largest measured difference {r['max_abs_diff']:.3g}")
    met = all(r["exact_identical"] and r["claims_identical"] and r["claims_hold"]
              for r in results.values())
    headline = {f"{stem}: exact results and claims identical, all hold, largest measured "
                "difference": [r["exact_identical"] and r["claims_identical"], r["claims_hold"],
                               round(r["max_abs_diff"], 4)]
                for stem, r in results.items()}
    save_record(
        "portability",
        description="Each chapter executed under two CPU configurations (native kernels, two "
                    "threads; scalar PyTorch kernels, MKL SSE4.2, one thread): identity of "
                    "the checked key results, spread of the measured (unchecked) values.",
        target="exact results and claims identical in both configurations, every claim holds",
        target_met=met, results=results,
        parameters={"configs": CONFIGS, "source": source},
        wall_time_s=time.perf_counter() - start, argv=argv, directory=args.out,
        headline=headline)
    return results


if __name__ == "__main__":
    main()
