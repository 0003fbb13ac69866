"""Complete verifier: the current branch and bound against the previous one, same run.

Issue 13 measured certlab's ``verify`` beside alpha,beta-CROWN (abcrown 0.7) on an MNIST MLP
784-100-100-10 (eps 0.03) and a fast-adversarially trained CNN (conv 16-32 stride 2, fc 100;
eps 0.1), 40 test images, 20 s per image, 2 CPU cores: the peer proved 34 and 25 images, the
previous certlab 28 and 12. This benchmark trains models *of that kind* itself and compares,
on the same images and timeout:

- ``previous``: the branch and bound as it was before issue 13 (one split per parent, 20
  alpha/beta steps per batch, every margin bounded in every child),
- ``current``: the defaults of :func:`certlab.verification.verify` (margins CROWN proves
  not optimised at the root, margins the root proves dropped from the children, several
  neurons split at once while the batch is not full, 10 alpha/beta steps per batch, a
  child's optimisation stopped once it is proved),
- optional ablations (``--ablations``): ``current`` with CROWN's intermediate bounds at the
  root (not re-optimised), and ``current`` with filtered smart branching,
- the peer, alpha,beta-CROWN, from **stored verdicts** (``--peer``, default
  ``results/peer/abcrown.json``): the peer is not on the package registries and is not a
  dependency of the project, so it is run apart, in its own environment, by
  ``benchmarks/peer/abcrown_verdicts.py`` on the very models and images this benchmark
  saves (``--models``, default ``results/peer/``: ``mlp.pt``, ``cnn.pt``, ``inputs.pt``).
  Models and images are loaded from there when present (so that both verifiers see the same
  weights on any machine) and trained and saved otherwise; the stored verdicts are used only
  if their SHA-256 of the model file matches.

Recorded per model and variant: verified / falsified / timeout counts, median time over the
images every variant verified, domains bounded per second of the whole call per image (images
that branched; attack and root included),
and contradictions between variants and with the peer (one says verified, another
falsified: must be 0). Every image that one verifier proves and another does not is then
given to the exact MILP (``verify(method="milp")``, ``--milp-timeout`` seconds): a MILP
counterexample there would be a wrong "verified" and counts as a contradiction.

Target (same run): ``current`` verifies at least as many images as ``previous`` on every
model, with no contradiction; and, where peer verdicts are stored, at least as many as the
peer, with no contradiction with it.

Run: ``python benchmarks/bench_complete_verifier.py [--images 40 --timeout 20]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import torch

from certlab.benchmarking import save_record
from certlab.data import load_mnist
from certlab.data.files import sha256_of
from certlab.provenance import repo_root
from certlab.utils import seed_everything
from certlab.verification.models import mlp, small_cnn
from certlab.verification.training import fast_adversarial_training
from certlab.verification.verify import verify

#: ``bab_options`` of each variant (``verify``'s defaults for "current").
VARIANTS = {
    "previous": {"optimize_intermediate": True, "prune_verified_margins": False,
                 "max_split_depth": 1, "iterations": 20, "branching": "babsr",
                 "early_stop": False},
    "current": {},
}
ABLATIONS = {
    "current, CROWN intermediates at the root": {"optimize_intermediate": False},
    "current+fsb": {"branching": "fsb"},
}
#: the stored peer verdicts' name among the variants.
PEER = "alpha,beta-CROWN (stored verdicts)"
#: issue 13's measurement of the peer and of the previous certlab (their models, not ours).
ISSUE_FIGURES = {"mlp": {"peer": 34, "certlab_before": 28, "images": 40, "eps": 0.03},
                 "cnn": {"peer": 25, "certlab_before": 12, "images": 40, "eps": 0.1}}


def mnist_tensors(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist(split)
    return (torch.from_numpy(images[:n]).float().div_(255.0).unsqueeze(1),
            torch.from_numpy(labels[:n]).long())


def train_models(n_train: int, epochs: int, seed: int) -> dict[str, tuple[torch.nn.Module, float]]:
    """The issue's two model kinds: a standard-trained MLP and a FAT-trained CNN."""
    x, y = mnist_tensors("train", n_train)
    specs = {"mlp": (lambda: mlp(784, (100, 100)), 0.0),
             "cnn": (lambda: small_cnn(1, 28, (16, 32), 100), 0.1)}
    models = {}
    for name, (factory, train_eps) in specs.items():
        seed_everything(seed)
        model = factory()
        fast_adversarial_training(model, (x, y), train_eps, epochs=epochs, lr=0.05,
                                  batch_size=128, eps_warmup=0.5 if train_eps else 0.0,
                                  seed=seed, progress=False)
        models[name] = model.eval()
    return models


