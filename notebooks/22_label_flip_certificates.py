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
# # Exact certificates against label flipping
#
# The previous chapter turned wide GNNs into kernel machines: training a sufficiently wide
# network with the hinge loss is the bias-free SVM on its neural tangent kernel $\Theta$. Now
# the attacker enters. Before training, they flip up to $k$ of the $m$ training labels
# $y \in \{-1,+1\}^m$; the learner then trains on the poisoned labels $\tilde y$. A test
# prediction is **certified** against $k$ flips if no such $\tilde y$ changes it
# {cite}`sabanayagam2025`:
#
# $$
# \begin{aligned}
# &\min_{\tilde y:\ \|\tilde y - y\|_0 \le k}\; \hat y_t\, f_{\tilde y}(x_t) > 0,
#   \qquad \text{where} \\
# &f_{\tilde y}(x) = \sum_{j} \tilde y_j\, \alpha^{\tilde y}_j\, \Theta(x, x_j), \\
# &\alpha^{\tilde y} \in \arg\min_{0 \le \alpha \le C}
#   \tfrac12 \alpha^\top (\tilde y \tilde y^\top \odot \Theta_{LL}) \alpha
#   - \mathbf 1^\top \alpha .
# \end{aligned}
# $$
#
# This is a *bilevel* problem: the inner training problem depends on the outer choice. Because
# the inner problem is a convex quadratic program, its KKT conditions characterise its
# solutions exactly. Replacing it by them gives a single-level problem (the paper's Eq. 6-8):
#
# $$
# \begin{aligned}
# &\tilde y_i \textstyle\sum_j \Theta_{ij} \tilde y_j \alpha_j - u_i + v_i = 1, \\
# &u_i \le M^u_i s_i,\quad \alpha_i \le C(1 - s_i), \\
# &v_i \le M^v_i t_i,\quad C - \alpha_i \le C(1 - t_i), \\
# &\textstyle\sum_i [\tilde y_i \ne y_i] \le k,
# \end{aligned}
# $$
#
# with binaries $s, t$ for complementarity, tight big-M constants
# $M^u_i = \max(0, C\sum_j|\Theta_{ij}| - 1)$, $M^v_i = C\sum_j|\Theta_{ij}| + 1$, and the
# products of binary labels with bounded continuous variables linearised exactly. The result
# is a mixed-integer linear program (MILP) whose optimum is the **exact** worst case, not a
# bound. Two certificates follow:
#
# * **sample-wise**: for each test node separately, the fewest flips that change it
#   (`certlab.poisoning.min_label_flips`), or per budget the worst-case margin with a status
#   "certified" / "not certified" / "unknown" (`certify_samplewise`);
# * **collective**: one flip set for all test nodes at once; the most predictions it can
#   change (`collective_flips`), so the *certified ratio* is $1 - \text{that}/n_\text{test}$.
#
# The library offers three exact methods behind one API: the MILP (ortools), brute-force
# enumeration of every flip set with exact retraining (feasible for the paper's 20 labeled
# nodes and small budgets) and, where the model is linear in the labels, the closed form of
# the next part {cite}`mohgaonkar2026`. `method="auto"` takes the fastest that applies; the
# tests check that all three agree wherever they all run.

# %% tags=["parameters"]
# Parameters (papermill): CPU-scale defaults.
n_csbm = 200  # CSBM nodes (the paper: 200, with 40 labeled)
real_graph = "cora_ml"  # "cora_ml" (Cora-MLb) or "citeseer" (Citeseerb)
n_seeds = 2  # data / split seeds of the sample-wise tables (the paper: 5)
published_seeds = 5  # seeds of the Cora-MLb table with the authors' kernels (0: skip; paper: 5)
max_flips = 3  # largest sample-wise budget (the paper's tables: 1, 2, 3)
collective_architectures = ["GCN"]  # architectures of the collective curve on the real graph
collective_seeds = 1  # seeds of the collective curve (the paper: 5)
n_collective_nodes = 50  # random unlabeled nodes of the collective certificate (the paper: 50)
collective_max_fraction = 0.5  # largest collective budget, as a fraction of the labels
csbm_collective_architectures = []  # CSBM collective curves by the MILP ([]: skipped)
csbm_collective_seeds = 1  # seeds of the CSBM collective curves (the paper: 5)
n_csbm_collective_nodes = 20  # random CSBM test nodes certified collectively (the paper: 50)
csbm_collective_time_limit = 20.0  # wall-clock s per MILP solve of one CSBM budget
n_milp_nodes = 2  # test nodes certified by the MILP beside enumeration (5-25 s each)
milp_budgets = [1]  # budgets of the MILP demonstration (the paper: 1, 2, 3)
citeseer_table = True  # also the Citeseerb sample-wise table (n_seeds seeds, all nodes)
multiclass_per_class = 4  # labels per class on the 7-class Cora-ML (all attackable)
multiclass_max_flips = 2  # largest budget of the exact multi-class certificates
multiclass_milp_per_class = 4  # labels per class of the 3-class MILP check (MILP size!)
n_multiclass_milp_nodes = 2  # nodes of the multi-class MILP-vs-enumeration check
beyond_paper_labels = 60  # CSBM labels of the MILP beyond the paper (its largest: 40)
n_beyond_nodes = 5  # test nodes certified there by the MILP
beyond_max_flips = 5  # budgets 1..beyond_max_flips decided per node
beyond_C = 0.01  # SVM C there (10x the paper's CSBM C: outside the linear regime)
beyond_check_flips = 2  # budgets cross-checked by enumeration (60 labels: 1831 labellings)
beyond_time_limit = 60.0  # wall-clock seconds per MILP solve; a timeout is "unknown"
device = "auto"  # everything here runs on the CPU (kernels and MILPs)
seed = 0

# %% tags=["remove-cell"]
from certlab.parameters import validate_chapter_parameters

validate_chapter_parameters("22_label_flip_certificates", globals())

# %% tags=["hide-input"]
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from IPython.display import Markdown, display
from myst_nb import glue

from certlab.checks import KeyResults
from certlab.graphs.binary_subsets import label_flip_split, load_binary_graph
from certlab.graphs.csbm import csbm_split, sample_csbm
from certlab.ntk import gnn_ntk
from certlab.poisoning.certificates import (certified_fraction,
                                            certify_samplewise,
                                            collective_flips_curve,
                                            min_label_flips)
from certlab.poisoning.enumeration import count_flip_sets
from certlab.poisoning.svm import fit_svm, select_C_cv
from certlab.plotting import use_book_style
from certlab.records import save_record, stored_runs
from certlab.utils import seed_everything

use_book_style()

rng = seed_everything(seed)
print(f"running on {device} (kernels and MILPs are CPU code)")

from certlab.ntk import PAPER_ARCHITECTURES as ARCHITECTURES
# the authors' C per architecture (previous chapter); CSBM: C = 0.001 for all
from certlab.ntk import PAPER_C_CORA_MLB as PAPER_C_REAL
from certlab.ntk import PAPER_C_CSBM
for _name in collective_architectures:
    if _name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {_name!r} in collective_architectures; "
                         f"choose from {list(ARCHITECTURES)}")
# parameter values that the prose quotes
for _param in ("n_seeds", "n_beyond_nodes", "beyond_time_limit", "n_collective_nodes",
               "collective_max_fraction", "collective_seeds", "multiclass_per_class",
               "multiclass_milp_per_class", "n_multiclass_milp_nodes"):
    glue(f"ch22_p_{_param}", globals()[_param], display=False)

# %% [markdown]
# ## Data and kernels
#
# As in the previous chapter: the CSBM with the paper's parameters (40 labeled nodes, 160
# test nodes) and the binary Cora-MLb graph with 5 + 5 labeled nodes per class (20 labels, all
# attackable, {glue:text}`ch22_real_unlabeled` unlabeled nodes). Every labeled node, training
# or validation, can be flipped. The NTK of the whole graph is computed once per architecture.

# %%
real = load_binary_graph(real_graph)
real_label = {"cora_ml": "Cora-MLb", "citeseer": "Citeseerb"}[real_graph]
kernels_real = {name: gnn_ntk(real.adj, real.features, **kw)
                for name, kw in ARCHITECTURES.items()}

# %%
print(f"{real_label}: {real.num_nodes} nodes, {real.num_edges} edges; "
      f"CSBM: {n_csbm} nodes; seeds {seed}..{seed + n_seeds - 1}")
glue("ch22_real_unlabeled", real.num_nodes - 20, display=False)

# %% [markdown]
# ## Sample-wise certificates
#
# For every unlabeled node we compute the fewest label flips that change its prediction,
# capped at `max_flips + 1`. A node counts as **certifiably correct** at budget $k$ if its
# clean prediction is right and it needs more than $k$ flips; the certified accuracy is the
# share of such nodes. On the CSBM the authors' $C = 0.001$ puts most architectures in the
# regime where every dual variable sits at $C$ for any labelling, and the closed form answers;
# elsewhere `method="auto"` enumerates every flip set (at most
# $\sum_{j \le 3}\binom{40}{j} = 10{,}701$ labellings, retrained in batches).

