"""Complete verification on small MNIST models: our BaB vs alpha-CROWN alone vs the exact MILP.

For each model (an MLP 784-50-50-10 and a small CNN, both trained for a few epochs with fast
adversarial training + GradAlign from ``certlab.verification.training``), the same first
``--images`` MNIST test images and the same per-image timeout, we run
``certlab.verification.verify`` with ``method="bab"`` (PGD, alpha-CROWN root, beta-CROWN
branch and bound), ``"alpha-crown"`` (PGD + alpha-CROWN, incomplete) and ``"milp"`` (exact
MILP, SCIP through ortools). Recorded per method: verified accuracy (VA, a correct clean
prediction is required), falsified / timeout counts, median and mean time per image, and the
number of images where BaB and the MILP both decide but disagree (must be 0).

BaB throughput: domains bounded per second, (a) over all BaB runs above (time inside the
branch-and-bound loop only) and (b) a fixed 10 s run on the hardest image without the attack,
at the default batch of 64 domains per auto_LiRPA call.

Fixed per-call overhead: median time of ``verify(method="bab", attack_steps=0)`` on (up to
5) images that BaB verified in under a second above, with the auto_LiRPA BoundedModule cache cleared before
every call (cold: the module is traced again) vs kept (warm: the default), same images.

Target (measured in the same run): BaB verifies at least as many images as alpha-CROWN alone,
and BaB never disagrees with the MILP.

Round-off: ``verify`` bounds in float64 and certifies only above a round-off tolerance
(:mod:`certlab.verification.numerics`); ``--max-domains N`` adds a deterministic BaB budget per
image (with a wall-clock timeout alone, counts near the limit depend on the machine).

Run: ``python benchmarks/bench_verification.py [--images 20 --timeout 10 --eps 0.08]
[--max-domains N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from certlab.benchmarking import save_record
from certlab.data import load_mnist
from certlab.utils import resolve_device, seed_everything
from certlab.verification.bab import BranchAndBound
from certlab.verification.lirpa import clear_bounded_module_cache, input_box
from certlab.verification.verify import verify

METHODS = ("bab", "alpha-crown", "milp")


def mnist_tensors(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_mnist(split)
    x = torch.from_numpy(images[:n]).float().div_(255.0).unsqueeze(1)
    return x, torch.from_numpy(labels[:n]).long()


def build_models(n_train: int, epochs: int, train_eps: float, seed: int
                 ) -> dict[str, torch.nn.Sequential]:
    from certlab.verification.models import mlp, small_cnn
    from certlab.verification.training import fast_adversarial_training

    x, y = mnist_tensors("train", n_train)
    models = {}
    for name, factory in (("mlp_784_50_50", lambda: mlp(784, (50, 50))),
                          ("cnn_4_8_32", lambda: small_cnn(1, 28, (4, 8), 32))):
        seed_everything(seed)
        model = factory()
        fast_adversarial_training(model, (x, y), train_eps, epochs=epochs, lr=0.05,
                                  batch_size=128, eps_warmup=0.5, seed=seed, progress=False)
        models[name] = model.eval()
    return models


def run_model(model, x_test, y_test, eps, timeout, seed, max_domains=None) -> dict:
    per_method: dict[str, dict] = {}
    rows: dict[str, list] = {m: [] for m in METHODS}
    with torch.no_grad():
        correct = (model(x_test).argmax(1) == y_test).tolist()
    for i in range(len(x_test)):
        for method in METHODS:
            if not correct[i]:
                rows[method].append(("misclassified", 0.0, 0))
                continue
            res = verify(model, x_test[i:i + 1], int(y_test[i]), eps, method=method,
                         timeout=timeout, seed=seed, max_domains=max_domains)
            rows[method].append((res.status, res.time, res.n_branches))
    for method in METHODS:
        statuses = [r[0] for r in rows[method]]
        times = [r[1] for r in rows[method] if r[0] != "misclassified"]
        per_method[method] = {
            "verified_accuracy": statuses.count("verified") / len(statuses),
            "verified": statuses.count("verified"),
            "falsified": statuses.count("falsified"),
            "timeout": statuses.count("timeout"),
            "unknown": statuses.count("unknown"),
            "median_time_s": statistics.median(times) if times else None,
            "mean_time_s": statistics.fmean(times) if times else None,
            "branches_total": int(sum(r[2] for r in rows[method])),
        }
    decided = ("verified", "falsified")
    disagreements = sum(1 for a, b in zip(rows["bab"], rows["milp"])
                        if a[0] in decided and b[0] in decided and a[0] != b[0])
    clean = sum(correct) / len(correct)
    return {"clean_accuracy": clean, "methods": per_method, "bab_milp_disagreements":
            disagreements, "statuses": {m: [r[0] for r in rows[m]] for m in METHODS},
            "times": {m: [round(r[1], 4) for r in rows[m]] for m in METHODS},
            "bab_branches": [r[2] for r in rows["bab"]]}


def throughput_run(model, x, label, eps, seconds: float, batch_size: int) -> dict:
    lower, upper = input_box(x, eps)
    bab = BranchAndBound(model, x, label, lower, upper, batch_size=batch_size)
    start = time.perf_counter()
    outcome = bab.run(start + seconds)
    loop_time = outcome.time - (outcome.history[0]["time"] if outcome.history else 0.0)
    return {"status": outcome.status, "branches": outcome.n_branches, "time_s": outcome.time,
            "domains_per_s": outcome.n_branches / loop_time if loop_time > 0 else None,
            "batch_size": batch_size}


def overhead_run(model, x_test, y_test, eps, timeout, images: list[int]) -> dict:
    """Median ``verify`` time with the BoundedModule cache cleared before each call (cold)
    vs kept (warm), on the same images; the first call of each kind is repeated and dropped
    so that one-time costs do not count."""
    correct = list(images)
    if not correct:
        return {}
    out = {}
    for mode in ("cold", "warm"):
        times = []
        for i in [correct[0]] + correct:
            if mode == "cold":
                clear_bounded_module_cache()
            start = time.perf_counter()
            verify(model, x_test[i:i + 1], int(y_test[i]), eps, method="bab", timeout=timeout,
                   attack_steps=0)
            times.append(time.perf_counter() - start)
        out[f"{mode}_median_s"] = statistics.median(times[1:])
    out["images"] = len(correct)
    out["cold_over_warm"] = out["cold_median_s"] / out["warm_median_s"]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per image")
    parser.add_argument("--max-domains", type=int, default=None,
                        help="deterministic BaB budget per image (domains bounded)")
    parser.add_argument("--eps", type=float, default=0.08, help="verification radius")
    parser.add_argument("--train-eps", type=float, default=0.1)
    parser.add_argument("--train-images", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--throughput-seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    start_all = time.perf_counter()
    models = build_models(args.train_images, args.epochs, args.train_eps, args.seed)
    x_test, y_test = mnist_tensors("test", args.images)
    results: dict = {"eps": args.eps, "timeout_s": args.timeout, "images": args.images,
                     "models": {}}
    met = True
    for name, model in models.items():
        model = model.to(device)
        print(f"== {name}", flush=True)
        res = run_model(model, x_test.to(device), y_test.to(device), args.eps, args.timeout,
                        args.seed, args.max_domains)
        # throughput on the image with the most BaB branches (or the first one)
        hardest = int(np.argmax(res["bab_branches"])) if res["bab_branches"] else 0
        res["throughput"] = throughput_run(model, x_test[hardest:hardest + 1].to(device),
                                           int(y_test[hardest]), args.eps,
                                           args.throughput_seconds, args.batch_size)
        fast = [i for i, (s, t) in enumerate(zip(res["statuses"]["bab"], res["times"]["bab"]))
                if s == "verified" and t < 1.0][:5]
        res["per_call_overhead"] = overhead_run(model, x_test.to(device), y_test.to(device),
                                                args.eps, args.timeout, fast)
        loop = [(t, b) for t, b in zip(res["times"]["bab"], res["bab_branches"]) if b > 0]
        res["throughput_all_runs_domains_per_s"] = (sum(b for _, b in loop) /
                                                    sum(t for t, _ in loop)) if loop else None
        va = {m: res["methods"][m]["verified"] for m in METHODS}
        ok = va["bab"] >= va["alpha-crown"] and res["bab_milp_disagreements"] == 0
        met = met and ok
        res["target_met"] = ok
        results["models"][name] = res
        print({m: (res["methods"][m]["verified_accuracy"], res["methods"][m]["median_time_s"])
               for m in METHODS}, res["throughput"], res["per_call_overhead"], flush=True)
    wall = time.perf_counter() - start_all
    params = {**vars(args), "device": str(device)}
    save_record(
        "verification",
        description=(f"Verified accuracy (VA) and time per image on the first {args.images} "
                     f"MNIST test images at eps = {args.eps} (timeout {args.timeout} s): BaB "
                     "(PGD + alpha-CROWN + beta-CROWN branch and bound) vs alpha-CROWN alone vs "
                     "the exact MILP (SCIP), same images and timeout, plus BaB throughput "
                     "(domains bounded per second)."),
        target="BaB VA >= alpha-CROWN VA and no BaB/MILP disagreement (same run)",
        target_met=met, results=results, parameters=params, wall_time_s=wall,
        argv=argv,
        directory=args.out)
    return results


if __name__ == "__main__":
    main()
