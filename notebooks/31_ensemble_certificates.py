# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # ScaLabelCert and EnsembleCert
#
# Part II certified a wide network against label flipping with a mixed-integer linear program
# (MILP): exact, but one hard optimisation problem per prediction. 
# {cite:t}`mohgaonkar2026` make two observations.
#
# **ScaLabelCert.** Two NTK learners are *linear in the training labels*. Kernel ridge
# regression (KRR) always is, $f(x) = k(x)^\top (K + \lambda I)^{-1} Y$ with one-hot labels
# $Y$. The bias-free hinge-loss SVM of Part II is too when $C$ is so small that every dual
# variable sits at its bound $C$ for *every* labelling; a sufficient condition is
#
# $$
# C \max_i \sum_j |K_{ij}| \le 1 ,
# $$
#
# since then the gradient of the dual at $\alpha = C\mathbf 1$ is $C\sum_j y_i y_j K_{ij} - 1
# \le 0$ for every $y$, and $f(x) = C \sum_j y_j K(x, x_j)$. In both cases the class scores
# are $s_c(x) = \sum_j w_j(x)\, [y_j = c]$ with per-label weights $w$, and each label
# contributes independently. For the prediction $T$ and a rival class $r$, flipping label $j$
# lowers the margin $s_T - s_r$ by at most $2w_j$ (a label of $T$ with $w_j > 0$, moved to
# $r$), $2|w_j|$ (a label of $r$ with $w_j < 0$, moved to $T$) or $|w_j|$ (any other label),
# so the fewest flips that let $r$ catch up follow from **sorting** these gains; the minimum
# over rivals is the exact certificate, in $O(c\, m \log m)$ per prediction.
#
# **EnsembleCert.** A partition-aggregation ensemble {cite}`levine2021dpa` hashes every
# training sample (never its label) into one of $P$ parts, trains one base model per part and
# predicts by majority vote. The black-box DPA certificate assumes one flip can change one
# base model's vote arbitrarily: with vote counts $n$, top class $T$ and runner-up $S$,
#
# $$
# \text{DPA certificate} = \Big\lfloor \frac{n_T - n_S - [S < T]}{2} \Big\rfloor .
# $$
#
# EnsembleCert uses white-box base models instead: ScaLabelCert gives, for every part $p$ and
# class $c$, the cost $\kappa_{p,c}$ (fewest flips inside $p$ that move its vote to $c$). The
# cheapest way to change the ensemble is then a multiple-choice knapsack: against a rival
# $r$, a part voting $T$ lowers $n_T - n_r$ by 2 (moved to $r$) or 1 (moved elsewhere), a part
# voting a third class lowers it by 1; reach $n_T - n_r + [r > T]$ at minimum total cost. A
# dynamic programme over the parts solves it exactly in polynomial time, and
# EnsembleCert $\ge$ DPA always (they agree when every $\kappa = 1$).
#
# This chapter checks ScaLabelCert against the MILP, then certifies ensembles of NTK models
# on MNIST and binary MNIST (1 vs 7) for several numbers of partitions.

# %% tags=["parameters"]
# Parameters (papermill): CPU-scale defaults.
n_train = 2000  # attackable training images per task (0: all; the paper: all)
n_test = 300  # test images per task (0: all; the paper: all)
n_parts = [1, 2, 5, 10, 25, 50, 100, 200]  # numbers of partitions P
n_components = 50  # PCA feature dimension (the paper: self-supervised RotNet features)
ridge_binary = 10.0  # KRR ridge of every base model, binary 1-vs-7
ridge_mnist = 1.0  # KRR ridge of every base model, 10-class MNIST
ridge_sweep = [0.1, 1.0, 10.0, 100.0]  # ridges of the single-model (P = 1) study ([]: skip)
milp_train = 20  # labeled images of the ScaLabelCert-vs-MILP check (the MILP limits this)
milp_test = 20  # test images of that check
device = "auto"  # everything here runs on the CPU (numpy); kept for the common interface
seed = 0

# %% tags=["remove-cell"]
from certlab.parameters import validate_chapter_parameters

validate_chapter_parameters("31_ensemble_certificates", globals())

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fractions import Fraction

from IPython.display import Markdown
from matplotlib.ticker import MaxNLocator
from myst_nb import glue

from certlab.chapters import paper_scale_command
from certlab.checks import KeyResults
from certlab.poisoning.certificates import min_label_flips
from certlab.poisoning.closed_form import svm_linear_regime, svm_regime_max_C
from certlab.poisoning.ensembles import (certified_accuracy,
                                         certify_partition_ensemble_blocks,
                                         compare_median_certificates,
                                         measure_ensemble_looseness,
                                         median_certified_flips, merge_median_tables)
from certlab.poisoning.features import (BINARY_CLASSES, mlp_ntk, mlp_ntk_blocks,
                                        mnist_subset)
from certlab.poisoning.partition import hash_partition, partition_sizes
from certlab.plotting import use_book_style
from certlab.records import group_runs, save_record, stored_runs
from certlab.utils import seed_everything

use_book_style()

rng = seed_everything(seed)
print(f"running on {device} (numpy on the CPU)")

