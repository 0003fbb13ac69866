"""Complete verifier: the current branch and bound against the previous one, same run.

Issue 13 measured certlab's ``verify`` beside alpha,beta-CROWN (abcrown 0.7) on an MNIST MLP
784-100-100-10 (eps 0.03) and a fast-adversarially trained CNN (conv 16-32 stride 2, fc 100;
eps 0.1), 40 test images, 20 s per image, 2 CPU cores: the peer proved 34 and 25 images, the
previous certlab 28 and 12. The peer cannot be installed here (no network beyond the package
registries, and it is not on them), so this benchmark trains models *of that kind* itself
and compares, on the same images and timeout:

- ``previous``: the branch and bound as it was before issue 13 (one split per parent, 20
  alpha/beta steps per batch, every margin bounded in every child),
- ``current``: the defaults of :func:`certlab.verification.verify` (margins CROWN proves
  not optimised at the root, margins the root proves dropped from the children, several
  neurons split at once while the batch is not full, 10 alpha/beta steps per batch, a
  child's optimisation stopped once it is proved),
- optional ablations (``--ablations``): ``current`` with CROWN's intermediate bounds at the
  root (not re-optimised), and ``current`` with filtered smart branching.

Recorded per model and variant: verified / falsified / timeout counts, median time over the
images every variant verified, domains bounded per second of the whole call per image (images
that branched; attack and root included),
and contradictions between variants (one says verified, another falsified: must be 0).
The issue's peer figures are quoted in the record for orientation only: they were measured
on the issue author's models, not these.

Target (same run): ``current`` verifies at least as many images as ``previous`` on every
model, with no contradiction.

Run: ``python benchmarks/bench_complete_verifier.py [--images 40 --timeout 20]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from certlab.benchmarking import save_record
from certlab.data import load_mnist
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
        rates = [r["domains"] / r["time_s"] for r in rows if r["domains"] > 0 and r["time_s"] > 0]
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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    models = train_models(args.train_images, args.epochs, args.seed)
    x_test, y_test = mnist_tensors("test", args.images)
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
            summary = summarise(per_variant)
            ok = (summary["variants"]["current"]["verified"]
                  >= summary["variants"]["previous"]["verified"]
                  and summary["contradictions"] == 0)
            met = met and ok
            summary["target_met"] = ok
            results["settings"][key] = summary
            headline[f"{key} verified (previous -> current)"] = [
                summary["variants"]["previous"]["verified"],
                summary["variants"]["current"]["verified"]]
    wall = time.perf_counter() - start
    save_record(
        "complete_verifier",
        description=(f"Images verified among the first {args.images} MNIST test images, "
                     f"{args.timeout:g} s per image, one thread: the branch and bound before "
                     "issue 13 ('previous') vs the current defaults, on a standard-trained "
                     "MLP 784-100-100-10 and a FAT-trained CNN (conv 16-32 stride 2, fc 100) "
                     "trained here; the issue's peer figures are for other models."),
        target="current verifies >= previous on every model, no contradiction (same run)",
        target_met=met, results=results, parameters=vars(args), wall_time_s=wall,
        argv=argv, directory=args.out, headline=headline)
    return results


if __name__ == "__main__":
    main()
