"""alpha,beta-CROWN's verdicts on the models and images of ``bench_complete_verifier.py``.

The peer of issue 13 is not on the package registries and must not become a dependency of
certlab (it ships its own auto_LiRPA, which certlab's patched copy would clash with), so this
script runs in the peer's own environment and writes only a JSON record of verdicts, which
``bench_complete_verifier.py`` reads beside its own runs. It does not import certlab.

Set-up used for the stored records (``results/peer/abcrown.json``, ``abcrown_bab.json``; the
sources are public):

    # abcrown 0.7.0: commit 8250d5f, its auto_LiRPA submodule at 9d100ec
    git clone --recursive https://github.com/Verified-Intelligence/alpha-beta-CROWN abcrown
    python -m venv venv && venv/bin/pip install torch==2.8.0 torchvision==0.23.0 \\
        pyyaml sortedcontainers psutil termcolor pandas sympy onnx onnxruntime onnxsim \\
        onnxoptimizer skl2onnx gurobipy graphviz pillow tqdm && \\
        venv/bin/pip install --no-deps onnx2pytorch -e abcrown/auto_LiRPA
    OMP_NUM_THREADS=1 venv/bin/python benchmarks/peer/abcrown_verdicts.py --abcrown abcrown
    OMP_NUM_THREADS=1 venv/bin/python benchmarks/peer/abcrown_verdicts.py --abcrown abcrown \\
        --preset bab

(``onnx2pytorch`` from PyPI only satisfies an import: the models here are PyTorch modules,
never ONNX.) The peer runs on the CPU with ``bab.timeout`` set to the per-image timeout and
otherwise the configuration of ``--preset`` (``PRESETS``): PGD attack first, alpha-CROWN at
the root, then beta-CROWN branch and bound with its default branching heuristic (filtered
smart branching), preceded in the default configuration by MIP refinement of intermediate
bounds on models without convolutions. Its timer starts when ``solve`` starts. One untimed warm-up call precedes the timed ones (the
peer compiles kernels on its first call).

Verdicts: "verified" (the peer's "safe..."), "falsified" ("unsafe..."), "timeout" (anything
else), "misclassified" (the model's prediction on the clean image is wrong; not run). The
raw status strings are stored too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_MODELS = HERE.parent / "results" / "peer"
SETTINGS = {"mlp": [0.03, 0.05], "cnn": [0.1]}
#: configuration overrides (``section__key``) besides device and timeout. "default": the
#: API's defaults (complete verifier "auto": for a convolution-free model this is "bab-refine",
#: which first tightens intermediate bounds with MIPs; for a CNN plain "bab"; 50 beta
#: iterations per round; branching reduce-op "min"). "bab": plain beta-CROWN branch and bound
#: for every model, with the settings of the peer's own MNIST configurations
#: (exp_configs/beta_crown/mnist_6_100.yaml, mnist_cnn_a_adv.yaml: 20 beta iterations,
#: reduce-op "max"; their GPU batch sizes not taken).
PRESETS = {"default": {},
           "bab": {"general__complete_verifier": "bab", "solver__beta-crown__iteration": 20,
                   "bab__branching__reduceop": "max"}}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_commit(path: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def import_peer(abcrown_root: Path):
    """Make the peer's ``abcrown`` package importable and return its API module."""
    if not (abcrown_root / "complete_verifier" / "api.py").is_file():
        raise FileNotFoundError(f"{abcrown_root} is not the root of an alpha-beta-CROWN "
                                "checkout (no complete_verifier/api.py)")
    sys.path.insert(0, str(abcrown_root))  # the package "abcrown" links to complete_verifier
    import abcrown  # noqa: PLC0415  (only importable after the path is set)
    return abcrown