# %%
def samplewise_table(seeds):
    rows = []
    for s in seeds:
        graph = sample_csbm(n_csbm, seed=s)
        split_csbm = csbm_split(graph, seed=s)
        split_real = label_flip_split(real.labels, seed=s)
        for name, kw in ARCHITECTURES.items():
            k_csbm = gnn_ntk(graph.adj, graph.features, **kw)
            for data, K, labels, split, C in (
                    ("CSBM", k_csbm, graph.labels, split_csbm, PAPER_C_CSBM),
                    (real_label, kernels_real[name], real.labels, split_real,
                     PAPER_C_REAL[name])):
                L, T = split.labeled, split.test
                K_train, K_test, y = K[np.ix_(L, L)], K[np.ix_(T, L)], labels[L]
                flips = min_label_flips(K_train, K_test, y, model="svm", C=C,
                                        max_flips=max_flips)
                correct = fit_svm(K_train, y, C).predict(K_test) == labels[T]
                acc = certified_fraction(flips, range(max_flips + 1), correct)
                for k in range(max_flips + 1):
                    rows.append({"data": data, "architecture": name, "seed": s,
                                 "k": k,
                                 "certified_accuracy": 100 * acc[k],
                                 "certified_nodes": int(np.sum(correct & (flips > k)))})
    return pd.DataFrame(rows)


start = time.perf_counter()
samplewise = samplewise_table([seed + s for s in range(n_seeds)])
samplewise_seconds = time.perf_counter() - start
mean_sw = (samplewise.groupby(["data", "architecture", "k"],
                              sort=False)["certified_accuracy"]
           .mean().unstack("k"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.4), sharey=True)
for ax, data in zip(axes, ("CSBM", real_label)):
    for name in ARCHITECTURES:
        ax.plot(range(max_flips + 1), mean_sw.loc[(data, name)], marker="o",
                label=name)
    ax.set(title=f"{data}", xlabel="labels flipped k")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
axes[0].set_ylabel(f"certified accuracy (%)\nmean of {n_seeds} seeds")
handles, labels = axes[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4,
           fontsize=8)
fig.tight_layout()
glue("ch22_samplewise_fig", fig, display=False)
plt.close(fig)
glue("ch22_samplewise_s", samplewise_seconds, display=False)
print(f"all sample-wise certificates: {samplewise_seconds:.1f} s")

# %% [markdown]
# ```{glue:figure} ch22_samplewise_fig
# :name: fig-ch22-samplewise
#
# Sample-wise certified accuracy against the number of flipped labels $k$ for the eight
# architectures, on the CSBM (40 labels) and on the real graph (20 labels); $k = 0$ is the
# clean accuracy. Every point is exact (closed form or enumeration of every flip set).
# ```

# %% [markdown]
# Beside the paper's Cora-MLb table (mean over 5 seeds; ours over {glue:text}`ch22_p_n_seeds`
# (`n_seeds`) seeds of `label_flip_split`, seeds 0, 1, ..., so with fewer seeds than the
# paper single entries can differ by several points):

# %%
from certlab.ntk import PUBLISHED_SAMPLEWISE_CORA_MLB as PAPER_SW

ks = [k for k in (1, 2, 3) if k <= max_flips]
print(f"sample-wise certified accuracy (%) at k = {ks} flipped labels")
sw_rows = []
for name in ARCHITECTURES:
    row = {"architecture": name}
    row["CSBM (40 labels)"] = " / ".join(
        f"{mean_sw.loc[('CSBM', name), k]:.1f}" for k in ks)
    row[f"{real_label} (20 labels)"] = " / ".join(
        f"{mean_sw.loc[(real_label, name), k]:.1f}" for k in ks)
    if real_graph == "cora_ml":
        row["paper Cora-MLb"] = " / ".join(
            f"{v:.1f}" for v in PAPER_SW[name][:len(ks)])
    sw_rows.append(row)
pd.DataFrame(sw_rows).style.hide(axis="index")

# %% [markdown]
# **Hierarchy.** The ranking of the architectures at one and two flips, per data set:

# %%
for data in ("CSBM", real_label):
    for k in [k for k in (1, 2) if k <= max_flips]:
        order = mean_sw.loc[data][k].sort_values(ascending=False, kind="stable")
        print(f"{data:9s} k={k}: " + " > ".join(order.index))

# %% [markdown]
# ## The published table, reproduced
#
# The kernels above follow the paper's text. The authors' code computes its Cora-MLb tables
# with a different configuration (their `config/label_certification_binary/coramlb.yaml`),
# and three differences move the numbers:
#
# 1. **GCN, SGC and both skip variants aggregate with the row-normalised** $D^{-1}(A + I)$,
#    not the symmetric $D^{-1/2}(A + I)D^{-1/2}$ the paper writes;
# 2. **APPNP uses teleport $\alpha = 0$**: ten steps of pure propagation,
#    $S = \hat{A}_{\mathrm{sym}}^{10}$, where our kernel above uses the usual $\alpha = 0.1$;
# 3. **the covariance clamp**: before every ReLU expectation each entry $\Sigma_{ij}$ is
#    lowered to $\min(\Sigma_{ii}, \Sigma_{jj})$, in place, so the clamped covariance also
#    enters $\Sigma \odot \dot{E}$ (the valid bound is $\sqrt{\Sigma_{ii}\Sigma_{jj}}$, see the
#    previous chapter); skip-alpha also keeps their $\Theta$ without the $(1-a)^2$ factor.
#
# `certlab.ntk.published_ntk(adj, features, architecture)` computes these kernels. Below, both
# kernels over {glue:text}`ch22_published_seeds` (`published_seeds`) seeds of
# `label_flip_split` (the same splits for both), with the authors' $C$ values and exact
# certificates:

# %%
from certlab.ntk import published_ntk


def cora_mlb_certified_accuracy(kernel, name, seeds):
    """Mean certified accuracy (%) at budgets 0..max_flips over ``seeds`` (Cora-MLb)."""
    accs = []
    for s in seeds:
        split = label_flip_split(real.labels, seed=s)
        L, T = split.labeled, split.test
        K_train, K_test, y = kernel[np.ix_(L, L)], kernel[np.ix_(T, L)], real.labels[L]
        flips = min_label_flips(K_train, K_test, y, model="svm", C=PAPER_C_REAL[name],
                                max_flips=max_flips)
        correct = fit_svm(K_train, y, PAPER_C_REAL[name]).predict(K_test) == real.labels[T]
        accs.append(certified_fraction(flips, range(max_flips + 1), correct))
    return 100 * np.mean(accs, axis=0)


published_rows, reproduced = [], []
if real_graph == "cora_ml" and published_seeds > 0:
    pub_seeds = range(seed, seed + published_seeds)
    start = time.perf_counter()
    for name in ARCHITECTURES:
        described = cora_mlb_certified_accuracy(kernels_real[name], name, pub_seeds)
        as_published = cora_mlb_certified_accuracy(
            published_ntk(real.adj, real.features, name), name, pub_seeds)
        paper = PAPER_SW[name][:len(ks)]
        if all(abs(round(as_published[k], 1) - p) < 0.05 for k, p in zip(ks, paper)):
            reproduced.append(name)
        published_rows.append({
            "architecture": name,
            "paper": " / ".join(f"{v:.1f}" for v in paper),
            "ours, kernel as published": " / ".join(f"{as_published[k]:.1f}" for k in ks),
            "ours, kernel as described": " / ".join(f"{described[k]:.1f}" for k in ks)})
    published_seconds = time.perf_counter() - start
    glue("ch22_n_reproduced", len(reproduced), display=False)
    missing = [n for n in ARCHITECTURES if n not in reproduced]
    glue("ch22_not_reproduced", Markdown(
        "not reproduced: " + ", ".join(missing) if missing else "all of them"),
        display=False)
    glue("ch22_published_seeds", published_seeds, display=False)
    published_table = pd.DataFrame(published_rows).style.hide(axis="index")
    display(published_table)
else:  # another graph, or skipped: say so where the table would be
    glue("ch22_n_reproduced", 0, display=False)
    glue("ch22_not_reproduced", Markdown("not run: `published_seeds` = 0 or not Cora-MLb"),
         display=False)
    glue("ch22_published_seeds", published_seeds, display=False)
    print("not run (Cora-MLb only, published_seeds > 0)")