# %% [markdown]
# ## Data, features and kernel
#
# The paper trains its NTK base models on self-supervised features (SimCLR on CIFAR-10, RotNet
# on MNIST). Neither these feature extractors nor CIFAR-10 are available here, so we use a
# fixed, *unsupervised* stand-in (`certlab.poisoning.features`): pixels scaled to $[0, 1]$,
# the top principal components of 5000 unlabeled MNIST training images, each row scaled to
# unit norm. The feature map never sees a label, so label flips cannot change it. The kernel
# is the NTK of an infinitely wide one-hidden-layer ReLU MLP with biases
# {cite}`jacot2018ntk` (Part II's `gnn_ntk(model="mlp")` on a graph without edges, where each
# image is its own node). Every base model is NTK kernel ridge regression, which is linear in
# the labels for any ridge, so ScaLabelCert is exact for it. Two tasks: all ten digits, and
# the paper's binary 1-vs-7.

# %%
tasks = {}
for task, classes, ridge in (("1 vs 7", BINARY_CLASSES, ridge_binary),
                             ("MNIST-10", None, ridge_mnist)):
    data = mnist_subset(n_train or None, n_test or None, classes=classes,
                        n_components=n_components, seed=seed)
    # kernel blocks (part x part, test x part) are built per part: no n x n kernel needed
    tasks[task] = dict(data=data, kernel_blocks=mlp_ntk_blocks(data.x_train,
                                                               data.x_test),
                       ridge=ridge, n_classes=len(data.classes))

# %%
pd.DataFrame([
    {"task": task, "training images": t["data"].x_train.shape[0],
     "test images": t["data"].x_test.shape[0], "classes": t["n_classes"],
     "PCA features": t["data"].x_train.shape[1],
     "pixel variance explained (%)":
         100 * t["data"].feature_map.explained_variance_ratio.sum()}
    for task, t in tasks.items()]).style.format(
    {"pixel variance explained (%)": "{:.1f}"}).hide(axis="index")

# %% [markdown]
# ## ScaLabelCert against the exact MILP
#
# On a training set small enough for Part II's MILP (`milp_train` labeled images of the
# 1-vs-7 task, as small as the paper's labeled sets), we compute the fewest label flips that
# change each test prediction with both methods of `min_label_flips`, for KRR and for the SVM
# with $C$ just inside its linear regime. They must agree exactly.

# %%
small = mnist_subset(milp_train, milp_test, classes=BINARY_CLASSES,
                     n_components=n_components,
                     seed=seed + 1)
Ks_train, Ks_test = mlp_ntk(small.x_train, small.x_test)
C_regime = 0.9 * svm_regime_max_C(Ks_train)
budget = milp_train // 2
comparison = {}
for model, kwargs in (("KRR (ridge 1)", dict(model="krr", ridge=1.0)),
                      (f"SVM (C = {C_regime:.2g})", dict(model="svm",
                                                         C=C_regime))):
    row = {}
    for method in ("closed_form", "milp"):
        start = time.perf_counter()
        row[method] = min_label_flips(Ks_train, Ks_test, small.y_train,
                                      max_flips=budget,
                                      method=method, **kwargs)
        row[method + "_s"] = time.perf_counter() - start
    comparison[model] = row

# %%
regime_ok = svm_linear_regime(Ks_train, C_regime)
regime_2x = svm_linear_regime(Ks_train, 2 * C_regime)
milp_table = pd.DataFrame([
    {"model": model,
     "closed form == MILP": f"{int(np.sum(row['closed_form'] == row['milp']))}/{milp_test}",
     "fewest flips (closed form)": ", ".join(map(str, row["closed_form"].tolist())),
     "MILP, ms per certificate": 1e3 * row["milp_s"] / milp_test,
     "closed form, ms per certificate": 1e3 * row["closed_form_s"] / milp_test}
    for model, row in comparison.items()])
all_same = all(np.array_equal(row["closed_form"], row["milp"]) for row in comparison.values())
speedup = {model: row["milp_s"] / max(row["closed_form_s"], 1e-9)
           for model, row in comparison.items()}
glue("ch31_milp_test", milp_test, display=False)
glue("ch31_milp_agree", Markdown("identical" if all_same else "**not** identical"),
     display=False)
glue("ch31_speedup_krr", float(speedup["KRR (ridge 1)"]), display=False)
glue("ch31_speedup_svm", float(max(v for m, v in speedup.items() if m.startswith("SVM"))),
     display=False)
glue("ch31_regime_ok", Markdown("holds" if regime_ok else "does not hold"), display=False)
glue("ch31_regime_2x", Markdown("holds" if regime_2x else "does not hold"), display=False)
milp_table.style.format({"MILP, ms per certificate": "{:.1f}",
                         "closed form, ms per certificate": "{:.3f}"}).hide(axis="index")

# %% [markdown]
# On all {glue:text}`ch31_milp_test` test points the answers of the two methods are
# {glue:md}`ch31_milp_agree`, and the closed form (one call for all test points) is
# {glue:text}`ch31_speedup_krr:.0f` times faster than the MILP for KRR and
# {glue:text}`ch31_speedup_svm:.0f` times faster for the SVM, whose MILP is the harder one.
# The SVM's linear regime {glue:md}`ch31_regime_ok` at the chosen $C$ and
# {glue:md}`ch31_regime_2x` at twice that $C$. The timings include one-off overheads, and
# inside the regime the project's MILP already replaces the SVM's KKT block by the linear
# score; `benchmarks/bench_ensembles.py` times the paper's KKT formulation on more test
# points (see the {doc}`benchmarks page <90_benchmarks>`). Outside the SVM's regime the
# closed form refuses (`RegimeError`) instead of guessing; the MILP is then the exact
# method.
#
# ## Certifying partition ensembles
#
# For each task and each $P$, the training images are hashed (SHA-256 of the raw image bytes)
# into $P$ parts, one NTK-KRR base model is trained per part, and every test prediction gets
# both certificates. A misclassified test point counts as certified for $-1$ flips (DPA's
# convention), so the median certified flips summarise accuracy and robustness together.

