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
# # From wide GNNs to kernels
#
# Part II certifies graph neural networks against **label flipping**: an attacker flips up to
# $k$ labels of the training nodes and the model is retrained. Certifying a prediction means
# solving the bilevel problem "worst flip set, then training", which is hopeless for a
# finite network trained by gradient descent. {cite:t}`sabanayagam2025` make
# it exact by going to the infinite-width limit: a sufficiently wide network trained with the
# hinge loss behaves like a kernel machine whose kernel is the network's **neural tangent
# kernel** (NTK) {cite}`jacot2018ntk`,
#
# $$
# \begin{aligned}
# \Theta(x, x') &= \Big\langle \frac{\partial f(x;\theta_0)}{\partial \theta},
#                  \frac{\partial f(x';\theta_0)}{\partial \theta} \Big\rangle \\
# &\xrightarrow{\ \text{width}\to\infty\ }\; \text{a deterministic kernel,}
# \end{aligned}
# $$
#
# so that training the wide GNN with the hinge loss is the bias-free kernel SVM
#
# $$
# \begin{aligned}
# &\min_{0 \le \alpha \le C}\; \tfrac12 \alpha^\top (y y^\top \odot \Theta_{LL})
#   \alpha - \mathbf 1^\top \alpha, \\
# &f(x) = \sum_{j \in L} y_j \alpha_j \Theta(x, x_j),
# \end{aligned}
# $$
#
# on the labeled nodes $L$. The next chapter replaces the inner SVM by its KKT conditions and
# certifies with a mixed-integer linear program. This chapter builds the first half: the NTK
# of each architecture in closed form, a check that finite networks really converge to it,
# and the clean accuracy of the resulting SVMs.

# %% tags=["parameters"]
# Parameters (papermill): CPU-scale defaults.
n_csbm = 200  # CSBM nodes (the paper: 200)
real_graph = "cora_ml"  # "cora_ml" (Cora-MLb) or "citeseer" (Citeseerb)
n_seeds = 5  # data / split seeds (the paper: 5)
depth = 1  # hidden layers of every architecture (the paper's main results: 1)
svm_C = "paper"  # "paper" (the authors' C per architecture) or "cv" (4-fold cross-validation)
convergence_nodes = 30  # nodes of the small CSBM graph of the finite-width check
widths = [16, 64, 256, 1024, 4096]  # hidden widths of the finite networks
n_init_seeds = 3  # random initialisations per width
device = "auto"  # the finite-width NTKs are small; "auto" picks CUDA when present
seed = 0

# %% tags=["remove-cell"]
from certlab.parameters import validate_chapter_parameters