def solve_one(api, model, x0: torch.Tensor, label: int, eps: float, timeout: float,
              n_classes: int = 10, preset: str = "default") -> tuple[str, str, float]:
    """One L-inf robustness property ``x in [x0 - eps, x0 + eps] cap [0, 1]`` =>
    ``logit[label] > logit[j]`` for every ``j != label``; (verdict, raw status, seconds)."""
    lower = (x0 - eps).clamp(0.0, 1.0)
    upper = (x0 + eps).clamp(0.0, 1.0)
    # the unsafe set as the peer's clauses (an OR of "C y <= rhs"): y[label] - y[j] <= 0
    clauses = []
    for j in range(n_classes):
        if j != label:
            c = torch.zeros(1, n_classes)
            c[0, label], c[0, j] = 1.0, -1.0
            clauses.append([(c, torch.zeros(1))])
    repeat = (len(clauses),) + (1,) * x0.dim()
    spec = api.VerificationSpec.build_spec(lower=lower.unsqueeze(0).repeat(repeat),
                                           upper=upper.unsqueeze(0).repeat(repeat),
                                           clauses=clauses)
    config = api.ConfigBuilder.from_defaults().set(general__device="cpu",
                                                    bab__timeout=timeout, **PRESETS[preset])
    start = time.perf_counter()
    result = api.ABCrownSolver(spec, model, config=config).solve()
    seconds = time.perf_counter() - start
    status = str(result.status)
    verdict = ("verified" if status.startswith("safe") else
               "falsified" if status.startswith("unsafe") else "timeout")
    return verdict, status, seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--abcrown", type=Path, required=True,
                        help="root of the alpha-beta-CROWN checkout")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--out", type=Path, default=None,
                        help="record path (default: MODELS/abcrown.json)")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="peer configuration (record: abcrown.json / abcrown_<preset>.json)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    api = import_peer(args.abcrown.resolve())
    defaults = api.ConfigBuilder.from_defaults().to_dict()
    for key in PRESETS[args.preset]:  # the peer's config accepts unknown keys silently
        node = defaults
        for part in key.split("__"):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"preset {args.preset!r}: {key!r} is not a setting of this "
                               "alpha-beta-CROWN version")
            node = node[part]
    inputs = torch.load(args.models / "inputs.pt")
    x_test, y_test = inputs["x"], inputs["y"]
    start = time.perf_counter()
    warm = torch.load(args.models / "mlp.pt", weights_only=False).eval()
    solve_one(api, warm, x_test[0], int(y_test[0]), 0.01, args.timeout)  # untimed warm-up
    record: dict = {"timeout_s": args.timeout, "images": len(x_test), "settings": {}}
    for name, eps_values in SETTINGS.items():
        model_file = args.models / f"{name}.pt"
        model = torch.load(model_file, weights_only=False).eval()
        for eps in eps_values:
            key = f"{name}_eps{eps:g}"
            statuses, raw, times = [], [], []
            for i in range(len(x_test)):
                label = int(y_test[i])
                with torch.no_grad():
                    if int(model(x_test[i:i + 1]).argmax()) != label:
                        statuses.append("misclassified"), raw.append(""), times.append(0.0)
                        continue
                verdict, status, seconds = solve_one(api, model, x_test[i], label, eps,
                                                     args.timeout, preset=args.preset)
                statuses.append(verdict), raw.append(status), times.append(round(seconds, 3))
                print(key, i, verdict, status, f"{seconds:.2f} s", flush=True)
            record["settings"][key] = {
                "model_sha256": sha256(model_file), "eps": eps, "statuses": statuses,
                "raw_statuses": raw, "times_s": times,
                "verified": statuses.count("verified"),
                "falsified": statuses.count("falsified"),
                "timeout": statuses.count("timeout")}
            print(key, {s: statuses.count(s) for s in ("verified", "falsified", "timeout")},
                  flush=True)
    record["provenance"] = {
        "command": " ".join([os.path.relpath(sys.argv[0]), *(sys.argv[1:] if argv is None
                                                            else argv)]),
        "peer": {"name": "alpha-beta-CROWN", "version": getattr(api, "__version__", None),
                 "commit": git_commit(args.abcrown),
                 "auto_LiRPA_commit": git_commit(args.abcrown / "auto_LiRPA"),
                 "configuration": ("defaults, general.device=cpu, bab.timeout=<timeout_s>"
                                   + "".join(f", {k.replace('__', '.')}={v}"
                                             for k, v in PRESETS[args.preset].items())),
                 "preset": args.preset},
        "certlab_commit": git_commit(HERE),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "platform": platform.platform(), "cpu_count": os.cpu_count(),
                     "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "python": platform.python_version(),
        "wall_time_s": round(time.perf_counter() - start, 1)}
    out = args.out or args.models / ("abcrown.json" if args.preset == "default"
                                      else f"abcrown_{args.preset}.json")
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out)
    print(f"verdicts written to {out}")
    return record


if __name__ == "__main__":
    main()