# %%
results = {}
for task, t in tasks.items():
    d = t["data"]
    for P in n_parts:
        parts = hash_partition(d.train_images, P)
        res = certify_partition_ensemble_blocks(t["kernel_blocks"],
                                                d.y_test.size, d.y_train,
                                                parts, P,
                                                n_classes=t["n_classes"],
                                                ridge=t["ridge"])
        correct = res.predictions == d.y_test
        results[task, P] = dict(
            res=res, correct=correct, accuracy=float(correct.mean()),
            ensemble=median_certified_flips(res.ensemble_cert, correct),
            dpa=median_certified_flips(res.dpa, correct),
            exact=float(res.costs_exact.mean()),
            smallest_part=int(partition_sizes(parts, P).min()))

# %%
partition_table = pd.DataFrame([
    {"task": f"{task} (ridge {tasks[task]['ridge']:g})", "P": P,
     "accuracy": results[task, P]["accuracy"],
     "median flips, EnsembleCert": results[task, P]["ensemble"],
     "median flips, DPA": results[task, P]["dpa"],
     "smallest part": results[task, P]["smallest_part"],
     "costs flagged exact": results[task, P]["exact"]}
    for task in tasks for P in n_parts])
partition_table.style.format(
    {"accuracy": "{:.3f}", "median flips, EnsembleCert": "{:.1f}",
     "median flips, DPA": "{:.1f}", "costs flagged exact": "{:.3f}"}
).hide(axis="index")