validate_chapter_parameters("21_ntk_gnn_kernels", globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from certlab.checks import KeyResults
from certlab.graphs.binary_subsets import label_flip_split, load_binary_graph
from certlab.graphs.csbm import csbm_parameters, csbm_split, sample_csbm
from certlab.ntk import (gnn_ntk, kernel_svm_accuracy,
                         kernel_target_alignment, normalized_kernel,
                         skip_alpha_reference_ntk,
                         width_convergence)
from certlab.plotting import use_book_style
from certlab.records import stored_runs
from certlab.utils import seed_everything

use_book_style()

rng = seed_everything(seed)
print(f"running on {device}")

# %% [markdown]
# ## Data: a CSBM and Cora-MLb
#
# The **contextual stochastic block model** (CSBM) draws labels $y_i \in \{-1, +1\}$ with
# probability $\tfrac12$, features $x_i \sim \mathcal N(y_i \mu, \sigma^2 I_d)$ and edges
# independently with probability $p$ inside and $q$ between the classes. The paper uses
# $n = 200$, $d = \mathrm{round}(n / \ln^2 n) = 7$, $\mu = \frac{K\sigma}{2\sqrt d}\mathbf 1$
# with $K = 1.5$, $\sigma = 1$, $p = 2 \cdot 3.16 / (n-1)$ and $q = 2 \cdot 0.74 / (n-1)$,
# and labels 20 training and 20 validation nodes (class-balanced; both labeled and both
# attackable), leaving 160 test nodes.
#
# **Cora-MLb** is the subgraph of Cora-ML induced by its two largest classes, with isolated
# nodes dropped, binary bag-of-words features, and 5 + 5 labeled nodes per class (20 labeled
# nodes in total: the certificate's MILP grows with the square of that number).

# %%
csbm_params = csbm_parameters(n_csbm)
csbm = sample_csbm(n_csbm, seed=seed)
real = load_binary_graph(real_graph)
real_label = {"cora_ml": "Cora-MLb", "citeseer": "Citeseerb"}[real_graph]
glue("ch21_real_label", real_label, display=False)

# %%
print(f"CSBM: n={n_csbm}, d={csbm_params['d']}, mu_1={csbm_params['mu'][0]:.4f}, "
      f"p={csbm_params['p']:.5f}, q={csbm_params['q']:.5f}")
print(f"  seed {seed}: {csbm.adj.nnz // 2} edges, classes -1/+1: "
      f"{int((csbm.labels == -1).sum())}/{int((csbm.labels == 1).sum())}")
print(f"{real_label}: {real.num_nodes} nodes ({int((real.labels == 1).sum())} / "
      f"{int((real.labels == -1).sum())}), {real.num_edges} edges, "
      f"{real.features.shape[1]} binary features")
glue("ch21_real_nodes", real.num_nodes, display=False)
glue("ch21_real_classes", f"{int((real.labels == 1).sum())} and "
     f"{int((real.labels == -1).sum())}", display=False)
glue("ch21_real_edges", real.num_edges, display=False)

# %% [markdown]
# The paper's Cora-MLb has 1235 nodes, classes of 786 and 449 nodes and 2500 edges; our
# {glue:text}`ch21_real_label` has {glue:text}`ch21_real_nodes` nodes, classes of
# {glue:text}`ch21_real_classes` nodes and {glue:text}`ch21_real_edges` edges.
#
# ## The NTK of each architecture
#
# Every architecture multiplies node-wise layers by a fixed aggregation matrix $S$:
# $S = \tilde D^{-1/2}(A+I)\tilde D^{-1/2}$ for GCN {cite}`kipf2017gcn` and SGC,
# $S = D^{-1}A + I$ for GraphSAGE, $S = A + I$ for GIN, and for APPNP ten power iterations
# $S \leftarrow (1-a)\hat S S + a I$ from $S = I$ (MLP: $a = 1$, i.e. $S = I$). In the
# NTK parameterisation (weights $\mathcal N(0,1)$, layer inputs scaled by
# $\sqrt{c_\sigma/h}$) the infinite-width covariance of layer $i$ and its NTK follow the
# recursion (L hidden layers; the output layer aggregates too)
#
# $$
# \begin{aligned}
# \Sigma_1 &= S X X^\top S^\top, \\
# \Theta &\leftarrow S\big((\Theta + \Sigma_i) \odot \dot E_i\big) S^\top, \\
# \Sigma_{i+1} &= S E_i S^\top, \\
# \mathrm{NTK} &= \Sigma_{L+1} + \Theta,
# \end{aligned}
# $$
#
# where, for ReLU with He scaling and $\rho_{ij} = \Sigma_{ij} / \sqrt{\Sigma_{ii}\Sigma_{jj}}$,
# the arc-cosine expectations are
#
# $$
# \begin{aligned}
# E_{ij} &= \sqrt{\Sigma_{ii}\Sigma_{jj}}\;
#   \frac{\rho_{ij}(\pi - \arccos\rho_{ij}) + \sqrt{1-\rho_{ij}^2}}{\pi}, \\
# \dot E_{ij} &= \frac{\pi - \arccos \rho_{ij}}{\pi},
# \end{aligned}
# $$
#
# and $E = \Sigma$, $\dot E = 1$ for the linear activation (so SGC has
# $\mathrm{NTK} = 2\, S^2 XX^\top (S^2)^\top$ at depth 1). Skip-PC concatenates $X$ to every
# later layer ($\Sigma_{i+1} = S E_i S^\top + S XX^\top S^\top$); skip-$\alpha$ mixes in the
# input with weight $a = 0.1$ ($\Sigma_{i+1} = (1-a)^2 S E_i S^\top + a^2 XX^\top$). GIN's
# readout does not aggregate; APPNP and MLP apply a biased MLP to $X$ and $S$ at the output.
# The formulas of every variant are in `certlab.ntk.gnn`.
#
# Two numerical details differ from the authors' code. We clip only the correlation $\rho$ to
# $[-1, 1]$; their code clamps each covariance $\Sigma_{ij}$ to $\min(\Sigma_{ii},
# \Sigma_{jj})$, which changes valid entries between nodes of different scale (the valid bound
# is $\sqrt{\Sigma_{ii}\Sigma_{jj}}$) and can make the kernel indefinite. And everything stays
# in float64. Below, the eight architectures of the paper on the CSBM, nodes sorted by class,
# as cosine-normalised kernels $\Theta_{ij}/\sqrt{\Theta_{ii}\Theta_{jj}}$.

# %%
from certlab.ntk import PAPER_ARCHITECTURES as ARCHITECTURES
order = np.argsort(csbm.labels, kind="stable")
kernels_csbm = {name: gnn_ntk(csbm.adj, csbm.features, depth=depth, **kw)
                for name, kw in ARCHITECTURES.items()}
alignment = {name: kernel_target_alignment(k, csbm.labels) for name,
             k in kernels_csbm.items()}

fig, axes = plt.subplots(2, 4, figsize=(7.5, 4.6))
for ax, (name, k) in zip(axes.flat, kernels_csbm.items()):
    image = ax.imshow(normalized_kernel(k)[np.ix_(order, order)], cmap="RdBu_r",
                      vmin=-1,
                      vmax=1, interpolation="nearest")
    boundary = int((csbm.labels == -1).sum()) - 0.5
    ax.axhline(boundary, color="k", lw=0.6)
    ax.axvline(boundary, color="k", lw=0.6)
    ax.set_title(f"{name}\n(alignment {alignment[name]:.2f})", fontsize=8)
    ax.set(xticks=[], yticks=[])
fig.colorbar(image, ax=axes, shrink=0.6,
             label=r"$\Theta_{ij} / \sqrt{\Theta_{ii}\Theta_{jj}}$")
glue("ch21_kernels_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch21_kernels_fig
# :name: fig-ch21-kernels
#
# The cosine-normalised NTK of each architecture on one CSBM graph, nodes sorted by class
# (black lines: the class boundary), with each kernel's centred kernel-target alignment.
# Red blocks on the diagonal mean that nodes of the same class look alike to the kernel.
# ```

# %%
PSD_TOLERANCE = 1e-12  # smallest eigenvalue >= -1e-12 x largest: PSD up to round-off
psd = {}
for name, k in kernels_csbm.items():
    eig = np.linalg.eigvalsh(k)
    psd[name] = bool(eig[0] >= -PSD_TOLERANCE * eig[-1])
pd.DataFrame([{"architecture": name, "centred alignment": alignment[name],
               f"PSD to {PSD_TOLERANCE:.0e}": psd[name],
               "symmetric": bool(np.array_equal(k, k.T))}
              for name, k in kernels_csbm.items()]).style.hide(axis="index").format(
    {"centred alignment": "{:.3f}"})

# %% [markdown]
# The *centred kernel-target alignment* $\langle HKH, yy^\top\rangle_F / (\|HKH\|_F
# \|Hy\|^2)$ with $H = I - \tfrac1n \mathbf 1\mathbf 1^\top$ measures how close a kernel is to
# the ideal kernel $yy^\top$ once constant offsets are removed. The MLP kernel only sees the 7
# noisy features of a node: its class blocks are faint and its alignment is the lowest. Every
# aggregation sharpens the blocks, because neighbours are mostly of the same class
# ($p / q \approx 4.3$). APPNP and MLP carry the bias term $\mathbf 1 \mathbf 1^\top$, a
# large constant that makes their normalised heatmaps look flat; centring removes it. The
# linear SGC kernel has rank at most $d = 7$ (smallest eigenvalue zero up to round-off);
# every kernel is positive semi-definite, which the exact SVM and the MILP of the next
# chapter rely on.
#
# ## Do finite networks converge to these kernels?
#
# The closed forms are limits. We check them the direct way: build the explicit network of
# each architecture with width $h$ in the NTK parameterisation as PyTorch / PyG modules
# (`certlab.ntk.WideGNN`), compute the empirical NTK $J J^\top$ with
# `torch.func.jacrev`, and measure the relative Frobenius error to the closed form, averaged
# over random initialisations. The theory predicts an error of order $h^{-1/2}$.
#
# The same check settles a question about skip-$\alpha$: in the explicit network
# $F_{i+1} = (1-a) S\,\phi(F_i) W_{i+1} + a X V_{i+1}$, the chain rule multiplies the
# back-propagated part $\Theta$ by $(1-a)^2$ at every layer; the authors' code leaves that
# factor out. The dashed line compares the finite networks with the authors' variant.

# %%
small = sample_csbm(convergence_nodes, seed=seed + 1)
errors = {}
for name, kw in ARCHITECTURES.items():
    errors[name] = width_convergence(small.adj, small.features, widths=widths,
                                     seeds=range(n_init_seeds), depth=depth,
                                     device=device,
                                     **kw).mean(axis=1)
reference_variant = skip_alpha_reference_ntk(small.adj, small.features,
                                             depth=depth,
                                             skip_alpha=0.1)
errors_reference_variant = width_convergence(
    small.adj, small.features, "gcn", widths=widths, seeds=range(n_init_seeds),
    reference=reference_variant, depth=depth, skip="alpha", skip_alpha=0.1,
    device=device).mean(axis=1)

fig, ax = plt.subplots(figsize=(7.5, 4.2))
for name, err in errors.items():
    ax.loglog(widths, err, "o-", label=name)
ax.loglog(widths, errors_reference_variant, "k--", marker="x",
          label="skip-alpha vs the authors' variant")
w = np.asarray(widths, dtype=float)
ax.loglog(w, errors["GCN"][0] * np.sqrt(w[0] / w), ":", color="0.5",
          label=r"$\propto h^{-1/2}$")
ax.set(xlabel="hidden width h",
       ylabel=r"$\|J J^\top - \Theta\|_F \,/\, \|\Theta\|_F$",
       title=f"Empirical NTK -> closed form (CSBM, n = {convergence_nodes}, "
             f"{n_init_seeds} initialisations)")
ax.set_xticks(widths, [str(w_) for w_ in widths])
ax.xaxis.set_minor_locator(plt.NullLocator())
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
fig.tight_layout()
glue("ch21_convergence_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch21_convergence_fig
# :name: fig-ch21-convergence
#
# Relative Frobenius error between the empirical NTK $JJ^\top$ of finite networks and the
# closed form, against the hidden width (mean over random initialisations). The dotted line
# has slope $-1/2$; the dashed one compares the skip-$\alpha$ networks with the authors'
# kernel, which lacks the $(1-a)^2$ factor.
# ```

# %%
gap = np.linalg.norm(reference_variant - gnn_ntk(small.adj, small.features,
                                                 "gcn", depth=depth,
                                                 skip="alpha", skip_alpha=0.1))
relative_gap = gap / np.linalg.norm(reference_variant)
glue("ch21_alpha_gap", float(relative_gap), display=False)
print(f"relative gap between the two skip-alpha kernels: {relative_gap:.3f}")
error_table = pd.DataFrame({**errors, "skip-alpha vs authors": errors_reference_variant},
                           index=[f"h={w_}" for w_ in widths]).T
error_table.index.name = "relative error at width"
error_table.reset_index().style.hide(axis="index").format(precision=3)

# %% [markdown]
# Every architecture's error falls roughly like $h^{-1/2}$ towards zero (a single random
# network fluctuates, hence the wiggles with only a few initialisations), so the closed forms
# are the limits of the networks we meant. Against the authors' skip-$\alpha$ variant the
# error flattens towards the relative gap of {glue:text}`ch21_alpha_gap:.3f` between the two
# kernels, the price of the missing $(1-a)^2$ factor; the library therefore uses the
# factor (the unit tests check the same at $a = 0.3$, where the gap is larger).
#
# ## SVM accuracy per architecture
#
# Finally the learner that the certificates attack: the bias-free SVM on the NTK, fit on the
# labeled nodes with `certlab.poisoning.svm.fit_svm` (our exact dual solver; KKT residual
# below $10^{-10}$), evaluated on all unlabeled nodes. With `svm_C = "paper"` we use the
# authors' regularisation ($C = 0.001$ on the CSBM; on Cora-MLb $C = 0.075$ for GCN, SGC and
# skip-PC, $0.1$ for skip-$\alpha$, $0.025$ for MLP and GIN, $0.0075$ for GraphSAGE and $0.5$ for
# APPNP); `svm_C = "cv"` chooses $C$ by 4-fold stratified cross-validation on the 20 / 40
# labeled nodes instead. Each seed draws a new CSBM graph and split, and a new split of the
# real graph.

# %%
from certlab.ntk import PAPER_C_CORA_MLB as PAPER_C_REAL
from certlab.ntk import PAPER_C_CSBM
seeds = [seed + s for s in range(n_seeds)]
kernels_real = {name: gnn_ntk(real.adj, real.features, depth=depth, **kw)
                for name, kw in ARCHITECTURES.items()}
rows = []
for s in seeds:
    graph = sample_csbm(n_csbm, seed=s)
    split_csbm = csbm_split(graph, seed=s)
    split_real = label_flip_split(real.labels, seed=s)
    for name, kw in ARCHITECTURES.items():
        k = gnn_ntk(graph.adj, graph.features, depth=depth, **kw)
        for data, kernel, labels, split, c_paper in (
                ("CSBM", k, graph.labels, split_csbm, PAPER_C_CSBM),
                (real_label, kernels_real[name], real.labels, split_real,
                 PAPER_C_REAL[name])):
            result = kernel_svm_accuracy(kernel, labels, split.labeled,
                                         split.test,
                                         C=c_paper if svm_C == "paper" else None, seed=s)
            rows.append({"data": data, "architecture": name, "seed": s,
                         "accuracy": 100 * result.accuracy, "C": result.C,
                         "kkt": result.kkt_residual})
results = pd.DataFrame(rows)
summary = (results.groupby(["data", "architecture"], sort=False)["accuracy"]
           .agg(["mean", "std"]).unstack("data"))
summary = summary.reindex(list(ARCHITECTURES))

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.6))
x = np.arange(len(ARCHITECTURES))
for offset, data in ((-0.2, "CSBM"), (0.2, real_label)):
    ax.bar(x + offset, summary[("mean", data)], 0.4, yerr=summary[("std", data)],
           capsize=3, label=data)
ax.set_xticks(x, list(ARCHITECTURES), rotation=20)
ax.set(ylabel="test accuracy (%)", ylim=(50, 100),
       title=f"NTK-SVM accuracy, mean +- std over {n_seeds} seeds (C: {svm_C})")
ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
fig.tight_layout()
glue("ch21_accuracy_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch21_accuracy_fig
# :name: fig-ch21-accuracy
#
# Test accuracy of the bias-free SVM on each architecture's NTK, on the CSBM and the real
# graph (mean and standard deviation over the seeds; the axis starts at 50 %, chance level).
# ```

# %% [markdown]
# The paper does not list clean accuracies in the text we compare with, but its sample-wise
# certified accuracy at one flipped label (next chapter) is a *lower bound* on the clean
# accuracy, so it is printed beside ours as a consistency check: ours must be at least as
# high.

# %%
from certlab.ntk import PUBLISHED_SAMPLEWISE_CORA_MLB

PAPER_CERTIFIED_AT_1 = {name: acc[0] for name,
                        acc in PUBLISHED_SAMPLEWISE_CORA_MLB.items()}
print(f"every SVM solve reached a KKT residual below 1e-10: {bool(results['kkt'].max() < 1e-10)}")
accuracy_rows = []
for name in ARCHITECTURES:
    row = {"architecture": name}
    for data in ("CSBM", real_label):
        mean = summary.loc[name, ("mean", data)]
        std = summary.loc[name, ("std", data)]
        row[f"{data} acc. (%)"] = f"{mean:.1f} +- {std:.1f}"
    row[f"paper {real_label}, cert. acc. at 1 flip"] = (
        f"{PAPER_CERTIFIED_AT_1[name]:.1f}" if real_graph == "cora_ml" else "–")
    accuracy_rows.append(row)
display(pd.DataFrame(accuracy_rows).style.hide(axis="index"))
if svm_C == "cv":
    median_C = (results.groupby(["data", "architecture"], sort=False)["C"].median()
                .unstack("data").reindex(list(ARCHITECTURES)))
    median_C.columns = [f"median C, {data}" for data in median_C.columns]
    display(median_C.reset_index().style.hide(axis="index").format(
        {col: "{:g}" for col in median_C.columns}))
ranked = {data: summary[("mean", data)].sort_values(ascending=False, kind="stable")
          for data in ("CSBM", real_label)}
glue("ch21_best_csbm", " and ".join(ranked["CSBM"].index[:2]), display=False)
glue("ch21_best_real", ranked[real_label].index[0], display=False)
glue("ch21_gnn_spread_real", float(ranked[real_label].drop("MLP").max()
                                   - ranked[real_label].drop("MLP").min()), display=False)

# %% [markdown]
# What the numbers say, at the scale we ran (the paper's $n$, seeds and labeled-set sizes;
# our own random graphs and splits, so individual values differ from the authors'):
#
# * **Structure helps.** On both graphs every GNN beats the MLP: with 20 or 40 labels the
#   features alone are too noisy, and aggregation averages the noise out along mostly
#   homophilous edges. The exception in size is APPNP on the CSBM, only narrowly ahead of the
#   MLP and with the largest spread over seeds. Its kernel is dominated by the constant bias
#   term (the flat heatmap above) and the paper's $C = 0.001$ is too small for it at our
#   kernel scale: with $C$ chosen by cross-validation (`svm_C = "cv"`, larger $C$ for APPNP)
#   it is on par with the other GNNs.
# * **No architecture dominates.** On {glue:text}`ch21_real_label` the GNNs lie within
#   {glue:text}`ch21_gnn_spread_real:.1f` points of each other; which one is best depends on
#   the data set (in this run {glue:text}`ch21_best_csbm` lead on the CSBM,
#   {glue:text}`ch21_best_real` on {glue:text}`ch21_real_label`),
#   the first hint of the paper's finding that robustness hierarchies are data dependent.
# * **Consistent with the paper.** Our clean accuracies on Cora-MLb lie above the paper's
#   certified accuracies at one flip, as they must; the gap is what a single flipped label
#   already costs, which the next chapter computes exactly.

# %% [markdown]
# ## What CI checks on every machine
#
# The graphs and the closed-form kernels are deterministic double-precision computations; the
# finite-width networks are float32 PyTorch models whose errors vary in the third decimal
# between CPUs, so the convergence is checked as the claim the chapter makes (the error
# shrinks with the width), not digit by digit. Round-off quantities are checked against a
# stated tolerance.

# %% tags=["nbval-check-output"]
key = KeyResults("21_ntk_gnn_kernels")
key.exact(f"CSBM seed {seed}: edges, class -1, class +1",
          [csbm.adj.nnz // 2, int((csbm.labels == -1).sum()), int((csbm.labels == 1).sum())])
key.exact(f"{real_label}: nodes, edges, features",
          [real.num_nodes, real.num_edges, real.features.shape[1]])
key.claim(f"every CSBM kernel is symmetric and PSD to {PSD_TOLERANCE:.0e} (relative)",
          all(psd.values()) and all(np.array_equal(k, k.T) for k in kernels_csbm.values()))
key.claim(f"every NTK error falls by half or more from width {widths[0]} to {widths[-1]}",
          all(err[-1] <= 0.5 * err[0] for err in errors.values()))
key.claim("at the largest width our skip-alpha kernel beats the authors' variant",
          errors["GCN skip-alpha"][-1] < errors_reference_variant[-1])
key.claim("every SVM solve reached a KKT residual below 1e-10", results["kkt"].max() < 1e-10)
gnns = [name for name in ARCHITECTURES if name != "MLP"]
key.claim(f"every GNN is more accurate than the MLP on {real_label} (mean over seeds)",
          all(summary.loc[name, ("mean", real_label)] > summary.loc["MLP", ("mean", real_label)]
              for name in gnns))
if real_graph == "cora_ml":
    key.claim("every architecture's clean accuracy >= the paper's cert. acc. at 1 flip",
              all(summary.loc[name, ("mean", real_label)] >= PAPER_CERTIFIED_AT_1[name]
                  for name in ARCHITECTURES))
for name in ARCHITECTURES:
    for data in ("CSBM", real_label):
        key.measured(f"{data} {name}: SVM accuracy (%)", summary.loc[name, ("mean", data)])
key.report()

# %% [markdown]
# ## Our numbers next to the paper's

# %% tags=["hide-input"]
from certlab.records import save_record

save_record({"real_graph": real_graph,
             "svm_accuracy": {data: {name: float(summary.loc[name, ("mean", data)])
                                     for name in ARCHITECTURES}
                              for data in ("CSBM", real_label)},
             "largest_width": int(widths[-1]),
             "error_at_largest_width": {name: float(err[-1]) for name, err in errors.items()}})
runs = stored_runs("21_ntk_gnn_kernels")
paper_sizes = n_seeds >= 5 and n_csbm == 200 and depth == 1
SAME_AS_RUN = "this run (the defaults are the paper's sizes)"


def at_paper_scale(get, default):
    """The value `get` extracts from the first stored paper-scale run on this graph."""
    for run in runs:
        if run["parameters"].get("real_graph", "cora_ml") != real_graph:
            continue
        try:
            return f"{get(run['values'])} (run {run['run']})"
        except (KeyError, TypeError, IndexError):
            continue
    return default


gcn_real = summary.loc["GCN", ("mean", real_label)]
above = sum(summary.loc[name, ("mean", real_label)] >= PAPER_CERTIFIED_AT_1[name]
            for name in ARCHITECTURES)
worst_error = max(err[-1] for err in errors.values())
comparison_rows = [
    {"quantity": f"{real_label}: nodes (classes), edges",
     "paper": "1235 (786 / 449), 2500" if real_graph == "cora_ml" else "–",
     "ours, this run": f"{real.num_nodes} ({int((real.labels == 1).sum())} / "
                       f"{int((real.labels == -1).sum())}), {real.num_edges}",
     "ours, paper scale": "same data",
     "scale and why": "the same construction: the two largest classes, no isolated nodes"},
    {"quantity": f"{real_label} GCN: clean accuracy (%)",
     "paper": (f">= {PAPER_CERTIFIED_AT_1['GCN']:.1f} (its cert. acc. at 1 flip)"
               if real_graph == "cora_ml" else "–"),
     "ours, this run": f"{gcn_real:.1f}",
     "ours, paper scale": at_paper_scale(
         lambda v: f"{v['svm_accuracy'][real_label]['GCN']:.1f}",
         SAME_AS_RUN if paper_sizes else "not run yet"),
     "scale and why": f"{n_seeds} seeds of our own splits; the paper lists no clean "
                      "accuracies in the text we compare with"},
    {"quantity": "architectures with clean acc. >= the paper's cert. acc. at 1 flip",
     "paper": "all 8 (it must hold)" if real_graph == "cora_ml" else "–",
     "ours, this run": f"{above} of {len(ARCHITECTURES)}",
     "ours, paper scale": SAME_AS_RUN if paper_sizes else "not run yet",
     "scale and why": "a consistency check, not a reproduced number"},
    {"quantity": f"largest empirical-NTK error at width {widths[-1]}",
     "paper": "-> 0 as the width grows (theory)",
     "ours, this run": f"{worst_error:.3f} ({n_init_seeds} initialisations)",
     "ours, paper scale": at_paper_scale(
         lambda v: f"{max(v['error_at_largest_width'].values()):.3f} at width "
                   f"{v['largest_width']}", "not run yet (widths to 16384, 10 inits)"),
     "scale and why": f"graph of {convergence_nodes} nodes: the Jacobians of wide "
                      "networks are costly"},
]
pd.DataFrame(comparison_rows).style.hide(axis="index")

# %% [markdown]
# ## Reproduce at paper scale
#
# The defaults already use the paper's graph sizes, labeled-set sizes and 5 seeds; the
# convergence check can be pushed to wider networks and more initialisations, and the SVM's
# $C$ chosen by cross-validation instead of the authors' values:
#
# ```bash
# python -m certlab.run notebooks/21_ntk_gnn_kernels.py -p widths "[16, 64, 256, 1024, 4096, 16384]" -p n_init_seeds 10 -p svm_C cv
# python -m certlab.run notebooks/21_ntk_gnn_kernels.py -p real_graph citeseer
# ```
