"""Linearity grafting (Chen, Zhang et al. 2022): does grafting make complete verification
succeed more often, and faster, than on the adversarially trained baseline?

The chapter's CPU-scale setting (``notebooks/42_linearity_grafting.py`` at its defaults): a
196-200-200-10 ReLU MLP (400 ReLUs) on 14x14 MNIST, fast adversarial training + GradAlign at
eps = 0.1, then grafting 30 / 50 / 80% of the neurons with the paper's ``gamma r_u - r_s``
criterion and fine-tuning each grafted model with the same adversarial loss. Every model is verified on the
SAME first ``--images`` MNIST test images with the SAME per-image ``--timeout``, by

* ``bab``: our complete verifier (PGD attack, alpha-CROWN at the root, beta-CROWN branch and
  bound; ``certlab.verification.verify(method="bab")``);
* ``alpha-crown``: PGD + alpha-CROWN alone (incomplete);
* ``milp``: the exact MILP (SCIP through ortools; feasible for this MLP).

Recorded per model: UNR (CROWN intermediate bounds on the verification images), SA / RA
(PGD-20 on 500 test images), and per method: verified accuracy (VA: share of all images; a
correct clean prediction is required), falsified / timeout / unknown counts, median and
mean time over the images the method had to decide (correctly classified, no counterexample
from the attack: the paper's convention), and BaB/MILP disagreements (must be 0).

Target (all measured in this run): grafting 50% verifies more images than the baseline with
our BaB, its median BaB time is at least 10% lower (same images, same timeout; two medians
that both equal the time-out do not count as a cut), and BaB never disagrees with the MILP.

Run: ``python benchmarks/bench_grafting.py [--images 20 --timeout 4] [--max-domains N]``
(``--max-domains``: a deterministic BaB budget per image, see ``verify``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

with warnings.catch_warnings(record=True):  # auto_LiRPA resets the warning filters on import
    import certlab.verification.grafted  # noqa: F401  (imports and patches auto_LiRPA)
from certlab.benchmarking import save_record
from certlab.data import load_mnist
from certlab.utils import seed_everything
from certlab.verification import grafting, models, training
from certlab.verification.attacks import clean_accuracy, robust_accuracy
from certlab.verification.lirpa import unstable_neurons, unstable_ratio
from certlab.verification.verify import verify

METHODS = ("bab", "alpha-crown", "milp")
#: the median BaB time of grafting 50% must be at least this share below the baseline's.
TIME_CUT = 0.1


def mnist(split: str, index: slice, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 MNIST -> float (N, 1, image_size, image_size) in [0, 1] and int64 labels."""
    images, labels = load_mnist(split)
    x = torch.tensor(images[index], dtype=torch.float32)[:, None] / 255.0
    if image_size != 28:
        x = F.avg_pool2d(x, 28 // image_size)
    return x, torch.tensor(labels[index]).long()


def build_models(args) -> dict[str, torch.nn.Sequential]:
    """The chapter's baseline and grafted models (same data, seeds and schedules)."""
    seed_everything(args.seed)
    x_train, y_train = mnist("train", slice(0, args.train_images), args.image_size)
    x_inst, _ = mnist("test", slice(-100, None), args.image_size)  # held out for r_u
    x_sig, y_sig = x_train[:500], y_train[:500]
    base = models.mlp(args.image_size ** 2, args.hidden)
    training.fast_adversarial_training(base, (x_train, y_train), args.eps, epochs=args.epochs,
                                       lr=0.1, batch_size=32, eps_warmup=0.34, seed=args.seed,
                                       progress=False)
    scores = grafting.compute_scores(base, x_verify=x_inst, eps=args.eps, x_train=x_sig,
                                     y_train=y_sig, kind="gradient")
    out = {"baseline": base}
    for fraction in args.fractions:
        model, _ = grafting.graft(base, fraction, "grafting", x_train=x_sig, y_train=y_sig,
                                  scores=scores, seed=args.seed)
        training.finetune_grafted(model, (x_train, y_train), args.eps,
                                  epochs=args.finetune_epochs, batch_size=32, seed=args.seed,
                                  progress=False)
        out[f"grafting {round(100 * fraction)}%"] = model.eval()
    return out


def run_model(model, x, y, args) -> dict:
    """Verify every image with every method; summarise as described in the docstring."""
    with torch.no_grad():
        correct = (model(x).argmax(1) == y).tolist()
    rows: dict[str, list[tuple[str, float, str]]] = {m: [] for m in METHODS}
    for i in range(len(x)):
        for method in METHODS:
            if not correct[i]:
                rows[method].append(("misclassified", 0.0, ""))
                continue
            res = verify(model, x[i:i + 1], int(y[i]), args.eps, method=method,
                         timeout=args.timeout, seed=args.seed, max_domains=args.max_domains)
            rows[method].append((res.status, res.time, res.detail))
    per_method = {}
    for method in METHODS:
        statuses = [r[0] for r in rows[method]]
        decided = [r[1] for r in rows[method]
                   if r[0] != "misclassified" and r[2] != "PGD attack"]
        per_method[method] = {
            "verified_accuracy": statuses.count("verified") / len(statuses),
            **{s: statuses.count(s) for s in ("verified", "falsified", "timeout", "unknown",
                                              "misclassified")},
            "falsified_by_attack": sum(r[2] == "PGD attack" for r in rows[method]),
            "median_time_s": statistics.median(decided) if decided else None,
            "mean_time_s": statistics.fmean(decided) if decided else None,
            "statuses": statuses,
            "times_s": [round(r[1], 3) for r in rows[method]],
        }
    both = ("verified", "falsified")
    disagreements = sum(1 for a, b in zip(rows["bab"], rows["milp"])
                        if a[0] in both and b[0] in both and a[0] != b[0])
    return {"methods": per_method, "bab_milp_disagreements": disagreements}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20, help="verification images")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds per image")
    parser.add_argument("--max-domains", type=int, default=None,
                        help="deterministic BaB budget per image (domains bounded)")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--image-size", type=int, default=14, choices=(7, 14, 28))
    parser.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.8])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="directory for the record")
    args = parser.parse_args(argv)
    if 0.5 not in args.fractions:
        parser.error("--fractions must contain 0.5 (the target compares grafting 50%)")
    torch.set_num_threads(args.threads)
    start_all = time.perf_counter()
    trained = build_models(args)
    train_time = time.perf_counter() - start_all
    x_ver, y_ver = mnist("test", slice(0, args.images), args.image_size)
    x_acc, y_acc = mnist("test", slice(0, 500), args.image_size)
    results: dict = {"models": {}, "training_time_s": train_time}
    for name, model in trained.items():
        print(f"== {name}", flush=True)
        res = run_model(model, x_ver, y_ver, args)
        res["unr"] = unstable_ratio(unstable_neurons(model, x_ver, args.eps, "crown"))
        res["sa"] = clean_accuracy(model, (x_acc, y_acc))
        res["ra"] = robust_accuracy(model, (x_acc, y_acc), args.eps, steps=20,
                                    seed=args.seed)
        results["models"][name] = res
        print({"unr": round(res["unr"], 3), **{
            m: (res["methods"][m]["verified"], res["methods"][m]["timeout"],
                res["methods"][m]["median_time_s"]) for m in METHODS}}, flush=True)
    base, g50 = results["models"]["baseline"], results["models"]["grafting 50%"]
    va_gain = g50["methods"]["bab"]["verified"] - base["methods"]["bab"]["verified"]
    t_base, t_g50 = base["methods"]["bab"]["median_time_s"], g50["methods"]["bab"]["median_time_s"]
    # "cuts" means a real cut: at least TIME_CUT lower, not a few milliseconds of jitter
    # between two medians that both sit at the time-out
    faster = t_base is not None and t_g50 is not None and t_g50 < (1 - TIME_CUT) * t_base
    no_disagreement = all(r["bab_milp_disagreements"] == 0
                          for r in results["models"].values())
    met = bool(va_gain > 0 and faster and no_disagreement)
    results["summary"] = {
        name: {"UNR_%": round(100 * r["unr"], 2), "SA_%": round(100 * r["sa"], 2),
               "RA_%": round(100 * r["ra"], 2),
               **{f"VA_{m}_%": round(100 * r["methods"][m]["verified_accuracy"], 2)
                  for m in METHODS},
               **{f"median_time_{m}_s": r["methods"][m]["median_time_s"] for m in METHODS}}
        for name, r in results["models"].items()}
    results["grafting50_minus_baseline_verified_images_bab"] = va_gain
    results["bab_median_time_ratio_grafting50_over_baseline"] = (
        t_g50 / t_base if t_base and t_g50 is not None else None)
    results["no_bab_milp_disagreement"] = no_disagreement
    results["target_parts"] = {"more_verified_bab": va_gain > 0,
                               f"median_bab_time_cut_at_least_{TIME_CUT:.0%}": faster,
                               "no_bab_milp_disagreement": no_disagreement}
    wall = time.perf_counter() - start_all
    fractions = ", ".join(f"{100 * f:g}%" for f in args.fractions)
    widths = "-".join(map(str, args.hidden))
    save_record(
        "grafting",
        description=(f"Baseline (FAT + GradAlign) vs grafted ({fractions}) "
                     f"{args.image_size ** 2}-{widths}-10 MLPs on {args.image_size}x"
                     f"{args.image_size} MNIST, eps = {args.eps}: UNR, SA, RA, and verified "
                     f"accuracy / median time per image of our BaB, alpha-CROWN alone and the "
                     f"exact MILP on the same first {args.images} test images with a "
                     f"{args.timeout} s timeout (one CPU thread)."),
        target=("grafting 50% raises VA and cuts median verification time vs the baseline "
                "(same images, same timeout)"),
        target_met=met, results=results, parameters=vars(args), wall_time_s=wall,
        argv=argv,
        directory=args.out)
    return results


if __name__ == "__main__":
    main()