# %% [markdown]
# The table: Cora-MLb sample-wise certified accuracy (%) at 1 / 2 / 3 flipped labels, mean
# over those seeds, published and ours with both kernels (same splits, $C$ and exact
# certificates). With the authors' kernels, {glue:text}`ch22_n_reproduced` of the 8 architectures reproduce
# the published table to the printed 0.1 point over {glue:text}`ch22_published_seeds` seeds
# ({glue:md}`ch22_not_reproduced`). The paper's numbers therefore come from this pipeline, and
# the gaps of the first table are the kernel configuration, not the certificate: APPNP
# without teleport propagates ten hops and certifies far more nodes at one flip, and the
# row-normalised GCN, SGC and skip-alpha certify more at every budget than their symmetric
# versions. Which of the three differences matters where can be explored with
# `gnn_ntk(..., normalization=..., appnp_alpha=..., covariance_clamp=...)`. We keep the
# kernels the paper describes as the book's default, because they are the infinite-width NTKs of the
# architectures as written (the finite-width check of the previous chapter), and show the
# published configuration as what it is.

# %% [markdown]
# ## The MILP beside enumeration
#
# The enumeration above is the brute-force ground truth; the paper's MILP must give the same
# answers. For a few Cora-MLb test nodes we run the per-budget MILP (`certify_samplewise`,
# solved with HiGHS through ortools) for GCN and compare its status with the enumerated
# fewest flips: a node is certified at budget $k$ exactly when it needs more than $k$ flips.
# Every worst-case flip set the MILP returns is retrained exactly, and a solve stopped by a
# time limit reports "unknown", never "certified".

# %%
split0 = label_flip_split(real.labels, seed=seed)
L0, T0 = split0.labeled, split0.test[:n_milp_nodes]
K = kernels_real["GCN"]
K_train, K_test, y0 = K[np.ix_(L0, L0)], K[np.ix_(T0, L0)], real.labels[L0]
C = PAPER_C_REAL["GCN"]
start = time.perf_counter()
enum_flips = min_label_flips(K_train, K_test, y0, C=C,
                             max_flips=max(milp_budgets),
                             method="enumerate")
enum_seconds = time.perf_counter() - start
milp_rows = []
start = time.perf_counter()
for budget in milp_budgets:
    for cert in certify_samplewise(K_train, K_test, y0, C=C, budget=budget,
                                   time_limit=120):
        milp_rows.append({"node": int(T0[cert.index]), "budget": budget,
                          "milp status": cert.status,
                          "enumeration": "certified" if enum_flips[cert.index] > budget
                          else "not certified",
                          "worst margin": round(cert.worst_case_margin, 4),
                          "flips used": cert.n_flips,
                          "HiGHS s": cert.solve_time_s})
milp_seconds = time.perf_counter() - start
milp_table = pd.DataFrame(milp_rows, columns=["node", "budget", "milp status", "enumeration",
                                              "worst margin", "flips used", "HiGHS s"])

# %%
agree = int((milp_table["milp status"] == milp_table["enumeration"]).sum())
print(f"MILP and enumeration agree on {agree} of {len(milp_table)} certificates")
milp_s_per_node = milp_seconds / max(len(milp_table), 1)  # wall time, presolve included
glue("ch22_milp_s_per_node", milp_s_per_node, display=False)
glue("ch22_enum_s", enum_seconds, display=False)
milp_table.style.hide(axis="index").format({"worst margin": "{:+.4f}", "HiGHS s": "{:.3f}"})

# %% [markdown]
# With 20 labels, enumerating the $\sum_{j\le 3}\binom{20}{j} = 1351$ flip sets and retraining
# each one (in batches, warm-started) is cheap, and the MILP's own exact presolve does the
# same for the small flip sets before it calls HiGHS ("HiGHS s" is the solver's share):
# here it took {glue:text}`ch22_milp_s_per_node:.3f` s per node and budget on average, wall
# time with the presolve (enumeration of
# every flip set up to the largest budget, all these nodes at once:
# {glue:text}`ch22_enum_s:.2f` s), where the paper's commercial Gurobi needed 19 s per node.
# This is not a like-for-like race: at 20 labels the presolve's exact enumeration of small
# flip sets settles the budgets ("HiGHS s" shows how much was left to the solver), and the
# MILP alone, presolve off, is much slower and grows steeply with $C$ (the benchmark records
# both).
# The benchmark `benchmarks/bench_poisoning_milp.py` measures how both scale with the number
# of labeled nodes (chapter "Benchmarks"): enumeration grows like $\binom{m}{k}$, the MILP
# with the size of its KKT system and with $C$.
#
# ### Beyond the paper's sizes
#
# The paper certifies at most 40 labeled nodes (the CSBM; 20 on Cora-MLb). We give the MILP a
# CSBM with `beyond_paper_labels` = {glue:text}`ch22_beyond_m` labeled nodes (half training,
# half validation, all attackable) and GCN, and decide budgets 1 to
# {glue:text}`ch22_beyond_k` for {glue:text}`ch22_p_n_beyond_nodes` (`n_beyond_nodes`) test nodes: there are
# {glue:text}`ch22_beyond_sets:,` labellings within that many flips, far too many to retrain
# one by one. Two settings make the test honest. The SVM's $C$ is
# {glue:text}`ch22_beyond_C` (`beyond_C`) instead of the paper's CSBM value 0.001: at
# $C = 0.001$ every dual variable sits at $C$ for every labelling (the linear regime, where
# the closed form answers, $C \max_i \sum_j |\Theta_{ij}| \le 1$), while here
# $C \max_i \sum_j |\Theta_{ij}| =$ {glue:text}`ch22_beyond_regime:.2f` (above 1: the
# MILP has to resolve the KKT system). And
# the MILP's presolve may enumerate only the single flips: every decision at two or more
# flips comes from a HiGHS solve or from a flip set found by the greedy attack and verified
# by exact retraining. Each solve stops after {glue:text}`ch22_p_beyond_time_limit:.0f` s (`beyond_time_limit`); a budget it could
# not decide is reported "unknown", never "certified".

# %%
from certlab.poisoning import milp as milp_module
from certlab.poisoning.milp import milp_min_flips