def load_or_train(directory: Path, n_train: int, epochs: int, n_images: int,
                  seed: int) -> tuple[dict[str, torch.nn.Module], torch.Tensor, torch.Tensor]:
    """The models and test images both verifiers see: loaded from ``directory`` when it
    holds them for these settings, else trained (``train_models``) and saved there.

    Files: ``<model>.pt`` (the whole ``nn.Sequential``, pickled), ``inputs.pt``
    (``{"x": (N, 1, 28, 28) float32 in [0, 1], "y": (N,) int64}``), ``manifest.json``
    (the training settings and the SHA-256 of each file).
    """
    manifest_path = directory / "manifest.json"
    settings = {"train_images": n_train, "epochs": epochs, "images": n_images, "seed": seed}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("settings") == settings:
            for name, digest in manifest["sha256"].items():
                if sha256_of(directory / name) != digest:
                    raise ValueError(f"{directory / name}: SHA-256 differs from manifest.json; "
                                     "delete the folder to retrain")
            models = {name: torch.load(directory / f"{name}.pt", weights_only=False).eval()
                      for name in ("mlp", "cnn")}
            inputs = torch.load(directory / "inputs.pt")
            print(f"models and images loaded from {directory}", flush=True)
            return models, inputs["x"], inputs["y"]
    models = train_models(n_train, epochs, seed)
    x_test, y_test = mnist_tensors("test", n_images)
    directory.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        torch.save(model, directory / f"{name}.pt")
    torch.save({"x": x_test, "y": y_test}, directory / "inputs.pt")
    files = [f"{name}.pt" for name in models] + ["inputs.pt"]
    manifest_path.write_text(json.dumps(
        {"settings": settings, "sha256": {f: sha256_of(directory / f) for f in files}},
        indent=1) + "\n")
    print(f"models and images saved to {directory}", flush=True)
    return models, x_test, y_test