# %% [markdown]
# Two things to read off. With few partitions, the black-box certificate is close to useless
# (one base model that is flippable by one label can carry the whole vote), while on 1 vs 7 the
# white-box one certifies many flips: the base models are each robust to several flips, and
# EnsembleCert counts them. On MNIST-10 this holds only weakly: with few partitions the
# white-box median is a handful of flips, above DPA's at the same $P$ but below what DPA
# reaches with many partitions. With many small partitions both certificates meet: a base model trained on a
# handful of images changes its vote with one or two flips, so the black-box assumption is
# nearly tight. For MNIST-10 the per-part costs are the per-rival ScaLabelCert values, which
# are exact for "class $c$ overtakes the current vote" but only a lower bound on "the part
# predicts exactly $c$" (another class may end on top); the last column gives the share of
# costs an explicit flip set attains. Lower bounds keep the certificate sound.

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), sharey=True)
shown = [P for P in n_parts if P in (1, 5, 25, 100, 200)] or n_parts[:4]
colors = plt.cm.viridis(np.linspace(0, 0.9, len(shown)))
for ax, task in zip(axes, tasks):
    top = max(np.max(np.where(np.isfinite(results[task, P]["res"].ensemble_cert),
                              results[task, P]["res"].ensemble_cert,
                              0)) for P in shown)
    budgets = np.arange(0, int(top) + 2)
    for P, col in zip(shown, colors):
        r = results[task, P]
        ax.plot(budgets, certified_accuracy(r["res"].ensemble_cert,
                                            r["correct"], budgets),
                color=col, lw=2, label=f"P = {P}")
        ax.plot(budgets, certified_accuracy(r["res"].dpa, r["correct"],
                                            budgets), color=col,
                lw=1.2, ls="--")
    ax.set(xlabel="flipped training labels", title=task, ylim=(0, 1.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
axes[0].set_ylabel("certified accuracy")
handles = [plt.Line2D([], [], color=col, lw=2, label=f"P = {P}")
           for P, col in zip(shown, colors)]
handles += [plt.Line2D([], [], color="0.3", lw=2, label="EnsembleCert"),
            plt.Line2D([], [], color="0.3", lw=1.2, ls="--", label="DPA")]
fig.legend(handles=handles, loc="lower center", ncol=len(handles),
           bbox_to_anchor=(0.5, 0), fontsize=8, handlelength=1.8, columnspacing=1)
fig.tight_layout(rect=(0, 0.08, 1, 1))
glue("ch31_curves_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch31_curves_fig
# :name: fig-ch31-curves
#
# Certified accuracy against the number of flipped training labels, for several numbers of
# partitions $P$ (colour): EnsembleCert (solid) and the black-box DPA certificate (dashed) of
# the same ensemble. Left the binary 1-vs-7 task, right MNIST-10.
# ```

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.3))
for ax, task in zip(axes, tasks):
    ax.plot(n_parts, [results[task, P]["ensemble"] for P in n_parts], "o-",
            lw=2, label="EnsembleCert (white box)")
    ax.plot(n_parts, [results[task, P]["dpa"] for P in n_parts], "s--",
            mfc="none", ms=7, label="DPA (black box)")
    ax.set_xscale("log")
    ax.set_xticks(n_parts, [str(P) for P in n_parts], fontsize=8)
    ax.minorticks_off()
    ax.set(xlabel="number of partitions P",
           title=f"{task} ({tasks[task]['data'].y_train.size} training images)")
axes[0].set_ylabel("median certified flips")
axes[0].legend(loc="best")
fig.tight_layout()
glue("ch31_medians_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch31_medians_fig
# :name: fig-ch31-medians
#
# Median certified flips (misclassified test points count as $-1$) against the number of
# partitions: EnsembleCert (circles) and DPA (open squares, dashed) of the same ensembles.
# ```

# %% [markdown]
# ## How loose are the multi-class costs?
#
# For ten classes, a part's cost $\kappa_{p,c}$ is the ScaLabelCert value "class $c$
# overtakes the current vote", a lower bound on the fewest flips that make the part predict
# exactly $c$. A lower bound keeps EnsembleCert sound; how much certificate it gives away
# can be measured where brute force is possible. `measure_ensemble_looseness` builds small
# random ensembles (Gaussian points, an RBF kernel, KRR base models with ridge 1, parts of a
# few points), retrains every base model on every relabelling of its part to get the exact
# costs, and compares both the costs and the ensemble certificates with the exact ones.

# %%
looseness_cases = [  # (classes, points per part, random ensembles); about 7 s in all
    (3, 4, 100), (3, 6, 40), (10, 3, 20)]
looseness = {}
for n_cls, size, n_inst in looseness_cases:
    looseness[n_cls, size] = measure_ensemble_looseness(
        n_inst, n_classes=n_cls, n_parts=5, part_size=size, n_test=4, model="krr",
        ridge=1.0, seed=seed)
looseness_table = pd.DataFrame([
    {"classes": n_cls, "points per part": size, "ensembles": rep.n_instances,
     "costs measured": rep.n_costs, "costs below exact (%)": 100 * rep.share_costs_loose,
     "largest cost gap": rep.max_cost_gap, "test points": rep.n_points,
     "certificates below exact (%)": 100 * rep.share_certs_loose,
     "largest certificate gap": float(rep.cert_gaps.max())}
    for (n_cls, size), rep in looseness.items()])
reports_l = list(looseness.values())
glue("ch31_loose_costs_min", float(min(100 * r.share_costs_loose for r in reports_l)),
     display=False)
glue("ch31_loose_costs_max", float(max(100 * r.share_costs_loose for r in reports_l)),
     display=False)
glue("ch31_loose_cost_gap", float(max(r.max_cost_gap for r in reports_l)), display=False)
certs_loose = sum(r.certs_loose for r in reports_l)
n_points = sum(r.n_points for r in reports_l)
cert_gap = max(float(r.cert_gaps.max()) for r in reports_l)
glue("ch31_loose_certs", Markdown(
    f"none of the {n_points} ensemble certificates is below the exact one"
    if certs_loose == 0 else
    f"{certs_loose} of the {n_points} ensemble certificates are below the exact one, by "
    f"at most {cert_gap:g} flip{'s' if cert_gap > 1 else ''}"), display=False)
looseness_table.style.format(
    {"costs below exact (%)": "{:.1f}", "largest cost gap": "{:g}",
     "certificates below exact (%)": "{:.1f}", "largest certificate gap": "{:g}"}
).hide(axis="index")

# %% [markdown]
# Between {glue:text}`ch31_loose_costs_min:.1f`% and
# {glue:text}`ch31_loose_costs_max:.1f`% of the per-part costs are below the exact ones (the
# largest gap, in flips, is {glue:text}`ch31_loose_cost_gap:g`); none is ever above (that
# would be a soundness bug, and the measurement raises). In the ensemble it matters much
# less: {glue:md}`ch31_loose_certs`, because the cheapest way to change the vote rarely
# goes through a part whose bound is loose. These are tiny ensembles; at the chapter's
# scale the exact costs are out of reach.
#
# ## The paper's claim, checked at this scale
#
# The paper reports that on CIFAR-10 (SimCLR features, 50000 training images) EnsembleCert
# with 10 partitions certifies up to **26.5 % more** label flips in median than black-box
# SS-DPA with 1000 partitions: 100 times fewer partitions and a better certificate. Here the
# training sets have {glue:text}`ch31_n_train_mnist` (MNIST-10) and
# {glue:text}`ch31_n_train_bin` (1 vs 7) images, so "100 times fewer" can only be tested as
# $P$ against $100P$ for the smallest $P$; we also compare the best median of each method
# over all $P$.

# %% tags=["remove-cell"]
glue("ch31_n_train_mnist", int(tasks["MNIST-10"]["data"].y_train.size), display=False)
glue("ch31_n_train_bin", int(tasks["1 vs 7"]["data"].y_train.size), display=False)
glue("ch31_P_max", int(max(n_parts)), display=False)
glue("ch31_part_size_max", float(tasks["MNIST-10"]["data"].y_train.size / max(n_parts)),
     display=False)

# %%
claim_rows, best = [], {}  # best[task]: certlab.poisoning.ensembles.MedianComparison
for task in tasks:
    b = best[task] = compare_median_certificates(
        {P: results[task, P]["ensemble"] for P in n_parts},
        {P: results[task, P]["dpa"] for P in n_parts})
    claim_rows.append({"task": task, "comparison": "best of each over all P",
                       "EnsembleCert": f"{b.best_ensemble:.1f} (P = {b.best_ensemble_parts})",
                       "DPA": f"{b.best_dpa:.1f} (P = {b.best_dpa_parts})",
                       "change (%)": b.best_change})
    for P, change in b.p_vs_100p.items():
        claim_rows.append({"task": task, "comparison": f"P = {P} vs 100 P",
                           "EnsembleCert": f"{results[task, P]['ensemble']:.1f} (P = {P})",
                           "DPA": f"{results[task, 100 * P]['dpa']:.1f} (P = {100 * P})",
                           "change (%)": change})
for key_task, tag in (("1 vs 7", "bin"), ("MNIST-10", "mnist")):
    b = best[key_task]
    glue(f"ch31_best_e_{tag}", b.best_ensemble, display=False)
    glue(f"ch31_best_e_P_{tag}", b.best_ensemble_parts, display=False)
    glue(f"ch31_best_d_{tag}", b.best_dpa, display=False)
    glue(f"ch31_best_d_P_{tag}", b.best_dpa_parts, display=False)
    glue(f"ch31_best_change_{tag}", b.best_change, display=False)
equal_from = [P for i, P in enumerate(n_parts)
              if all(results["MNIST-10", Q]["ensemble"] == results["MNIST-10", Q]["dpa"]
                     for Q in n_parts[i:])]
glue("ch31_coincide_mnist",
     Markdown(f"coincide from P = {equal_from[0]} on" if equal_from
              else "differ at every P of this run"), display=False)
pd.DataFrame(claim_rows).style.format({"change (%)": "{:+.1f}"}).hide(axis="index")

# %% [markdown]
# How robust a single NTK model is depends strongly on its regularisation. With a large ridge,
# KRR averages many labels and each flip moves the prediction little; with a small one it
# interpolates and a few labels decide. The single model ($P = 1$, where EnsembleCert is
# ScaLabelCert itself) shows the trade-off between clean accuracy and certified flips:

# %%
sweep = {}
for task, t in tasks.items():
    for ridge in ridge_sweep:
        d = t["data"]
        res = certify_partition_ensemble_blocks(t["kernel_blocks"],
                                                d.y_test.size, d.y_train,
                                                np.zeros(d.y_train.size,
                                                         dtype=np.int64), 1,
                                                n_classes=t["n_classes"],
                                                ridge=ridge)
        correct = res.predictions == d.y_test
        sweep[task, ridge] = (float(correct.mean()),
                              median_certified_flips(res.ensemble_cert,
                                                     correct))

# %%
pd.DataFrame([{"task": task, "ridge": ridge, "clean accuracy": sweep[task, ridge][0],
               "median certified flips (P = 1)": sweep[task, ridge][1]}
              for task in tasks for ridge in ridge_sweep],
             columns=["task", "ridge", "clean accuracy",
                      "median certified flips (P = 1)"]).style.format(
    {"ridge": "{:g}", "clean accuracy": "{:.3f}",
     "median certified flips (P = 1)": "{:.1f}"}).hide(axis="index")

# %%
fig, ax = plt.subplots(figsize=(6, 3.8))
for task, marker in zip(tasks if ridge_sweep else [], "os"):
    acc = [sweep[task, r][0] for r in ridge_sweep]
    med = [sweep[task, r][1] for r in ridge_sweep]
    ax.plot(acc, med, marker + "-", label=task)
    for r, a, m in zip(ridge_sweep, acc, med):
        ax.annotate(f"{r:g}", (a, m), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
ax.set(xlabel="clean accuracy", ylabel="median certified flips (P = 1)",
       title="Single NTK-KRR model: ridge trades accuracy for robustness")
if ridge_sweep:
    ax.legend(loc="best")
else:
    ax.text(0.5, 0.5, "ridge sweep skipped (ridge_sweep = [])", ha="center",
            transform=ax.transAxes)
fig.tight_layout()
glue("ch31_ridge_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch31_ridge_fig
# :name: fig-ch31-ridge
#
# Clean accuracy against median certified flips of a single NTK-KRR model ($P = 1$, where
# EnsembleCert is ScaLabelCert), one point per ridge (annotated).
# ```

# %% [markdown]
# **What we find, and why it differs from the paper.** On binary 1-vs-7, the best
# EnsembleCert median ({glue:text}`ch31_best_e_bin:.1f` flips at
# $P =$ {glue:text}`ch31_best_e_P_bin`) exceeds the best black-box DPA median
# ({glue:text}`ch31_best_d_bin:.1f` at $P =$ {glue:text}`ch31_best_d_P_bin`), a change of
# {glue:text}`ch31_best_change_bin:+.1f`%: the direction of the paper's claim, with a
# smaller margin. Against DPA with exactly 100
# times more partitions, EnsembleCert with one or two partitions loses at the default ridge;
# but the ridge sweep shows that a strongly regularised single model certifies a larger
# median than the best DPA ensemble of the table, at a small cost in clean accuracy. On
# MNIST-10 the two medians {glue:md}`ch31_coincide_mnist`, the best medians need
# the most partitions ({glue:text}`ch31_best_e_mnist:.1f` for EnsembleCert at
# $P =$ {glue:text}`ch31_best_e_P_mnist`, {glue:text}`ch31_best_d_mnist:.1f` for DPA at
# $P =$ {glue:text}`ch31_best_d_P_mnist`: {glue:text}`ch31_best_change_mnist:+.1f`%), and
# the white-box gain at small $P$ does not make up for the smaller vote margins. Reasons for
# the gap to the paper's +26.5 %:
#
# * **Scale.** {glue:text}`ch31_n_train_mnist` training images instead of 50000-60000: at
#   $P =$ {glue:text}`ch31_P_max` a part holds about {glue:text}`ch31_part_size_max:.0f`
#   images, while the paper's 1000-partition DPA on CIFAR-10 has 50 per part, and its
#   10-partition EnsembleCert 5000 per part. The paper's comparison is in a regime of much
#   larger parts than we can reach with dense kernels on one CPU.
# * **Features.** PCA of pixels instead of SimCLR / RotNet features: the self-supervised
#   features separate the classes far better, so each base model has larger margins and more
#   flips are needed to move it; the white-box certificate profits directly from that.
# * **Multi-class costs.** Our per-part costs for ten classes are exact per rival but only
#   lower bounds for "predict exactly $c$"; a lower bound can only shrink EnsembleCert, and
#   on the small cases above it rarely does.
# * **Base learner and its regularisation.** We use NTK-KRR with a fixed ridge (the SVM is
#   linear in the labels only for a tiny $C$); the ridge sweep shows how much the answer
#   moves with it. The paper's hyperparameters are not public (the code is not released).

# %% [markdown]
# ## What CI checks on every machine
#
# Kernels, KRR solves and certificates are exact double-precision computations on fixed data,
# so CI checks the certificates as they are: the fewest flips of the MILP comparison, and per
# number of partitions the correct test points and the median certified flips (a median of
# integers, written as a fraction). The ordering EnsembleCert >= DPA is checked on every test
# point.

# %% tags=["nbval-check-output"]
def median_value(value):
    """A median of integer flip counts, exactly (an integer or a half-integer, or inf)."""
    return Fraction(value) if np.isfinite(value) else "inf"


key = KeyResults("31_ensemble_certificates")
for task, t in tasks.items():
    d = t["data"]
    key.exact(f"{task}: training images, test images, classes, features",
              [d.x_train.shape[0], d.x_test.shape[0], t["n_classes"], d.x_train.shape[1]])
for model, row in comparison.items():
    key.exact(f"{model}: fewest flips (closed form)", row["closed_form"])
    key.claim(f"{model}: closed form == MILP on all {milp_test} test points",
              np.array_equal(row["closed_form"], row["milp"]))
for task in tasks:
    for P in n_parts:
        r = results[task, P]
        key.exact(f"{task}, P = {P}: correct test points, median EnsembleCert, median DPA",
                  [int(r["correct"].sum()), median_value(r["ensemble"]), median_value(r["dpa"])])
    key.claim(f"{task}: EnsembleCert >= DPA on every test point and every P",
              all(np.all(results[task, P]["res"].ensemble_cert >= results[task, P]["res"].dpa)
                  for P in n_parts))
    for ridge in ridge_sweep:
        key.exact(f"{task}, P = 1, ridge {ridge:g}: median certified flips",
                  median_value(sweep[task, ridge][1]))
key.claim("brute force: no per-part cost is above the exact cost (sound lower bounds)",
          all(r.n_costs > 0 for r in looseness.values()))
key.claim("brute force: EnsembleCert is never above the exact certificate",
          all(np.all(r.cert_gaps >= 0) for r in looseness.values()))
key.report()

# %% [markdown]
# ## Our numbers next to the paper's
#
# "Ours at paper scale" is read from the committed paper-scale runs of this chapter
# (`results/paper/31_ensemble_certificates/`, see `certlab.records.stored_runs`) and never
# recomputed here.

# %% tags=["hide-input"]
TAGS = {"1 vs 7": "1vs7", "MNIST-10": "mnist10"}  # task -> record name


def headline_values(comparisons, closed_form_equals_milp, ensemble_ge_dpa):
    """The record's headline from {task: MedianComparison} (this run's, or merged from stored
    runs that each certified some P)."""
    values = {"closed_form_equals_milp": bool(closed_form_equals_milp),
              "ensemble_ge_dpa": bool(ensemble_ge_dpa)}
    for task, tag in TAGS.items():
        values[f"best_change_{tag}"] = comparisons[task].best_change
        values[f"best_ensemble_{tag}"] = comparisons[task].best_ensemble
        # the paper's own comparison: EnsembleCert with P partitions against DPA with 100 P
        values[f"p_vs_100p_change_{tag}"] = {str(P): v for P, v in
                                              comparisons[task].p_vs_100p.items()}
    return values


def finite_or_inf(value):
    """A median for JSON: the float, or "inf" (float("inf") reads it back)."""
    return float(value) if np.isfinite(value) else "inf"


headline = headline_values(best, all_same, all(
    np.all(results[t, P]["res"].ensemble_cert >= results[t, P]["res"].dpa)
    for t in tasks for P in n_parts))
# the medians per task and P: runs that each certify some P (a sweep over n_parts) merge
save_record({"headline": headline,
             "medians": {tag: {str(P): [finite_or_inf(results[task, P]["ensemble"]),
                                        finite_or_inf(results[task, P]["dpa"])]
                               for P in n_parts}
                         for task, tag in TAGS.items()}})

paper_command = paper_scale_command("31_ensemble_certificates")  # from certlab.chapters
glue("ch31_paper_command", Markdown(f"```bash\n{paper_command}\n```"), display=False)
stored = stored_runs("31_ensemble_certificates")


def run_scale(parameters):
    """' (all training / 1,000 test images per task, P = 10, 50, 100)' from a stored run's
    parameters."""
    train, test = parameters.get("n_train", 0), parameters.get("n_test", 0)
    return (f" ({'all' if not train else f'{train:,}'} training / "
            f"{'all' if not test else f'{test:,}'} test images per task, "
            f"P = {', '.join(map(str, parameters['n_parts']))})")


def merged_stored_runs():
    """[(headline, parameters, medians, sizes)] of the stored runs; runs that differ only in
    n_parts (a sweep's pieces, each certifying some P) merge into one: their medians compared
    over all their P (a P certified twice must agree), n_parts the union. `medians`:
    {task: ({P: EnsembleCert median}, {P: DPA median})}, None for a run stored before the
    records held them; `sizes`: {task: (training images, test images)} from the run's key
    results."""
    merged = []
    for runs in group_runs(stored, vary="n_parts"):
        if any("medians" not in run["values"] for run in runs):
            merged += [(run["values"].get("headline", {}), run["parameters"], None,
                        task_sizes(run)) for run in runs]
            continue
        medians = {task: merge_median_tables([run["values"]["medians"][tag] for run in runs])
                   for task, tag in TAGS.items()}
        comparisons = {task: compare_median_certificates(*medians[task]) for task in TAGS}
        headlines = [run["values"]["headline"] for run in runs]
        merged.append((headline_values(
            comparisons, all(h["closed_form_equals_milp"] for h in headlines),
            all(h["ensemble_ge_dpa"] for h in headlines)),
            {**runs[0]["parameters"],
             "n_parts": sorted({P for run in runs for P in run["parameters"]["n_parts"]})},
            medians, task_sizes(runs[0])))
    return merged


def task_sizes(run):
    """{task: (training images, test images)} of a stored run, from its key results."""
    exact = run["values"].get("key_results", {}).get("exact", {})
    keys = {task: f"{task}: training images, test images, classes, features" for task in TAGS}
    return {task: tuple(exact[key][:2]) for task, key in keys.items() if key in exact}


def at_paper_scale(name, fmt):
    """The value `name` of every stored paper-scale run (with its scale; runs of one P
    each merged), or how to produce one."""
    values = [(headline.get(name), parameters) for headline, parameters, _, _
              in merged_stored_runs()]
    values = [fmt(v) + run_scale(p) for v, p in values if v is not None]
    if not values:
        return "not run yet (command under Reproduce at paper scale)"
    return "; ".join(values)


def pct(v):
    return f"{v:+.1f}%"


def yes_no(v):
    return "yes" if v else "no"


def pct_p_vs_100p(changes):
    """'-31.2% (P = 1 vs 100); ...' from {P: change}, or why there is none."""
    if not changes:
        return "no P with 100 P in this run"
    return "; ".join(f"{pct(v)} (P = {P} vs {100 * int(P)})" for P, v in changes.items())


why_scale = (f"{tasks['MNIST-10']['data'].y_train.size} MNIST images (PCA features), "
             f"P up to {max(n_parts)} vs 50000 CIFAR-10 images (SimCLR), P = 10 vs 1000")
pd.DataFrame([
    {"quantity": "median certified flips, EnsembleCert with P vs black-box DPA with 100 P, "
                 "1 vs 7",
     "paper's number": "+26.5% (CIFAR-10, P = 10 vs SS-DPA P = 1000)",
     "ours at this run's scale": pct_p_vs_100p(best["1 vs 7"].p_vs_100p),
     "ours at paper scale": at_paper_scale("p_vs_100p_change_1vs7", pct_p_vs_100p),
     "scale and why they differ": why_scale},
    {"quantity": "the same, MNIST-10",
     "paper's number": "+26.5% (CIFAR-10, as above)",
     "ours at this run's scale": pct_p_vs_100p(best["MNIST-10"].p_vs_100p),
     "ours at paper scale": at_paper_scale("p_vs_100p_change_mnist10", pct_p_vs_100p),
     "scale and why they differ": why_scale + "; ten classes make the costs lower bounds"},
    {"quantity": "best median of each method over all P, EnsembleCert vs DPA, 1 vs 7",
     "paper's number": "not reported (the paper compares P = 10 with 1000)",
     "ours at this run's scale": f"{pct(best['1 vs 7'].best_change)} (EnsembleCert "
                                 f"P = {best['1 vs 7'].best_ensemble_parts} vs DPA "
                                 f"P = {best['1 vs 7'].best_dpa_parts})",
     "ours at paper scale": at_paper_scale("best_change_1vs7", pct),
     "scale and why they differ": "a comparison of our own, at any P"},
    {"quantity": "the same, MNIST-10",
     "paper's number": "not reported (as above)",
     "ours at this run's scale": f"{pct(best['MNIST-10'].best_change)} (EnsembleCert "
                                 f"P = {best['MNIST-10'].best_ensemble_parts} vs DPA "
                                 f"P = {best['MNIST-10'].best_dpa_parts})",
     "ours at paper scale": at_paper_scale("best_change_mnist10", pct),
     "scale and why they differ": "a comparison of our own, at any P"},
    {"quantity": "ScaLabelCert equals the exact MILP",
     "paper's number": "yes (exact by construction)",
     "ours at this run's scale": f"{yes_no(all_same)} ({milp_test} test points; "
                                 f"{min(speedup.values()):.0f}x to "
                                 f"{max(speedup.values()):.0f}x faster)",
     "ours at paper scale": at_paper_scale("closed_form_equals_milp", yes_no),
     "scale and why they differ": f"{milp_train} labeled images: the MILP limits the size"},
    {"quantity": "EnsembleCert >= DPA on every test point",
     "paper's number": "yes (theorem)",
     "ours at this run's scale": yes_no(headline["ensemble_ge_dpa"]),
     "ours at paper scale": at_paper_scale("ensemble_ge_dpa", yes_no),
     "scale and why they differ": "holds at every scale"},
]).style.hide(axis="index")

# %% [markdown]
# The stored runs on every MNIST training image, drawn like {numref}`fig-ch31-medians`
# (the runs that store their medians per $P$; the paper's comparison marked):

# %% tags=["hide-input"]
full_runs = [(parameters, medians, sizes) for _, parameters, medians, sizes
             in merged_stored_runs() if medians is not None]
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.3))
for parameters, medians, _ in full_runs:
    for ax, (task, (ensemble, dpa)) in zip(axes, medians.items()):
        parts = sorted(ensemble)
        scale = run_scale(parameters).strip(" ()").split(", P =")[0]
        ax.plot(parts, [ensemble[P] for P in parts], "o-", lw=2,
                label=f"EnsembleCert ({scale})" if len(full_runs) > 1 else "EnsembleCert")
        ax.plot(parts, [dpa[P] for P in parts], "s--", mfc="none", ms=7,
                label=f"DPA ({scale})" if len(full_runs) > 1 else "DPA")
        if 10 in ensemble and 1000 in dpa:  # the paper's P = 10 vs 1000
            ax.annotate("", xy=(1000, dpa[1000]), xytext=(10, ensemble[10]),
                        arrowprops=dict(arrowstyle="<->", color="0.5", lw=1, ls=":"))
        ax.set_xscale("log")
        ax.set_xticks(parts, [str(P) for P in parts], fontsize=8)
        ax.minorticks_off()
        ax.set(xlabel="number of partitions P", title=task)
axes[0].set_ylabel("median certified flips")
if full_runs:
    axes[0].legend(loc="upper left", fontsize=8)
fig.tight_layout()
glue("ch31_stored_medians_fig", fig, display=False)
plt.close(fig)
stored_reading, part_sizes, dpa_ahead = [], [], []
for parameters, medians, sizes in full_runs[:1]:
    for task, (ensemble, dpa) in medians.items():
        if 10 in ensemble and 1000 in dpa:
            dpa_ahead.append(dpa[1000] > ensemble[10])
            stored_reading.append(
                f"{task}: EnsembleCert with P = 10 certifies a median of {ensemble[10]:g} "
                f"flips, DPA with P = 1000 {dpa[1000]:g} (DPA with P = 10: {dpa[10]:g})")
            if task in sizes:
                part_sizes.append(f"{sizes[task][0] / 1000:.0f} ({task})")
glue("ch31_stored_reading", Markdown(
    ("In the stored run" + run_scale(full_runs[0][0]) + ": " + "; ".join(stored_reading)
     + ". With P = 1000 every part holds about " + " or ".join(part_sizes)
     + " training images, and "
     + ("the vote margin of 1000 small models certifies more flips than the white-box costs "
        "of 10 large ones: the black-box certificate grows with P, and the white-box one "
        "does not make up a factor of 100 in P on these features." if all(dpa_ahead) else
        "EnsembleCert with 10 parts is ahead of DPA with 1000 in "
        f"{sum(not a for a in dpa_ahead)} of the {len(dpa_ahead)} tasks, as in the paper.")
     if stored_reading else "No stored run holds both P = 10 and P = 1000 yet.")),
     display=False)

# %% [markdown]
# ```{glue:figure} ch31_stored_medians_fig
# :name: fig-ch31-stored-medians
#
# Median certified flips against the number of partitions in the stored runs on every MNIST
# training and test image: EnsembleCert (circles) and DPA (open squares, dashed). The dotted
# arrow joins EnsembleCert with $P = 10$ and DPA with $P = 1000$, the paper's comparison.
# ```
#
# {glue:md}`ch31_stored_reading`
#
# ## Reproduce at paper scale
#
# `n_train 0` and `n_test 0` use every MNIST image of the task's digits (60000 / 10000 for
# MNIST-10, 13007 / 2163 for 1-vs-7). Kernels are built part by part
# (`certify_partition_ensemble_blocks` with `mlp_ntk_blocks`), so the full training set fits
# in memory once every part is small enough for its own dense kernel (P >= 10 for 60000);
# $P = 1$ and the single-model ridge sweep need the whole $n \times n$ kernel and are left
# out at that size. The cost table has P x n_test x 10 entries (800 MB at P = 1000 and
# 10000 test images):
#
# ```{glue:md} ch31_paper_command
# :format: myst
# ```
#
# `sweeps/31_paper_scale.yaml` runs the same in three pieces on Dask, one per worker
# ($P = 10$ with $1000$, so that the paper's comparison sits in one record; $50$ with $500$;
# $100$): the comparison table above merges stored runs that differ only in `n_parts`,
# comparing their medians over all their $P$.
#
# A second run, with the two tasks' ridges swapped:
#
# ```bash
# python -m certlab.run notebooks/31_ensemble_certificates.py \
#     -p ridge_binary 1.0 -p ridge_mnist 10.0
# ```