graph_b = sample_csbm(n_csbm, seed=seed)
split_b = csbm_split(graph_b, n_train=beyond_paper_labels // 2,
                     n_val=beyond_paper_labels // 2, seed=seed)
Lb, Tb = split_b.labeled, split_b.test[:n_beyond_nodes]
Kb = gnn_ntk(graph_b.adj, graph_b.features, **ARCHITECTURES["GCN"])
Kb_train, Kb_test, yb = Kb[np.ix_(Lb, Lb)], Kb[np.ix_(Tb, Lb)], graph_b.labels[Lb]
beyond_budgets = list(range(1, beyond_max_flips + 1))
presolve_limit = milp_module.PRESOLVE_ENUM_LIMIT
milp_module.PRESOLVE_ENUM_LIMIT = beyond_paper_labels + 1  # the presolve: single flips only
beyond_rows, beyond_status = [], {}
start = time.perf_counter()
try:
    for i, node in enumerate(Tb):
        t0 = time.perf_counter()
        rec = milp_min_flips(Kb_train, Kb_test[i:i + 1], yb, 2, model="svm", C=beyond_C,
                             max_flips=beyond_max_flips,
                             time_limit=beyond_time_limit)[0]
        wall = time.perf_counter() - t0
        # proven: no flip set below `low` changes the prediction; one of size `high` does
        low = int(rec["min_flips"])
        high = beyond_max_flips + 1 if rec["upper"] is None else int(rec["upper"])
        status = ["certified" if k < low else "not certified" if k >= high else "unknown"
                  for k in beyond_budgets]
        beyond_status[int(node)] = status
        if rec["exact"]:
            fewest = str(low) if low <= beyond_max_flips else f"> {beyond_max_flips}"
        else:
            fewest = f"{low}..{high} (unknown)"
        certified_up_to = max([k for k, st in zip(beyond_budgets, status)
                               if st == "certified"], default=0)
        mark = {"certified": "✓", "not certified": "✗", "unknown": "?"}
        beyond_rows.append({"node": int(node), "fewest flips": fewest,
                            "certified up to k": certified_up_to,
                            f"k = 1..{beyond_max_flips}": "".join(mark[st] for st in status),
                            "decided by": rec["decided_by"],
                            "MILP solves": rec["milp_solves"],
                            "HiGHS s": rec["solve_time_s"], "total s": wall})
finally:
    milp_module.PRESOLVE_ENUM_LIMIT = presolve_limit
beyond_seconds = time.perf_counter() - start
beyond_table = pd.DataFrame(beyond_rows)

# enumeration of every flip set within beyond_check_flips, all nodes at once
start = time.perf_counter()
beyond_enum = min_label_flips(Kb_train, Kb_test, yb, C=beyond_C,
                              max_flips=beyond_check_flips, method="enumerate")
beyond_enum_seconds = time.perf_counter() - start
beyond_checks = [(beyond_status[int(node)][k - 1],
                  "certified" if beyond_enum[i] > k else "not certified")
                 for i, node in enumerate(Tb) for k in range(1, beyond_check_flips + 1)]
beyond_agree = all(a == b for a, b in beyond_checks)
n_unknown = sum(st == "unknown" for sts in beyond_status.values() for st in sts)
n_beyond_certified = sum(st == "certified" for sts in beyond_status.values() for st in sts)
beyond_regime = beyond_C * float(np.abs(Kb_train).sum(axis=1).max())
glue("ch22_beyond_m", len(Lb), display=False)
glue("ch22_beyond_k", beyond_max_flips, display=False)
glue("ch22_beyond_sets", count_flip_sets(len(Lb), beyond_max_flips, 2), display=False)
glue("ch22_beyond_C", beyond_C, display=False)
glue("ch22_beyond_regime", beyond_regime, display=False)
glue("ch22_beyond_check_k", beyond_check_flips, display=False)
glue("ch22_beyond_check_sets", count_flip_sets(len(Lb), beyond_check_flips, 2),
     display=False)
glue("ch22_beyond_s", beyond_seconds, display=False)
glue("ch22_beyond_enum_s", beyond_enum_seconds, display=False)
glue("ch22_beyond_unknown", n_unknown, display=False)
glue("ch22_beyond_certified", n_beyond_certified, display=False)
glue("ch22_beyond_agree", f"{sum(a == b for a, b in beyond_checks)} of {len(beyond_checks)}",
     display=False)
print(f"CSBM, {len(Lb)} labels, C = {beyond_C}: {len(Tb)} nodes in {beyond_seconds:.1f} s; "
      f"{n_unknown} budget(s) unknown")
print(f"MILP vs enumeration at budgets <= {beyond_check_flips}: "
      f"{sum(a == b for a, b in beyond_checks)} of {len(beyond_checks)} agree "
      f"(enumeration: {beyond_enum_seconds:.1f} s)")
(beyond_table.style.hide(axis="index")
 .format({"HiGHS s": "{:.2f}", "total s": "{:.2f}"})
 .set_properties(subset=[f"k = 1..{beyond_max_flips}"], **{"white-space": "nowrap"}))

# %% [markdown]
# At {glue:text}`ch22_beyond_m` labels the MILP took {glue:text}`ch22_beyond_s:.1f` s for
# all nodes and budgets; {glue:text}`ch22_beyond_unknown` (node, budget) pairs were left
# "unknown" by the time limit and {glue:text}`ch22_beyond_certified` are certified.
# Enumeration can still check the budgets up to
# {glue:text}`ch22_beyond_check_k` ({glue:text}`ch22_beyond_check_sets:,` labellings,
# {glue:text}`ch22_beyond_enum_s:.1f` s for all nodes): it agrees with the MILP on
# {glue:text}`ch22_beyond_agree` (node, budget) pairs. In the table, ✓ is certified, ✗ not
# certified and ? unknown, per budget; "decided by" says which exact step
# settled a node: "milp" (HiGHS proved that no smaller flip set works), "greedy+enumeration"
# (a verified attack met the enumerated lower bound) or "enumeration" (a single flip
# suffices). The benchmark pushes the same MILP to 100 labels, and shows where it stops
# being fast: at Cora-MLb's $C = 0.075$ the KKT system is much harder; at 40 labels a node
# already takes orders of magnitude longer and a budget can stay "unknown" at the node limit.
#
# ## Collective certificates and the plateau
#
# One flip set now has to serve all test nodes at once, so the attacker must compromise; the
# collective certificate is never weaker than the sample-wise one. We certify
# {glue:text}`ch22_p_n_collective_nodes` (`n_collective_nodes`) random unlabeled Cora-MLb nodes (as the paper) against budgets of
# 1 to {glue:text}`ch22_collective_k` flips (up to a share {glue:text}`ch22_p_collective_max_fraction` (`collective_max_fraction`) of the 20
# labels): all budgets come from one pass over the {glue:text}`ch22_collective_sets:,`
# labellings within that many flips (exact; {glue:text}`ch22_collective_s_each:.0f` s per
# architecture and seed in this run).
# The MILP gives the same answers (tests) but its collective version did not finish within
# minutes on this graph with the open-source solver, matching the paper's 4.2 h average with
# Gurobi. The CSBM's collective curves follow below.

# %%
max_budget = int(np.floor(collective_max_fraction * 20 + 1e-9))
collective_rows = []
start = time.perf_counter()
for s in range(seed, seed + collective_seeds):
    split = label_flip_split(real.labels, seed=s)
    nodes = np.random.default_rng(s).choice(split.test, n_collective_nodes,
                                            replace=False)
    L = split.labeled
    for name in collective_architectures:
        K = kernels_real[name]
        curve = collective_flips_curve(K[np.ix_(L, L)], K[np.ix_(nodes, L)],
                                       real.labels[L],
                                       model="svm", C=PAPER_C_REAL[name],
                                       max_budget=max_budget)
        for k in range(1, max_budget + 1):
            collective_rows.append({"architecture": name, "seed": s,
                                    "budget": k,
                                    "fraction": k / 20,
                                    "flipped_nodes": int(curve[k]),
                                    "certified_ratio": 100 * (1 - curve[k] / len(nodes))})
collective_seconds = time.perf_counter() - start
collective = (pd.DataFrame(collective_rows)
              .groupby(["architecture", "fraction"])["certified_ratio"]
              .mean().unstack(0))
collective_s_each = collective_seconds / max(collective_seeds * len(collective_architectures), 1)
glue("ch22_collective_k", max_budget, display=False)


def seeds_text(count):
    """'1 seed', '5 seeds'."""
    return f"{count} seed{'s' if count != 1 else ''}"


glue("ch22_collective_seeds_text", Markdown(seeds_text(collective_seeds)), display=False)
glue("ch22_collective_sets", count_flip_sets(20, max_budget, 2), display=False)
glue("ch22_csbm_collective_sets", count_flip_sets(40, 20, 2), display=False)
glue("ch22_collective_s_each", collective_s_each, display=False)

# %%
from certlab.ntk import (
    PUBLISHED_COLLECTIVE_GCN_CORA_MLB as PAPER_COLLECTIVE_GCN)


def paper_curve(published):
    """A published collective curve (fraction -> ratio) as (fractions, ratios), with a gap
    (NaN) where the paper reports no value (0.35-0.45), so that no line is drawn across it."""
    fractions, ratios = [], []
    for frac, ratio in sorted(published.items()):
        if fractions and frac - fractions[-1] > 0.05 + 1e-9:
            fractions.append(np.nan)
            ratios.append(np.nan)
        fractions.append(frac)
        ratios.append(ratio)
    return fractions, ratios


def collective_panels(sources, title, xlabel, paper=None, others_in_grey=False):
    """One panel per architecture (in the paper's order) of collective curves, the figure.

    `sources`: (label, color, architecture -> fraction -> certified ratio) per run drawn;
    `paper`: (label, published GCN curve) dashed in the GCN panel; `others_in_grey`: the other
    architectures of the first source in grey behind each panel."""
    names = [n for n in ARCHITECTURES if any(n in ratios for _, _, ratios in sources)]
    rows_ = -(-len(names) // 4)
    fig, axes = plt.subplots(rows_, 4, figsize=(7.5, 2.0 * rows_ + 0.6), sharex=True,
                             sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        if others_in_grey:
            for other, curve in sources[0][2].items():
                if other != name:
                    ax.plot(sorted(curve), [curve[f] for f in sorted(curve)], color="0.85",
                            lw=0.8, zorder=1)
        for label, color, ratios in sources:
            if name in ratios:
                curve = ratios[name]
                ax.plot(sorted(curve), [curve[f] for f in sorted(curve)], color=color,
                        marker="o", ms=3, zorder=3, label=label)
        if paper is not None and name == "GCN":
            ax.plot(*paper_curve(paper[1]), "k--", marker="s", ms=3, zorder=2, label=paper[0])
        ax.axvspan(0.15, 0.30, color="0.93", zorder=0)
        ax.set_title(name, fontsize=9)
    for ax in axes.flat[len(names):]:
        ax.set_axis_off()
    axes.flat[names.index("GCN") if "GCN" in names else 0].legend(loc="upper right",
                                                                  fontsize=6.5)
    fig.supxlabel(xlabel, fontsize=9)
    fig.supylabel("certified ratio (%)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def no_curves_figure(text):
    """A figure that says why there is nothing to draw."""
    fig, ax = plt.subplots(figsize=(7.5, 2.0))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def leaders(ratios, frac):
    """The architectures sharing the first place at `frac` ("GIN and SGC", the paper's
    order), with the verb: "is SGC" or "are GIN and SGC"."""
    top = max(round(curve[frac], 6) for curve in ratios.values())
    names = [n for n in ARCHITECTURES if n in ratios and round(ratios[n][frac], 6) == top]
    return ("are " if len(names) > 1 else "is ") + " and ".join(names)


def least_robust(ratios, frac):
    """The architecture with the lowest certified ratio at `frac` (first in the paper's
    order on ties)."""
    return min((n for n in ARCHITECTURES if n in ratios), key=lambda n: ratios[n][frac])


fig, ax = plt.subplots(figsize=(7.5, 3.8))
for name in collective_architectures:
    ax.plot(collective.index, collective[name], marker="o",
            label=f"{name} (ours)")
if real_graph == "cora_ml":
    ax.plot(*paper_curve(PAPER_COLLECTIVE_GCN), "k--", marker="s", label="GCN (paper, 5 seeds)")
ax.axvspan(0.15, 0.30, color="0.9", zorder=0, label="paper's plateau")
ax.set(xlabel="fraction of labels flipped", ylabel="certified ratio (%)",
       title=f"{real_label}: collective certificate, {n_collective_nodes} nodes")
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
fig.tight_layout()
glue("ch22_collective_fig", fig, display=False)
plt.close(fig)
print(f"collective curves: {collective_seconds:.1f} s")

# %% [markdown]
# ```{glue:figure} ch22_collective_fig
# :name: fig-ch22-collective
#
# Collective certified ratio: the share of the sampled unlabeled nodes that no single flip
# set within the budget can change, against the fraction of the 20 labels flipped (ours:
# mean over {glue:md}`ch22_collective_seeds_text`; dashed: the paper's GCN, mean of 5 seeds).
# The grey
# band is the range where the paper reports its plateau.
# ```

# %%
print("collective certified ratio (%) by fraction of labels flipped")
collective_view = collective[list(collective_architectures)].copy()
if real_graph == "cora_ml":
    collective_view["paper GCN"] = [
        PAPER_COLLECTIVE_GCN.get(round(frac, 2), np.nan)
        for frac in collective.index]
collective_view.index = [f"{frac:.2f}" for frac in collective_view.index]
collective_view.index.name = "fraction flipped"
collective_view.style.format(precision=1, na_rep="–")

# %% [markdown]
# ### The CSBM's collective curves
#
# The paper also certifies the CSBM collectively (40 labels, budgets up to half of them).
# Enumeration is out of reach there ({glue:text}`ch22_csbm_collective_sets:,` labellings
# within 20 flips), so the MILP decides each budget, with a wall-clock limit of
# `csbm_collective_time_limit` seconds per solve. A budget it does not settle in time counts
# the proven upper bound on the changed predictions (at worst all of them), so a certified
# ratio is never overstated. On 50 nodes, as in the paper, the open-source solver did not
# settle the larger budgets within minutes each; the book certifies
# `n_csbm_collective_nodes` random test nodes instead. The default run skips this
# (`csbm_collective_architectures = []`); the stored paper-scale run below has all eight
# architectures.

# %%
from certlab.ntk import PUBLISHED_COLLECTIVE_GCN_CSBM as PAPER_COLLECTIVE_GCN_CSBM
from certlab.poisoning.milp import milp_collective_curve

csbm_budget = int(np.floor(collective_max_fraction * 40 + 1e-9))
csbm_rows = []
start = time.perf_counter()
for s in range(seed, seed + csbm_collective_seeds) if csbm_collective_architectures else []:
    graph = sample_csbm(n_csbm, seed=s)
    split_c = csbm_split(graph, seed=s)
    nodes = np.random.default_rng(s).choice(split_c.test, n_csbm_collective_nodes,
                                            replace=False)
    L = split_c.labeled
    for name in csbm_collective_architectures:
        K = gnn_ntk(graph.adj, graph.features, **ARCHITECTURES[name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a time-out: counted below
            curve = milp_collective_curve(K[np.ix_(L, L)], K[np.ix_(nodes, L)],
                                          graph.labels[L], 2, model="svm", C=PAPER_C_CSBM,
                                          max_budget=csbm_budget,
                                          time_limit=csbm_collective_time_limit)
        for k, rec in enumerate(curve[1:], start=1):
            csbm_rows.append({"architecture": name, "seed": s, "fraction": k / 40,
                              "exact": rec["exact"],
                              "certified_ratio": 100 * (1 - rec["max_changed"] / len(nodes))})
csbm_seconds = time.perf_counter() - start
csbm_this_run = ({name: {round(f, 4): v for f, v in curve.items()} for name, curve in
                  pd.DataFrame(csbm_rows).groupby(["architecture", "fraction"])
                  ["certified_ratio"].mean().unstack(0).to_dict().items()}
                 if csbm_rows else None)
csbm_exact_share = (float(np.mean([row["exact"] for row in csbm_rows])) if csbm_rows
                    else None)
print(f"CSBM collective curves: {len(csbm_rows)} (architecture, seed, budget) solves in "
      f"{csbm_seconds:.1f} s" + (f", {100 * csbm_exact_share:.0f} % settled exactly"
                                 if csbm_rows else " (skipped)"))

# %% tags=["hide-input"]
runs = stored_runs("22_label_flip_certificates")  # the committed paper-scale runs
stored_csbm = max((run for run in runs if run["values"].get("csbm_collective_ratio")),
                  key=lambda run: run["parameters"]["csbm_collective_seeds"], default=None)
csbm_sources = []  # (label, color, architecture -> fraction -> ratio)
if csbm_this_run:
    csbm_sources.append((f"this run ({seeds_text(csbm_collective_seeds)})", "tab:blue",
                         csbm_this_run))
if stored_csbm is not None:
    stored_seeds = stored_csbm["parameters"]["csbm_collective_seeds"]
    csbm_sources.append((f"the stored run ({seeds_text(stored_seeds)})", "tab:orange",
                         {name: {float(f): v for f, v in curve.items()} for name, curve
                          in stored_csbm["values"]["csbm_collective_ratio"].items()}))
if not csbm_sources:
    fig = no_curves_figure("no CSBM collective curves: not run here and none stored\n"
                           "(csbm_collective_architectures; sweeps/22_csbm_collective.yaml)")
    glue("ch22_csbm_collective", Markdown("Neither this run nor a stored run has them."),
         display=False)
else:
    fig = collective_panels(csbm_sources, "CSBM: collective certificate by the MILP",
                            "fraction of the 40 labels flipped",
                            paper=("paper (5 seeds, 50 nodes)", PAPER_COLLECTIVE_GCN_CSBM))
    sentences = []
    for label, _, ratios in csbm_sources:
        low = min(next(iter(ratios.values())))
        worst = least_robust(ratios, low)
        share = (csbm_exact_share if label.startswith("this run")
                 else stored_csbm["values"].get("csbm_collective_exact_share"))
        sentences.append(
            f"In {label} the most robust at {100 * low:.1f} % flipped labels "
            f"{leaders(ratios, low)} ({max(c[low] for c in ratios.values()):.1f} %), the "
            f"least robust {worst} ({ratios[worst][low]:.1f} %)"
            + (f"; the MILP settled {100 * share:.0f} % of its budgets exactly"
               if share is not None else "") + ".")
    glue("ch22_csbm_collective", Markdown(
        " ".join(sentences) + " The paper finds SGC the most robust on the CSBM."),
        display=False)
fig.tight_layout()
glue("ch22_csbm_collective_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch22_csbm_collective_fig
# :name: fig-ch22-csbm-collective
#
# Collective certified ratio on the CSBM (the MILP, `n_csbm_collective_nodes` random test
# nodes per seed; a budget not settled in time counts as its worst case), against the fraction
# of the 40 labels flipped; dashed: the paper's GCN (50 nodes, 5 seeds). The grey band is
# where the paper reports its plateau on Cora-MLb.
# ```
#
# {glue:md}`ch22_csbm_collective`

# %% [markdown]
# ## Citeseerb
#
# The same sample-wise table on the second binary graph (Citeseerb: the two largest Citeseer
# classes, 20 labels, every other node a test node), with the same per-architecture $C$ as on
# Cora-MLb (the authors tuned $C$ per data set by cross-validation; their Citeseerb values are
# not in the notes, so this is a deviation). The paper reports GraphSAGE and GIN as the most
# robust architectures on Citeseerb, unlike on Cora-MLb.

# %%
def real_samplewise_table(graph, seeds, c_choice="paper"):
    """Mean certified accuracy (%) per architecture (rows) and budget k (columns), and the C
    used per architecture and seed: the authors' Cora-MLb value (c_choice="paper") or 4-fold
    stratified cross-validation on the 20 clean labels ("cv", the authors' protocol)."""
    rows, chosen = [], {}
    for name, kw in ARCHITECTURES.items():
        K = gnn_ntk(graph.adj, graph.features, **kw)
        for s in seeds:
            split = label_flip_split(graph.labels, seed=s)
            L, T = split.labeled, split.test
            K_train, K_test, y = K[np.ix_(L, L)], K[np.ix_(T, L)], graph.labels[L]
            C = (PAPER_C_REAL[name] if c_choice == "paper"
                 else select_C_cv(K_train, y, n_folds=4, seed=s)[0])
            chosen.setdefault(name, []).append(C)
            flips = min_label_flips(K_train, K_test, y, model="svm", C=C,
                                    max_flips=max_flips)
            correct = fit_svm(K_train, y, C).predict(K_test) == graph.labels[T]
            acc = certified_fraction(flips, range(max_flips + 1), correct)
            rows += [{"architecture": name, "seed": s, "k": k,
                      "certified_accuracy": 100 * acc[k]} for k in range(max_flips + 1)]
    table = (pd.DataFrame(rows).groupby(["architecture", "k"], sort=False)
             ["certified_accuracy"].mean().unstack("k"))
    return table, chosen


def ranked_at_k1(table):
    """Architectures by certified accuracy at one flip, best first (ties: table order)."""
    return list(table[1].sort_values(ascending=False, kind="stable").index)


if citeseer_table and real_graph != "citeseer":
    citeseer = load_binary_graph("citeseer")
    cs_seeds = [seed + s for s in range(n_seeds)]
    mean_cs, _ = real_samplewise_table(citeseer, cs_seeds, "paper")
    mean_cs_cv, cs_cv_C = real_samplewise_table(citeseer, cs_seeds, "cv")
    ranked_cs, ranked_cs_cv = ranked_at_k1(mean_cs), ranked_at_k1(mean_cs_cv)

# %%
if citeseer_table and real_graph != "citeseer":
    print(f"Citeseerb: {citeseer.num_nodes} nodes, {citeseer.num_edges} edges; sample-wise")
    print(f"certified accuracy (%) at k = 0..{max_flips}, mean of {n_seeds} seeds")
    both = pd.concat({"Cora-MLb C": mean_cs, "C by 4-fold CV": mean_cs_cv}, axis=1)
    both.columns = [f"{c}, k={k}" for c, k in both.columns]
    both["median CV C"] = [float(np.median(cs_cv_C[name])) for name in both.index]
    glue("ch22_cs_top_paperC", " and ".join(ranked_cs[:2]), display=False)
    glue("ch22_cs_top_cvC", " and ".join(ranked_cs_cv[:2]), display=False)
    glue("ch22_cs_sage_rank_cv", ranked_cs_cv.index("GraphSAGE") + 1, display=False)
    glue("ch22_cs_gin_rank_cv", ranked_cs_cv.index("GIN") + 1, display=False)
    display(both.reset_index().style.hide(axis="index").format(precision=1)
            .format("{:g}", subset=["median CV C"]))

# %% [markdown]
# The left half uses Cora-MLb's $C$ per architecture; the right half chooses $C$ on Citeseerb
# itself by 4-fold stratified cross-validation of the clean 20 labels over the authors' grid
# ($0.001, \dots, 10$; ties to the smaller $C$), as the authors did per data set, once per
# seed (the last column: the median of the chosen values).

# %% [markdown]
# ## Multi-class Cora-ML
#
# With $c \ge 3$ classes the learner is one-vs-rest: one SVM per class on the same kernel
# and $C$, prediction $\arg\max_r f_r(x)$. A flip now moves a label to *any* other class, so
# there are $\sum_{j \le k}\binom{m}{j}(c-1)^j$ labellings, and the exact MILP carries one
# copy of the KKT structure per class with one label per training node (the paper's
# multi-class formulation). We take the full 7-class Cora-ML graph (standard preprocessing,
# largest connected component), the SGC kernel, {glue:text}`ch22_p_multiclass_per_class` (`multiclass_per_class`) labels per class (half
# training, half validation, all attackable) and certify **every** unlabeled node exactly by
# enumeration ($m = 28$, $c = 7$: 13,777 labellings within 2 flips, 7 SVMs each).
#
# The multi-class MILP is much larger (7 copies of the $m \times m$ product variables), so
# we check it against enumeration on a smaller instance: the three largest classes with
# {glue:text}`ch22_p_multiclass_milp_per_class` labels each, on
# {glue:text}`ch22_p_n_multiclass_milp_nodes` nodes: half of them among those that need the
# most flips (certified at one flip, the hardest cases for the solver), half among those that
# need the fewest (the first flip already changes them).

# %%
from certlab.data import load_graph
from certlab.graphs.preprocess import standard_preprocessing

cora7 = standard_preprocessing(load_graph("cora_ml"))
K7 = gnn_ntk(cora7.adj, cora7.attr, model="sgc")
n_classes7 = int(cora7.labels.max()) + 1
C7 = PAPER_C_REAL["SGC"]
split7 = label_flip_split(cora7.labels, n_train_per_class=multiclass_per_class
                          - multiclass_per_class // 2,
                          n_val_per_class=multiclass_per_class // 2, seed=seed)
L7, T7 = split7.labeled, split7.test
start = time.perf_counter()
flips7 = min_label_flips(K7[np.ix_(L7, L7)], K7[np.ix_(T7, L7)],
                         cora7.labels[L7], model="svm",
                         C=C7, max_flips=multiclass_max_flips)
correct7 = fit_svm(K7[np.ix_(L7, L7)], cora7.labels[L7], C7).predict(
    K7[np.ix_(T7, L7)]) == cora7.labels[T7]
acc7 = certified_fraction(flips7, range(multiclass_max_flips + 1), correct7)
multiclass_seconds = time.perf_counter() - start

# 3-class MILP check
top3 = np.argsort(-np.bincount(cora7.labels), kind="stable")[:3]
keep3 = np.flatnonzero(np.isin(cora7.labels, top3))
labels3 = np.searchsorted(np.sort(top3), cora7.labels[keep3])
split3 = label_flip_split(labels3, n_train_per_class=multiclass_milp_per_class
                          - multiclass_milp_per_class // 2,
                          n_val_per_class=multiclass_milp_per_class // 2,
                          seed=seed)
L3, T3 = keep3[split3.labeled], keep3[split3.test]
K3_train, K3_test, y3 = K7[np.ix_(L3, L3)], K7[np.ix_(T3,
                                                      L3)], labels3[split3.labeled]
flips3 = min_label_flips(K3_train, K3_test, y3, model="svm", C=C7, max_flips=2,
                         method="enumerate")
# half the checked nodes need the most flips (certified at 1 flip), half the fewest
order3 = np.argsort(-flips3, kind="stable")
check3 = np.concatenate([order3[:(n_multiclass_milp_nodes + 1) // 2],
                         order3[::-1][:n_multiclass_milp_nodes // 2]])
start = time.perf_counter()
milp3 = certify_samplewise(K3_train, K3_test[check3], y3, model="svm", C=C7,
                           budget=1,
                           time_limit=60)
milp3_seconds = time.perf_counter() - start

# %%
print(f"Cora-ML, {n_classes7} classes, {cora7.labels.size} nodes, {len(L7)} labels "
      f"({multiclass_per_class} per class), SGC, C = {C7}")
print(f"clean accuracy {100 * correct7.mean():.1f} %")
print("certified accuracy (%) at k = " + ", ".join(
    f"{k}: {100 * a:.1f}" for k, a in enumerate(acc7)))
enum3 = ["certified" if f > 1 else "not certified" for f in flips3[check3]]
print(f"3-class MILP check at 1 flip ({len(L3)} labels, {len(T3)} unlabeled nodes;")
print(f"  enumeration: {100 * np.mean(flips3 > 1):.1f} % need 2 or more flips)")
for node, cert, e in zip(T3[check3], milp3, enum3):
    print(f"  node {int(node)}: MILP {cert.status:13s} (worst margin "
          f"{cert.worst_case_margin:+.4f}), enumeration {e}")
print(f"MILP and enumeration agree on {sum(c.status == e for c, e in zip(milp3, enum3))} of "
      f"{len(milp3)}")

# %%
print(f"multi-class enumeration, all nodes: {multiclass_seconds:.1f} s; "
      f"multi-class MILP: {milp3_seconds / max(len(check3), 1):.2g} s per node")

# %% [markdown]
# ## What CI checks on every machine
#
# Every certificate in this chapter is exact: double-precision kernels, an SVM solved to a KKT
# residual below $10^{-10}$, and enumeration of every flip set or an exact MILP. So CI checks
# the certificates themselves, as integers (certified nodes summed over the seeds, nodes a
# collective flip set can change), and the agreement of the MILP with enumeration. Timings are
# not checked.

# %% tags=["nbval-check-output"]
key = KeyResults("22_label_flip_certificates")
key.exact(f"{real_label}: nodes, edges", [real.num_nodes, real.num_edges])
certified_nodes = (samplewise.groupby(["data", "architecture", "k"], sort=False)
                   ["certified_nodes"].sum().unstack("k"))
for (data, name), row in certified_nodes.iterrows():
    key.exact(f"{data} {name}: certified nodes, k = 0..{max_flips}, {n_seeds} seeds",
              row.to_numpy())
key.exact("MILP statuses (node, budget)",
          [f"{node}/{budget}: {status}" for node, budget, status
           in milp_table[["node", "budget", "milp status"]].itertuples(index=False)])
key.claim("the MILP agrees with enumeration on every checked node and budget",
          agree == len(milp_table))
flipped = (pd.DataFrame(collective_rows).groupby(["architecture", "budget"])["flipped_nodes"]
           .sum().unstack(0))
for name in collective_architectures:
    key.exact(f"collective {name}, k = 1..{max_budget}, {collective_seeds} seed(s)",
              flipped[name].to_numpy())
if citeseer_table and real_graph != "citeseer":
    key.exact("Citeseerb k = 1, ranked 1-4", ranked_cs[:4])
    key.exact("Citeseerb k = 1, ranked 5-8", ranked_cs[4:])
    key.exact("Citeseerb k = 1, CV C, ranked 1-4", ranked_cs_cv[:4])
    key.exact("Citeseerb k = 1, CV C, ranked 5-8", ranked_cs_cv[4:])
key.exact(f"Cora-ML {n_classes7} classes, correct nodes by flips needed "
          f"(0 to {multiclass_max_flips}, then more)",
          np.bincount(np.minimum(flips7[correct7], multiclass_max_flips + 1),
                      minlength=multiclass_max_flips + 2))
key.exact("3-class MILP statuses at 1 flip", [c.status for c in milp3])
key.claim("the 3-class MILP agrees with enumeration on every checked node",
          all(c.status == e for c, e in zip(milp3, enum3)))
key.exact(f"MILP, CSBM m = {len(Lb)}, C = {beyond_C}: fewest flips per node",
          list(beyond_table["fewest flips"]) if len(beyond_table) else [])
key.claim(f"the MILP certifies at m = {len(Lb)} with answers equal to enumeration for "
          f"budgets <= {beyond_check_flips}", beyond_agree and n_beyond_certified > 0)
if published_rows:
    key.exact(f"Cora-MLb tables reproduced with the authors' kernels ({published_seeds} seeds)",
              reproduced)
key.measured("MILP s per node and budget, m = 20", milp_s_per_node)
key.measured(f"MILP s, all nodes and budgets, m = {len(Lb)}", beyond_seconds)
key.report()

# %% [markdown]
# ## Our numbers next to the paper's

# %% tags=["hide-input"]
save_record({
    "real_graph": real_graph,
    "published_kernels_reproduce": reproduced,
    "samplewise_real_k123": {name: [float(mean_sw.loc[(real_label, name), k]) for k in ks]
                             for name in ARCHITECTURES},
    "collective_ratio": {name: {f"{frac:.2f}": float(collective.loc[frac, name])
                                for frac in collective.index}
                         for name in collective_architectures},
    "milp_s_per_node_m20": milp_s_per_node,
    "csbm_collective_ratio": ({name: {f"{frac:.3f}": float(v) for frac, v in curve.items()}
                              for name, curve in csbm_this_run.items()}
                             if csbm_this_run else None),
    "csbm_collective_exact_share": csbm_exact_share,
    "beyond": {"labels": int(len(Lb)), "C": beyond_C, "max_flips": beyond_max_flips,
               "certified_pairs": n_beyond_certified, "unknown_pairs": n_unknown,
               "agree_with_enumeration": bool(beyond_agree), "seconds": beyond_seconds},
    "citeseer_ranked_k1": (ranked_cs if citeseer_table and real_graph != "citeseer"
                           else None),
    "citeseer_cv_ranked_k1": (ranked_cs_cv if citeseer_table and real_graph != "citeseer"
                              else None),
    "citeseer_cv_median_C": ({name: float(np.median(v)) for name, v in cs_cv_C.items()}
                             if citeseer_table and real_graph != "citeseer" else None),
})
NOT_RUN = "not run yet (sweeps/22_paper_scale.yaml)"


def at_paper_scale(get, graph="cora_ml", seeds="n_seeds"):
    """The value `get` extracts from the stored paper-scale run on `graph` with the most
    seeds (parameter `seeds`: "n_seeds", or the seeds of the curve the value comes from)."""
    for run in sorted(runs, key=lambda run: -run["parameters"].get(seeds, 0)):
        if run["parameters"].get("real_graph", "cora_ml") != graph:
            continue
        try:
            value = get(run["values"])
        except (KeyError, TypeError, IndexError):
            continue
        if value is not None:
            return f"{value} ({seeds_text(run['parameters'][seeds])}, run {run['run']})"
    return NOT_RUN


def slash(values):
    return " / ".join("–" if np.isnan(v) else f"{v:.1f}" for v in values)


fracs = [0.1, 0.3, 0.5]
ours_coll = ("–" if "GCN" not in collective.columns else
             slash([collective["GCN"].get(f, np.nan) for f in fracs]))
best_k1 = mean_sw.loc[real_label][1].sort_values(ascending=False, kind="stable")
paper_best = max(PAPER_SW, key=lambda name: PAPER_SW[name][0])
why_seeds = (f"{seeds_text(n_seeds)} of label_flip_split (paper: 5); single nodes near "
             "the boundary move the numbers by several points")
comparison_rows = [
    {"quantity": f"{real_label} sample-wise cert. acc. (%), GCN, k = 1 / 2 / 3",
     "paper": slash(PAPER_SW["GCN"]) if real_graph == "cora_ml" else "–",
     "ours, this run": slash([mean_sw.loc[(real_label, "GCN"), k] for k in ks]),
     "ours, paper scale": at_paper_scale(
         lambda v: slash(v["samplewise_real_k123"]["GCN"]), real_graph),
     "scale and why": why_seeds},
    {"quantity": f"{real_label}: most robust architecture at k = 1",
     "paper": (f"{paper_best} ({PAPER_SW[paper_best][0]:.1f} %)"
               if real_graph == "cora_ml" else "–"),
     "ours, this run": f"{best_k1.index[0]} ({best_k1.iloc[0]:.1f} %)",
     "ours, paper scale": at_paper_scale(
         lambda v: max(v["samplewise_real_k123"],
                       key=lambda n: v["samplewise_real_k123"][n][0]), real_graph),
     "scale and why": why_seeds + "; kernels as the paper describes them (the authors' "
                      "kernels reproduce the published table, see above)"},
    {"quantity": "Cora-MLb sample-wise table with the authors' kernels",
     "paper": "8 architectures, k = 1 / 2 / 3, 5 seeds",
     "ours, this run": (f"{len(reproduced)} of 8 equal to the printed 0.1 point"
                        if published_rows else "not run"),
     "ours, paper scale": (f"same ({published_seeds} seeds, the paper's)"
                           if published_rows and published_seeds >= 5 else "–"),
     "scale and why": "published_ntk: the authors' kernel configuration, our exact "
                      "certificates and splits"},
    {"quantity": "collective cert. ratio (%), GCN, 10 / 30 / 50 % flipped",
     "paper": slash([PAPER_COLLECTIVE_GCN[f] for f in fracs]),
     "ours, this run": ours_coll,
     "ours, paper scale": at_paper_scale(
         lambda v: slash([v["collective_ratio"]["GCN"][f"{f:.2f}"] for f in fracs]),
         seeds="collective_seeds"),
     "scale and why": f"{seeds_text(collective_seeds)} of {n_collective_nodes} random nodes "
                      "(paper: 5)"},
    {"quantity": "CSBM collective cert. ratio (%), GCN, 10 / 30 / 50 % flipped",
     "paper": slash([PAPER_COLLECTIVE_GCN_CSBM[f] for f in fracs]),
     "ours, this run": (slash([csbm_this_run["GCN"].get(round(f, 4), np.nan) for f in fracs])
                        if csbm_this_run and "GCN" in csbm_this_run else "not run"),
     "ours, paper scale": at_paper_scale(
         lambda v: slash([v["csbm_collective_ratio"]["GCN"][f"{f:.3f}"] for f in fracs]),
         seeds="csbm_collective_seeds"),
     "scale and why": f"the MILP on {n_csbm_collective_nodes} random test nodes per seed "
                      "(paper: 50; the larger budgets do not finish there with HiGHS)"},
    {"quantity": "MILP time per node, 20 labels",
     "paper": "19 s (Gurobi)",
     "ours, this run": f"{milp_s_per_node:.3f} s",
     "ours, paper scale": at_paper_scale(lambda v: f"{v['milp_s_per_node_m20']:.3f} s"),
     "scale and why": f"{len(milp_table)} (node, budget) pairs, wall time; the exact presolve "
                      "(enumeration of small flip sets) settles "
                      + ("every budget here, HiGHS is not called"
                         if float(milp_table["HiGHS s"].sum()) == 0.0
                         else "most budgets, HiGHS the rest") + "; one core"},
    {"quantity": "largest labeled set certified by the MILP",
     "paper": "40 (CSBM)",
     "ours, this run": f"{len(Lb)} (CSBM, C = {beyond_C}, k ≤ {beyond_max_flips})",
     "ours, paper scale": "same setting (not a paper experiment)",
     "scale and why": f"beyond the paper; C = {beyond_C} (the paper's CSBM C: "
                      f"{PAPER_C_CSBM}) keeps the SVM out of its linear regime"},
    {"quantity": "Citeseerb: most robust at k = 1 (Cora-MLb C)",
     "paper": "GraphSAGE and GIN",
     "ours, this run": (" > ".join(ranked_cs[:2]) if citeseer_table
                        and real_graph != "citeseer" else "not run"),
     "ours, paper scale": at_paper_scale(lambda v: " > ".join(v["citeseer_ranked_k1"][:2])),
     "scale and why": "Cora-MLb's C per architecture, not tuned on Citeseerb"},
    {"quantity": "Citeseerb: most robust at k = 1 (C by 4-fold CV)",
     "paper": "GraphSAGE and GIN",
     "ours, this run": (" > ".join(ranked_cs_cv[:2]) if citeseer_table
                        and real_graph != "citeseer" else "not run"),
     "ours, paper scale": at_paper_scale(
         lambda v: " > ".join(v["citeseer_cv_ranked_k1"][:2])),
     "scale and why": "the authors' protocol; their chosen C values are not published"},
]
pd.DataFrame(comparison_rows).style.hide(axis="index")

# %% [markdown]
# The collective curves of every architecture in the stored paper-scale run, read from its
# record (never recomputed here):

# %% tags=["hide-input"]
stored_collective = next((run for run in runs
                          if run["parameters"].get("real_graph", "cora_ml") == real_graph
                          and len(run["values"].get("collective_ratio") or {}) > 1), None)
if stored_collective is None:
    fig = no_curves_figure(f"no stored paper-scale collective curves for {real_label}\n"
                           "(sweeps/22_paper_scale.yaml)")
    glue("ch22_stored_collective", Markdown("No stored run has them yet."), display=False)
else:
    ratios = {name: {float(f): v for f, v in curve.items()}
              for name, curve in stored_collective["values"]["collective_ratio"].items()}
    coll_params = stored_collective["parameters"]
    fig = collective_panels(
        [("stored run", "tab:blue", ratios)],
        f"{real_label}: collective certificate, stored run "
        f"({seeds_text(coll_params['collective_seeds'])})", "fraction of labels flipped",
        paper=(("paper (5 seeds)", PAPER_COLLECTIVE_GCN) if real_graph == "cora_ml" else None),
        others_in_grey=True)
    smallest, largest = min(next(iter(ratios.values()))), max(next(iter(ratios.values())))
    worst = least_robust(ratios, smallest)
    glue("ch22_stored_collective", Markdown(
        f"In the stored run (`{stored_collective['run']}`: {coll_params['collective_seeds']} "
        f"seeds, {coll_params['n_collective_nodes']} random unlabeled nodes each) the most "
        f"robust at {100 * smallest:.0f} % flipped labels {leaders(ratios, smallest)} "
        f"({max(c[smallest] for c in ratios.values()):.1f} %), the least robust {worst} "
        f"({ratios[worst][smallest]:.1f} %); at {100 * largest:.0f} % the most robust "
        f"{leaders(ratios, largest)} ({max(c[largest] for c in ratios.values()):.1f} %). "
        "The paper finds SGC the most robust on Cora-MLb and the MLP the least robust at "
        "small budgets but the most robust at 50 %."), display=False)
fig.tight_layout()
glue("ch22_stored_collective_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch22_stored_collective_fig
# :name: fig-ch22-stored-collective
#
# Collective certified ratio of every architecture in the stored paper-scale run (one panel
# each, blue; the other architectures in grey behind it), against the fraction of the 20
# labels flipped (mean over its seeds); dashed: the paper's GCN. The grey band is where the
# paper reports its plateau.
# ```
#
# {glue:md}`ch22_stored_collective`

# %% [markdown]
# ## What the numbers say
#
# * **Label flipping is devastating at this scale.** With 20 labels, a single flip already
#   removes a large part of the clean accuracy, and three flips (15 % of the labels) certify
#   almost nothing on Cora-MLb, as in the paper. The 40-label CSBM is more robust.
# * **APPNP on the CSBM** is a special case: its NTK is dominated by the constant bias term,
#   and with the paper's $C = 0.001$ the SVM sits in its linear regime,
#   $f(x) = C\sum_j y_j \Theta(x, x_j)$; with a nearly constant kernel and balanced labels
#   the scores are close to zero, so a single flip changes almost every prediction.
# * **No universal best architecture.** The hierarchies differ between the CSBM and Cora-MLb
#   (printed above), the paper's first finding. The MLP, which ignores the graph, is by far
#   the least robust on Cora-MLb at small budgets.
# * **The plateau.** The collective curve drops steeply for the first flips, then flattens at
#   intermediate budgets before it falls again: beyond a few flips, one flip set cannot hurt
#   the remaining nodes without helping others. The paper reports this plateau between 15 %
#   and 30 %; our seed shows it in the same range.
# * **Citeseerb.** Label flipping hurts even more there: at two flips almost nothing is
#   certified. The paper finds GraphSAGE and GIN the most robust on Citeseerb. In this run
#   ({glue:text}`ch22_p_n_seeds` seeds; the stored 5-seed run's top two are in the table
#   above), with Cora-MLb's $C$ our two most robust at one flip are {glue:text}`ch22_cs_top_paperC`; with
#   $C$ cross-validated on Citeseerb (the authors' protocol) they are
#   {glue:text}`ch22_cs_top_cvC`, with GraphSAGE ranked {glue:text}`ch22_cs_sage_rank_cv`
#   and GIN {glue:text}`ch22_cs_gin_rank_cv` of eight. $C$ moves the SVM between its linear
#   and its sparse regime, which changes robustness strongly, and with 20 labels the
#   cross-validation itself is noisy (5 labels per fold); the authors' chosen values are not
#   published, so where our ranking differs from theirs we cannot tell whether $C$ or the
#   kernel is the cause.
# * **Multi-class.** On the 7-class Cora-ML with 4 labels per class, one flip can move a
#   label to the strongest rival class, and most predictions fall at the first flip; every
#   number there is exact (enumeration of all labellings), and the 3-class MILP agrees with
#   enumeration on the checked nodes, a certified one included.
# * **Differences from the paper.** Our CSBM draws and exact solvers are our own; the
#   Cora-MLb splits come from `label_flip_split` (with the authors' kernels they reproduce the
#   published table to the printed 0.1 point over 5 seeds, above). We use fewer seeds at the
#   default scale, and on Cora-MLb individual nodes sit close to the decision boundary, so a
#   different split moves the sample-wise numbers by several points.
#   The book's NTKs are the kernels the paper describes; the authors' code computed its
#   tables with another configuration (row-normalised GCNs, APPNP without teleport, the
#   covariance clamp), and with it the published Cora-MLb table is reproduced (above).
#
# ## Reproduce at paper scale
#
# Five seeds for the sample-wise tables and the collective curves of all architectures
# (the collective curve took {glue:text}`ch22_collective_s_each:.0f` s per architecture and
# seed in this run):
#
# ```bash
# python -m certlab.run notebooks/22_label_flip_certificates.py -p n_seeds 5 -p collective_seeds 5 -p collective_architectures '["GCN", "SGC", "APPNP", "GIN", "GraphSAGE", "GCN skip-alpha", "GCN skip-PC", "MLP"]'
# python -m certlab.run notebooks/22_label_flip_certificates.py -p real_graph citeseer -p n_seeds 5 -p citeseer_table False
# ```
#
# As sweeps (`python -m certlab.sweep SPEC --out results/paper/22_label_flip_certificates`):
# `sweeps/22_paper_scale.yaml` runs both (the stored Cora-MLb run took 83 min on one core),
# `sweeps/22_csbm_collective.yaml` the CSBM's collective curves of all eight architectures at
# five seeds, with the rest of the chapter at a small scale (the tables above take each
# number from the stored run with the most seeds of its kind).
#
# The whole Cora-MLb sample-wise table (8 architectures, 5 seeds, budgets 1-3, every
# unlabeled node) and the GCN collective curve (budgets 1-10) are also recorded by
# `python benchmarks/bench_poisoning_tables.py` (chapter "Benchmarks"): exact, in seconds
# where the paper's Gurobi MILP needed 19 s per node.