def peer_verdicts(path: Path, models_dir: Path, key: str, n_images: int,
                  timeout: float) -> dict | None:
    """The stored alpha,beta-CROWN verdicts of setting ``key`` (``"cnn_eps0.1"``), or None
    when none are stored for these model files, images and timeout."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    setting = record["settings"].get(key)
    if setting is None or record["timeout_s"] != timeout or len(setting["statuses"]) != n_images:
        return None
    model_file = models_dir / f"{key.split('_')[0]}.pt"
    if setting["model_sha256"] != sha256_of(model_file):
        print(f"{path}: verdicts for {key} are for another {model_file.name}; ignored")
        return None
    return setting


def milp_cross_check(model, x_test, y_test, eps, per_variant: dict[str, list[dict]],
                     time_limit: float) -> list[dict]:
    """The exact MILP (``verify(method="milp")``) on every image that some verifier proved and
    another did not: an independent check of the disputed "verified" claims. A MILP
    "falsified" there would be a wrong "verified" (counted as a contradiction)."""
    checks = []
    n = len(x_test)
    for i in range(n):
        verdicts = {v: rows[i]["status"] for v, rows in per_variant.items()}
        if "verified" not in verdicts.values() or set(verdicts.values()) == {"verified"}:
            continue
        res = verify(model, x_test[i:i + 1], int(y_test[i]), eps, method="milp",
                     timeout=time_limit)
        checks.append({"image": i, "verdicts": verdicts, "milp": res.status,
                       "milp_time_s": round(res.time, 3)})
        print(f"  MILP on image {i}: {res.status} ({res.time:.1f} s); {verdicts}", flush=True)
    return checks


def run_variant(model, x_test, y_test, eps, timeout, options) -> list[dict]:
    rows = []
    for i in range(len(x_test)):
        with torch.no_grad():
            if int(model(x_test[i:i + 1]).argmax()) != int(y_test[i]):
                rows.append({"status": "misclassified", "time_s": 0.0, "domains": 0})
                continue
        res = verify(model, x_test[i:i + 1], int(y_test[i]), eps, timeout=timeout,
                     bab_options=options)
        rows.append({"status": res.status, "time_s": round(res.time, 3),
                     "domains": res.n_branches})
    return rows


def summarise(per_variant: dict[str, list[dict]]) -> dict:
    names = list(per_variant)
    n = len(per_variant[names[0]])
    common = [i for i in range(n) if all(per_variant[v][i]["status"] == "verified"
                                         for v in names)]
    contradictions = sum(
        1 for i in range(n)
        if {"verified", "falsified"} <= {per_variant[v][i]["status"] for v in names})
    out = {"contradictions": contradictions, "variants": {}}
    for v, rows in per_variant.items():
        statuses = [r["status"] for r in rows]
        rates = [r["domains"] / r["time_s"] for r in rows
                 if r["domains"] is not None and r["domains"] > 0 and r["time_s"] > 0]
        out["variants"][v] = {
            "verified": statuses.count("verified"),
            "falsified": statuses.count("falsified"),
            "timeout": statuses.count("timeout"),
            "misclassified": statuses.count("misclassified"),
            "median_time_commonly_verified_s": (statistics.median(
                rows[i]["time_s"] for i in common) if common else None),
            "median_domains_per_s": statistics.median(rates) if rates else None,
            "statuses": statuses,
            "times_s": [r["time_s"] for r in rows],
            "domains": [r["domains"] for r in rows],
        }
    return out


def _relative(path: Path) -> str:
    """``path`` relative to the repository when inside it (portable provenance)."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per image")
    parser.add_argument("--mlp-eps", type=float, nargs="+", default=[0.03, 0.05])
    parser.add_argument("--cnn-eps", type=float, nargs="+", default=[0.1])
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--milp-timeout", type=float, default=120.0,
                        help="seconds of exact MILP per disputed image (0: no cross-check)")
    parser.add_argument("--models", type=Path,
                        default=repo_root() / "benchmarks" / "results" / "peer",
                        help="folder of the models and images both verifiers see")
    parser.add_argument("--peer", type=Path,
                        default=repo_root() / "benchmarks" / "results" / "peer" / "abcrown.json",
                        help="stored alpha,beta-CROWN verdicts (benchmarks/peer/abcrown_verdicts.py)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    models, x_test, y_test = load_or_train(args.models, args.train_images, args.epochs,
                                           args.images, args.seed)
    variants = {**VARIANTS, **(ABLATIONS if args.ablations else {})}
    results: dict = {"images": args.images, "timeout_s": args.timeout, "settings": {},
                     "issue_figures_other_models": ISSUE_FIGURES}
    met = True
    headline = {}
    for name, model in models.items():
        for eps in (args.mlp_eps if name == "mlp" else args.cnn_eps):
            key = f"{name}_eps{eps:g}"
            per_variant = {}
            for variant, options in variants.items():
                per_variant[variant] = run_variant(model, x_test, y_test, eps, args.timeout,
                                                   options)
                counts = per_variant[variant]
                print(key, variant, {s: [r["status"] for r in counts].count(s)
                                     for s in ("verified", "falsified", "timeout")},
                      flush=True)
            peer = peer_verdicts(args.peer, args.models, key, args.images, args.timeout)
            if peer is not None:
                per_variant[PEER] = [{"status": st, "time_s": t, "domains": None}
                                     for st, t in zip(peer["statuses"], peer["times_s"])]
            summary = summarise(per_variant)
            summary["milp_cross_check"] = milp_cross_check(
                model, x_test, y_test, eps, per_variant, args.milp_timeout) if (
                args.milp_timeout > 0) else []
            summary["contradictions"] += sum(
                c["milp"] == "falsified" for c in summary["milp_cross_check"])
            counts = {v: summary["variants"][v]["verified"] for v in per_variant}
            ok = (counts["current"] >= counts["previous"] and summary["contradictions"] == 0
                  and (peer is None or counts["current"] >= counts[PEER]))
            met = met and ok
            summary["target_met"] = ok
            summary["peer_stored"] = peer is not None
            results["settings"][key] = summary
            if peer is None:
                headline[f"{key} verified (previous -> current)"] = [
                    counts["previous"], counts["current"]]
            else:
                headline[f"{key} verified (previous -> current; alpha,beta-CROWN)"] = [
                    counts["previous"], counts["current"], counts[PEER]]
    wall = time.perf_counter() - start
    parameters = {**vars(args), "models": _relative(args.models), "peer": _relative(args.peer)}
    save_record(
        "complete_verifier",
        description=(f"Images verified among the first {args.images} MNIST test images, "
                     f"{args.timeout:g} s per image, one thread: the branch and bound before "
                     "issue 13 ('previous') vs the current defaults, on a standard-trained "
                     "MLP 784-100-100-10 and a FAT-trained CNN (conv 16-32 stride 2, fc 100) "
                     "trained here, and alpha,beta-CROWN 0.7's stored verdicts on the same "
                     "models, images and timeout (benchmarks/peer/abcrown_verdicts.py)."),
        target=("current verifies >= previous and >= alpha,beta-CROWN (stored verdicts) on "
                "every model, no contradiction"),
        target_met=met, results=results, parameters=parameters, wall_time_s=wall,
        argv=argv, directory=args.out, headline=headline)
    return results


if __name__ == "__main__":
    main()
