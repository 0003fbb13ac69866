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
# # Certifying GNNs for node classification
#
# The {doc}`previous chapter <11_smoothing_certificate>` derived the certificate of
# {cite:t}`bojchevski2020` for one input with a known bound $\underline{p_A}$. Here we use it the
# way the paper does: certify **graph neural networks** on the Cora-ML citation graph against
# an adversary who adds up to $r_a$ and deletes up to $r_d$ ones, either in the binary
# bag-of-words **attributes** $X \in \{0,1\}^{n \times d}$ or in the **graph structure**
# $A \in \{0,1\}^{n \times n}$ (the pairs $i < j$ of an undirected graph), or in both.
#
# The recipe, for every node at once:
#
# 1. **Train with noise.** The base classifier $f$ (GCN {cite}`kipf2017gcn`, GAT, APPNP) only
#    ever sees noisy inputs $\phi(x)$ at certification time, so it is trained on them: every
#    epoch draws a fresh noisy graph (noise augmentation).
# 2. **Vote.** $n_0$ noisy graphs pick the top class $y_A$ of every node; $n$ fresh noisy graphs
#    count its votes. A batch of noisy graphs is one disjoint union and one forward pass.
# 3. **Bound.** One-sided Clopper-Pearson bounds at level $\alpha / C$ for $C$ classes
#    (Bonferroni): $\underline{p_A}$ for $y_A$ and $\overline{p_B}$ for every other class. The
#    smoothed classifier abstains where $\underline{p_A} \le \overline{p_B}$.
# 4. **Certify.** The node is certified at $(r_a, r_d)$ when
#    $\rho_{lower}(\underline{p_A}) > \rho_{upper}(\overline{p_B})$, the worst cases of the
#    Neyman-Pearson problem over the $r_a + r_d + 1$ likelihood-ratio regions.
#
# The sampler never builds a dense matrix: deletions are a Bernoulli($p_-$) mask over the
# stored ones, and additions are drawn by geometric skipping over the zeros, so each of the
# $n(n-1)/2 \approx 3.9$ million node pairs (or $8.1$ million attribute cells) flips
# independently with probability $p_+$, exactly, at a cost proportional to the number of ones.

# %% tags=["parameters"]
# Parameters (papermill): CPU-scale defaults (about a minute on one core).
dataset = "cora_ml"  # certlab.data.load_graph name
models = ["gcn", "gat", "appnp"]  # node classifiers to certify
attr_p_plus = 0.01  # attribute noise: probability that a 0 becomes 1
attr_p_minus = 0.6  # attribute noise: probability that a 1 becomes 0
graph_p_plus = 0.001  # structure noise: probability that a non-edge becomes an edge
graph_p_minus = 0.4  # structure noise: probability that an edge is deleted
dense_p = 0.01  # non-sparse comparison noise on the attributes: p+ = p- = dense_p
n0 = 10  # selection samples per node (paper: 1000)
n = 100  # estimation samples per node (paper: 100000)
alpha = 0.01  # overall error probability of each node's bounds
batch_size = 50  # noisy graphs per forward pass
max_epochs = 25  # training epochs with noise augmentation (paper: up to 3000)
patience = 50  # early stopping patience (paper: 50)
lr = 0.01  # Adam learning rate (paper: 0.001; larger here because we train few epochs)
weight_decay = 0.001  # Adam weight decay (paper: 0.001)
n_per_class = 20  # labelled training nodes per class (paper: 20)
n_val_per_class = 20  # validation nodes per class (paper: 20)
max_ra = 3  # largest addition radius in the grids
max_rd = 6  # largest deletion radius in the grids
# smoothed models to train and certify: the sparse "attributes" and "structure" noises (every
# model), the "non-sparse" attribute noise and the "joint" noise (the first model only)
smoothings = ["attributes", "structure", "non-sparse", "joint"]
device = "auto"  # "auto" picks CUDA when present
seed = 0

# %% tags=["remove-cell"]
from certlab.parameters import validate_chapter_parameters

validate_chapter_parameters("12_smoothing_node_classification", globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from IPython.display import Markdown, display
from myst_nb import glue

from certlab.data import load_graph
from certlab.records import save_record, stored_runs
from certlab.checks import KeyResults
from certlab.graphs.models import node_model
from certlab.graphs.preprocess import standard_preprocessing, stratified_split
from certlab.graphs.training import (evaluate_node_classifier,
                                     train_node_classifier)
from certlab.smoothing.certificate import max_certified_radius
from certlab.smoothing.joint import BinaryBlock, certify_joint
from certlab.smoothing.monte_carlo import (largest_certifiable_radius, smooth_nodes,
                                           smoothing_bounds, unanimous_bounds)
from certlab.smoothing.sampling import SparseNoise
from certlab.graphs.models import NODE_MODELS
from certlab.plotting import use_book_style
from certlab.utils import seed_everything

use_book_style()

for _m in models:
    if _m not in NODE_MODELS:
        raise ValueError(f"unknown model {_m!r} in models: choose from {sorted(NODE_MODELS)}")
rng = seed_everything(seed)
graph = standard_preprocessing(load_graph(dataset))
n_nodes, n_features = graph.attr.shape
n_classes = int(graph.labels.max()) + 1
idx_train, idx_val, idx_test = stratified_split(graph.labels, n_per_class, rng,
                                                n_val_per_class=n_val_per_class)
attr_noise = SparseNoise(attr_p_plus, attr_p_minus)
graph_noise = SparseNoise(graph_p_plus, graph_p_minus)
dense_noise = SparseNoise(dense_p, dense_p)
print(f"running on {device}")

# %%
print(f"{dataset}: {n_nodes} nodes, {graph.adj.nnz // 2} edges, "
      f"{n_classes} classes")
print(f"{n_features} binary attributes ({graph.attr.nnz} ones, "
      f"{graph.attr.nnz / n_nodes:.1f} per node)")
glue("ch12_nodes", n_nodes, display=False)
glue("ch12_edges", graph.adj.nnz // 2, display=False)
print(f"split: {idx_train.size} train, {idx_val.size} validation, "
      f"{idx_test.size} test nodes")
print(f"expected changes per noisy graph: attributes "
      f"-{attr_p_minus * graph.attr.nnz:.0f} "
      f"+{attr_p_plus * (n_nodes * n_features - graph.attr.nnz):.0f}; edges "
      f"-{graph_p_minus * graph.adj.nnz / 2:.0f} "
      f"+{graph_p_plus * (n_nodes * (n_nodes - 1) / 2 - graph.adj.nnz / 2):.0f}")

# %% [markdown]
# The preprocessing is the paper's: symmetrize, drop self-loops, keep the largest connected
# component ({glue:text}`ch12_nodes` nodes, {glue:text}`ch12_edges` edges here) and binarize the attributes. The expected
# changes show why the noise must be sparsity-aware: with $p_+ = 0.01$ the attributes gain
# about half as many ones as they have, and $p_+ = 0.001$ adds roughly half as many edges as
# the graph has, although both rates look tiny. A single flip probability large enough to delete many ones would bury the data
# under additions.
#
# ## Train and certify the three GNNs
#
# For each model and each perturbation type (attributes or structure) we train a fresh model
# with that noise, smooth it with the same noise, and keep the bounds of every node.

# %%
def train_and_smooth(name, noise_kind, noise):
    """Train `name` with noise augmentation, then smooth it; returns (clean acc, result)."""
    kwargs = {"attr_noise": noise} if noise_kind == "attributes" else {"graph_noise": noise}
    if noise_kind == "joint":
        kwargs = {"attr_noise": noise[0], "graph_noise": noise[1]}
    model = node_model(name, n_features, n_classes)
    train_node_classifier(model, graph.attr, graph.adj, graph.labels, idx_train,
                          idx_val,
                          lr=lr, weight_decay=weight_decay,
                          max_epochs=max_epochs,
                          patience=patience, device=device, seed=seed, **kwargs)
    clean_acc = evaluate_node_classifier(model, graph.attr, graph.adj,
                                         graph.labels, idx_test,
                                         device=device)
    result = smooth_nodes(model, graph.attr, graph.adj, n0=n0, n=n, alpha=alpha,
                          batch_size=batch_size, device=device, seed=seed,
                          progress=False,
                          **kwargs)
    return clean_acc, result


noises = {kind: noise for kind, noise in (("attributes", attr_noise),
                                          ("structure", graph_noise))
          if kind in smoothings}
runs = {}
for kind, noise in noises.items():
    for name in models:
        runs[kind, name] = train_and_smooth(name, kind, noise)

# %% [markdown]
# ## Certified ratio over the $(r_a, r_d)$ grid
#
# The **certified ratio** at $(r_a, r_d)$ is the share of all nodes whose smoothed prediction
# is certified for every perturbation that adds at most $r_a$ and deletes at most $r_d$ ones
# (as in the paper, correctness is not required); the **certified accuracy** also requires the
# prediction to be correct (we report it on the test nodes).

# %%
grids = {}
for (kind, name), (clean_acc, result) in runs.items():
    noise = noises[kind]
    grids[kind, name] = result.certify_grid(noise.p_plus, noise.p_minus, max_ra,
                                            max_rd)

fig, axes = plt.subplots(len(noises), len(models), figsize=(7.5, 5.2),
                         squeeze=False, constrained_layout=True)
for row, kind in enumerate(noises):
    for col, name in enumerate(models):
        ratio = grids[kind, name].mean(axis=0)
        ax = axes[row, col]
        im = ax.imshow(ratio, origin="lower", vmin=0, vmax=1, cmap="viridis",
                       aspect="auto")
        for (i, j), v in np.ndenumerate(ratio):
            if max_rd <= 8 or j % 2 == 0:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.5 else "black")
        ax.set(title=f"{name.upper()}, {kind}", xlabel="deletions $r_d$",
               ylabel="additions $r_a$", yticks=range(max_ra + 1),
               xticks=range(0, max_rd + 1, 1 if max_rd <= 8 else 2))
fig.colorbar(im, ax=axes, label="certified ratio", shrink=0.8)
glue("ch12_grid_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch12_grid_fig
# :name: fig-ch12-grid
#
# Certified ratio (share of all nodes certified) for every $(r_a, r_d)$ up to the grid's
# limits, one panel per model (columns) and perturbed part (rows). Each ratio falls much
# faster upwards (additions) than to the right (deletions).
# ```
#
# Read each heatmap of {numref}`fig-ch12-grid` from the bottom-left corner (the clean input, where the ratio is the share
# of nodes where the smoothed classifier does not abstain): moving right (more deletions)
# costs far less than moving up (more additions). With $p_- \gg p_+$ the noise already
# deletes most ones, so a few more deletions barely change the distribution of $\phi(x)$;
# an addition of a one is something the noise almost never does, so it is far more visible.
# This is the paper's observation that GNNs (smoothed with sparse noise) are more robust to
# deletions than to additions.

# %%
radius_curves = {}
fig, axes = plt.subplots(1, len(noises), figsize=(3.75 * len(noises), 3.4),
                         squeeze=False, constrained_layout=True)
axes = axes[0]
for ax, kind in zip(axes, noises):
    for k, name in enumerate(models):
        grid = grids[kind, name]
        shift = 0.08 * (k - (len(models) - 1) / 2)  # dodge: equal values stay visible
        (line,) = ax.plot(np.arange(max_rd + 1) + shift, grid[:, 0, :].mean(0),
                          marker="o", ms=3,
                          label=f"{name.upper()} deletions ($r_a = 0$)")
        ax.plot(np.arange(max_ra + 1) + shift, grid[:, :, 0].mean(0), ls="--",
                marker="s", ms=4, mfc="none",
                color=line.get_color(),
                label=f"{name.upper()} additions ($r_d = 0$)")
    ax.set(title=f"perturbing the {kind}", xlabel="radius",
           ylabel="certified ratio",
           ylim=(0, 1.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
handles, labels_ = axes[0].get_legend_handles_labels()
fig.legend(handles, labels_, loc="outside lower center", ncol=3, fontsize=7.5)
glue("ch12_radius_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch12_radius_fig
# :name: fig-ch12-radius
#
# The bottom row and left column of each heatmap in {numref}`fig-ch12-grid` as curves:
# certified ratio against deletions only (solid) and additions only (dashed) for each model
# (markers shifted slightly sideways so that equal values stay visible).
# ```

# %%
rows = []
for (kind, name), (clean_acc, result) in runs.items():
    noise = noises[kind]
    grid = grids[kind, name]
    correct = result.predicted == graph.labels
    rd_max = max_certified_radius(result.p_lower, noise.p_plus, noise.p_minus,
                                  kind="rd",
                                  p_upper=result.certificate_p_upper)
    ra_max = max_certified_radius(result.p_lower, noise.p_plus, noise.p_minus,
                                  kind="ra",
                                  p_upper=result.certificate_p_upper)
    rows.append({
        "perturbation": kind, "model": name.upper(),
        "clean acc (base f)": clean_acc,
        "smoothed acc": result.accuracy(graph.labels, idx_test),
        "abstain": result.abstain.mean(),
        "cert. acc rd=2": (grid[idx_test, 0, 2] & correct[idx_test]).mean(),
        "cert. acc ra=1": (grid[idx_test, 1, 0] & correct[idx_test]).mean(),
        "avg max rd": np.maximum(rd_max, 0).mean(),
        "avg max ra": np.maximum(ra_max, 0).mean(),
    })
summary = pd.DataFrame(rows).set_index(["perturbation", "model"])
summary.reset_index().style.hide(axis="index").format(precision=2)

# %% [markdown]
# "avg max rd" is the **true** largest certified deletion radius averaged over all nodes
# (abstentions count as 0). The reference code reports "radius + 1" (and 1 for nodes it cannot
# certify), which inflates this average by about one.
#
# ## Sparse vs non-sparse smoothing
#
# The paper's headline comparison: with sparse noise the average maximum certified deletion
# radius is **6.47**, with the classic non-sparse noise $p_+ = p_-$ it is **1.75** (which
# perturbation and which noise parameters the paper used for it is the question of the next
# section). We train and smooth a GCN with $p_+ = p_- =$ `dense_p` on the attributes and
# compare it with the sparse attribute GCN above (`attr_p_plus`, `attr_p_minus`).

# %%
dense_name = models[0]
if "non-sparse" in smoothings:
    runs["non-sparse", dense_name] = train_and_smooth(dense_name, "attributes",
                                                      dense_noise)

# %%
# the paper's Table (n0 = 1000, n = 100000, alpha = 0.01): average max certified rd
paper_avg_rd = {"sparse": 6.47, "non-sparse": 1.75}
compared_runs = [(label, kind, noise) for label, kind, noise in
                 (("sparse", "attributes", attr_noise), ("non-sparse", "non-sparse", dense_noise))
                 if (kind, dense_name) in runs]
comparison = {}
for label, kind, noise in compared_runs:
    result = runs[kind, dense_name][1]
    rd_max = max_certified_radius(result.p_lower, noise.p_plus, noise.p_minus,
                                  kind="rd",
                                  p_upper=result.certificate_p_upper)
    comparison[label] = np.maximum(rd_max, 0)
    print(f"{label} (p+={noise.p_plus}, p-={noise.p_minus}), {dense_name.upper()}:")
    print(f"  average max certified rd = {comparison[label].mean():.2f} "
          f"(paper at n = 100000: {paper_avg_rd[label]})")
    print(f"  smoothed accuracy {result.accuracy(graph.labels, idx_test):.2f}")

# %% [markdown]
# With $n =$ {glue:text}`ch12_n` samples even unanimous votes give at most
# $\underline{p_A} =$ {glue:text}`ch12_p_cap:.4f`, and with $p_+ = p_- =$
# {glue:text}`ch12_dense_p` that certifies at most $r_d =$ {glue:text}`ch12_dense_best_rd`
# deletions: the non-sparse noise needs $\underline{p_A}$ much closer to one than this $n$
# allows. To see what the *same vote shares* would give with the paper's
# $n = 100000$, we scale every node's estimation votes by $100000 / n$ and recompute the bounds.
# This is a **projection, not a certificate** (the shares of $n$ samples are noisy, and a
# node with $n/n$ votes may have a true $p_A$ well below $0.9999$); it only shows how the
# gap between the two noises opens up once the bounds can approach one.

# %%
# the best bounds (and radii) that n samples give: an input whose every vote agrees
dense_best_rd = largest_certifiable_radius(n0, n, alpha, n_classes, dense_noise.p_plus,
                                           dense_noise.p_minus)
glue("ch12_n", n, display=False)
glue("ch12_n_classes", n_classes, display=False)
glue("ch12_p_cap", float(unanimous_bounds(n0, n, alpha, n_classes).p_lower[0]), display=False)
glue("ch12_dense_p", dense_p, display=False)
glue("ch12_dense_best_rd", max(dense_best_rd, 0), display=False)
paper_n = 100_000
scale = max(paper_n // n, 1)
projected = {}
for label, kind, noise in compared_runs:
    result = runs[kind, dense_name][1]
    proj = smoothing_bounds(result.counts_selection,
                            result.counts_estimation * scale, alpha,
                            n0=n0, n=n * scale)
    rd_proj = max_certified_radius(proj.p_lower, noise.p_plus, noise.p_minus,
                                   kind="rd",
                                   p_upper=proj.certificate_p_upper)
    projected[label] = np.maximum(rd_proj, 0)
    print(f"{label}: projected average max certified rd, n = {n * scale}: "
          f"{projected[label].mean():.2f}")

# %%
if comparison:  # at least one of the sparse and non-sparse attribute runs
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.2), constrained_layout=True)
    for ax, (title, data) in zip(axes, (("certified, n = %d" % n, comparison),
                                        ("projection to n = %d (not a certificate)" % (n * scale),
                                         projected))):
        top = int(max(v.max() for v in data.values()))
        bins = np.arange(top + 2) - 0.5
        for label, radii in data.items():
            ax.hist(radii, bins=bins, alpha=0.6,
                    label=f"{label}: mean {radii.mean():.2f}")
        ax.set(xlabel="max certified $r_d$ (attributes)",
               ylabel="nodes",
               title=f"{dense_name.upper()}: {title}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper right")
    glue("ch12_sparse_fig", fig, display=False)
    plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch12_sparse_fig
# :name: fig-ch12-sparse
#
# Histogram of each node's largest certified attribute-deletion radius, sparse noise against
# $p_+ = p_-$ noise (left: certified with this run's $n$; right: the projection to
# $n = 100000$, which is not a certificate). The sparse histogram reaches much larger radii.
# ```

# %% [markdown]
# ### Which setting is the paper's 6.47 vs 1.75?
#
# The paper's slide puts "6.47 with sparse smoothing and 1.75 without" beside the edge
# (structure) results, and its reference code reports every node's largest certified radius
# **plus one** (and 1 for a node it cannot certify). Read in that convention the true averages
# are 5.47 and 0.75. The table below puts both readings beside ours, for the two sparse
# settings the chapter runs (attributes $p_+ = 0.01, p_- = 0.6$; structure
# $p_+ = 0.001, p_- = 0.4$) and the non-sparse attribute noise $p_+ = p_- =$ `dense_p`,
# from this run and from the stored paper-scale runs ($n_0 = 1000$, $n = 100000$,
# 3000 epochs). Our convention adds exactly one to every node, so "+1" is our average plus
# one.

# %%
PAPER_REPORTED = {"sparse": 6.47, "non-sparse": 1.75}  # the paper, reference convention


def fidelity_settings(values, model):
    """setting -> our true average max rd, from a record's values (this run or stored)."""
    out = {}
    for kind in ("attributes", "structure"):
        key = f"{kind} {model.upper()}"
        if key in values.get("avg_max_rd", {}):
            out[f"sparse {kind}"] = values["avg_max_rd"][key]
    if "dense_avg_max_rd" in values:
        out["non-sparse attributes"] = values["dense_avg_max_rd"]
    return out


this_values = {"avg_max_rd": {f"{k} {m}": float(v) for (k, m), v
                              in summary["avg max rd"].items()}}
if "non-sparse" in comparison:
    this_values["dense_avg_max_rd"] = float(comparison["non-sparse"].mean())
fidelity_runs = [("this run", this_values)] + [
    (f"paper scale ({run['run']})", run["values"])
    for run in stored_runs("12_smoothing_node_classification")
    if run["values"].get("model") == dense_name]
fidelity_rows = []
for setting in ("sparse attributes", "sparse structure", "non-sparse attributes"):
    paper = PAPER_REPORTED[setting.split()[0]]
    row = {"setting": setting, "paper (radius + 1)": f"{paper:.2f}",
           "paper as true radius": f"{paper - 1:.2f}"}
    for label, values in fidelity_runs:
        ours = fidelity_settings(values, dense_name).get(setting)
        row[f"ours, {label}"] = ("–" if ours is None
                                 else f"{ours:.2f} (+1: {ours + 1:.2f})")
    fidelity_rows.append(row)
fidelity_table = pd.DataFrame(fidelity_rows)
# what n = 100000 allows at all: the largest r_d that a node with unanimous votes certifies
def largest_rd_at_paper_n(p_plus, p_minus):
    return largest_certifiable_radius(1000, 100_000, alpha, n_classes, p_plus, p_minus)


paper_p_cap = float(unanimous_bounds(1000, 100_000, alpha, n_classes).p_lower[0])


cap_rows = [("sparse attributes", attr_noise.p_plus, attr_noise.p_minus),
            ("sparse structure", graph_noise.p_plus, graph_noise.p_minus)]
cap_rows += [(f"non-sparse, p = {p}", p, p) for p in (0.001, 0.01, 0.02, 0.05, 0.1, 0.2)]
cap_table = pd.DataFrame([{"noise": label, "p+": pp, "p-": pm,
                           "largest r_d at n = 100000": largest_rd_at_paper_n(pp, pm)}
                          for label, pp, pm in cap_rows])
dense_cap = largest_rd_at_paper_n(dense_p, dense_p)
non_sparse = cap_table.iloc[2:]
smallest_p_for_two = (non_sparse.loc[non_sparse["largest r_d at n = 100000"] >= 2, "p+"].min()
                      if (non_sparse["largest r_d at n = 100000"] >= 2).any() else None)
found = {}  # setting -> our true average, over every stored paper-scale run of this model
for _, values in fidelity_runs[1:]:
    found.update(fidelity_settings(values, dense_name))
FAR = 1.0  # a reading more than one radius from the paper's number is "far from it"
verdict = [
    f"At n = 100000 a node whose every vote agrees gets the lower bound "
    f"{paper_p_cap:.5f} on its top-class probability, and with the book's "
    f"non-sparse noise (p+ = p- = {dense_p}) that certifies at most rd = {dense_cap} "
    "(the table below). "
    + (f"An *average* of 1.75 true radii is therefore impossible with this noise: the "
       f"paper's 1.75 is the reference code's radius + 1 (a true 0.75, which is feasible), "
       f"or it comes from a larger flip probability"
       + (f" (p ≥ {smallest_p_for_two} allows rd ≥ 2)."
          if smallest_p_for_two else ".")
       if dense_cap < 1.75 else
       "Both readings of 1.75 are feasible with this noise."),
    f"The sparse noises allow up to rd = {cap_table.iloc[0, 3]} (attributes) and "
    f"{cap_table.iloc[1, 3]} (structure), so "
    + ("both readings of 6.47 (a true 6.47 or 5.47) are feasible in either setting: only "
       "trained models at n = 100000 can say which setting the paper reports."
       if min(cap_table.iloc[0, 3], cap_table.iloc[1, 3]) >= 6.47 else
       "the bound alone rules out some readings of 6.47 (compare the table).")]
if found:
    # our average in both conventions: as a true radius, and as the reference code reports it
    readings = {(setting, convention): value + shift for setting, value in found.items()
                for convention, shift in (("as true radii", 0.0), ("as radius + 1", 1.0))}

    def closest_reading(prefix, target):
        """((setting, convention), value) of our readings closest to the paper's `target`."""
        options = {k: v for k, v in readings.items() if k[0].startswith(prefix)}
        return min(options.items(), key=lambda kv: abs(kv[1] - target)) if options else None

    (setting, convention), value = closest_reading("sparse", PAPER_REPORTED["sparse"])
    missing = [k for k in ("sparse attributes", "sparse structure") if k not in found]
    text = (f"At paper scale ({dense_name.upper()}), the closest of our readings to the paper's "
            f"{PAPER_REPORTED['sparse']} is the {setting.removesuffix('s')} noise counted "
            f"{convention} "
            f"({value:.2f}"
            + (", far from it" if abs(value - PAPER_REPORTED["sparse"]) > FAR else "")
            + (f"; the {' and '.join(missing)} run is not stored yet" if missing else "")
            + ")")
    dense_best = closest_reading("non-sparse", PAPER_REPORTED["non-sparse"])
    if dense_best is not None:
        (_, convention), value = dense_best
        text += (f", and to its {PAPER_REPORTED['non-sparse']} the non-sparse attribute noise "
                 f"counted {convention} ({value:.2f}, "
                 f"{abs(value - PAPER_REPORTED['non-sparse']):.2f} away)")
    verdict.append(text + ".")
    # does 6.47 fall between our sparse settings, each far from it in both conventions (far
    # below even counted +1, or far above even as a true radius)? then none is the paper's
    target = PAPER_REPORTED["sparse"]
    sparse_found = {k: v for k, v in found.items() if k.startswith("sparse")}
    below = {k: v for k, v in sparse_found.items() if v + 1 < target - FAR}
    above = {k: v for k, v in sparse_found.items() if v > target + FAR}
    if below and above and len(below) + len(above) == len(sparse_found):
        def listed(settings):
            """'structure noise (2.12; +1: 3.12)' for each setting."""
            return " and ".join(f"{k.removeprefix('sparse ').removesuffix('s')} noise "
                                f"({v:.2f}; +1: {v + 1:.2f})" for k, v in settings.items())
        verdict.append(
            f"The paper's {target} lies between our sparse settings in both conventions: the "
            f"{listed(below)} certifies less, the {listed(above)} more, so neither "
            f"is the paper's setting; its noise parameters for that number are not in our "
            f"source (a different flip probability, model or training would move it), and "
            f"the sparse {target} stays unreproduced"
            + (", while the qualitative claim holds: the sparse attribute noise certifies "
               f"{found['sparse attributes'] / found['non-sparse attributes']:.0f} times the "
               f"average deletion radius of the non-sparse one."
               if found.get("non-sparse attributes", 0) > 0
               and found.get("sparse attributes", 0) > found["non-sparse attributes"]
               else "."))
else:
    verdict.append(
        "No paper-scale run of this chapter is stored yet (each model needs several "
        "CPU-hours, see `sweeps/12_paper_scale.yaml`), so that last question stays open "
        "here; the columns above fill in when one is.")
fidelity_verdict = " ".join(verdict)
glue("ch12_fidelity_verdict", Markdown(fidelity_verdict), display=False)
fidelity_table.style.hide(axis="index")

# %% [markdown]
# {glue:md}`ch12_fidelity_verdict`

# %%
cap_table.style.hide(axis="index").format({"p+": "{:g}", "p-": "{:g}"})

# %% [markdown]
# ## Joint certificate: structure and attributes at once
#
# Perturbing both parts with independent noise, the likelihood ratio of an outcome is the
# product of the two ratios, so the regions of the joint problem are the Cartesian product of
# the two region lists. The product must be **re-sorted by ratio** before the greedy fill; the
# reference implementation skips this and overstates robustness (`certlab.smoothing.joint`
# re-sorts, and its tests check it against brute-force enumeration). We smooth a model trained with both noises and
# certify deletions in both parts at once ($r_a = 0$ in both).

# %%
joint_ratio = None  # certified ratio, edge rd (rows) x attribute rd (columns)
if "joint" in smoothings:
    runs["joint", dense_name] = train_and_smooth(dense_name, "joint", (attr_noise,
                                                                       graph_noise))
    joint_result = runs["joint", dense_name][1]
    max_joint = min(max_rd, 6)
    joint_ratio = np.zeros((max_joint + 1, max_joint + 1))
    for rd_graph in range(max_joint + 1):
        for rd_attr in range(max_joint + 1):
            certified = certify_joint(
                joint_result.p_lower,
                BinaryBlock(graph_noise.p_plus, graph_noise.p_minus, ra=0,
                            rd=rd_graph),
                BinaryBlock(attr_noise.p_plus, attr_noise.p_minus, ra=0,
                            rd=rd_attr),
                p_upper=joint_result.certificate_p_upper)
            joint_ratio[rd_graph, rd_attr] = (certified & ~joint_result.abstain).mean()

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    im = ax.imshow(joint_ratio, origin="lower", vmin=0, vmax=1, cmap="viridis")
    for (i, j), v in np.ndenumerate(joint_ratio):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.5 else "black")
    ax.set(xlabel="attribute deletions", ylabel="edge deletions",
           xticks=range(max_joint + 1),
           yticks=range(max_joint + 1),
           title=f"{dense_name.upper()}: joint certificate")
    fig.colorbar(im, label="certified ratio")
    fig.tight_layout()
    glue("ch12_joint_fig", fig, display=False)
    plt.close(fig)
else:
    print("joint certificate skipped ('joint' is not in smoothings)")

# %% [markdown]
# ```{glue:figure} ch12_joint_fig
# :name: fig-ch12-joint
#
# Joint certificate: share of all nodes certified when up to the given numbers of edges
# (rows) and attribute ones (columns) are deleted at the same time.
# ```

# %%
if joint_ratio is not None:
    print(f"joint smoothing ({dense_name.upper()}): clean acc "
          f"{runs['joint', dense_name][0]:.2f}, "
          f"smoothed acc {joint_result.accuracy(graph.labels, idx_test):.2f}")
    print("certified ratio, edge deletions (rows) x attribute deletions (columns):")
    display(pd.DataFrame(joint_ratio).rename_axis(index="edge rd", columns="attr rd")
            .style.format(precision=2))

# %% [markdown]
# ## What CI checks on every machine
#
# Training a GNN in float32 takes different kernel paths on different CPUs and thread counts,
# so the accuracies and average radii above move by about a hundredth from machine to machine
# (the measured spread is on the {doc}`benchmarks page <90_benchmarks>`). CI therefore checks
# the data and split exactly, the statements that follow from the certificate alone exactly
# (with $n =$ {glue:text}`ch12_n` samples the non-sparse noise certifies at most
# {glue:text}`ch12_dense_best_rd` deletions even where every vote agrees), and the
# chapter's findings about the trained models as claims with their thresholds stated:

# %% tags=["nbval-check-output"]
key = KeyResults("12_smoothing_node_classification")
key.exact(f"{dataset}: nodes, edges, attribute ones, classes",
          [n_nodes, graph.adj.nnz // 2, graph.attr.nnz, n_classes])
key.exact("split: train, validation, test nodes", [idx_train.size, idx_val.size, idx_test.size])
key.exact(f"non-sparse noise: largest rd certifiable with n = {n} (all votes agree)",
          dense_best_rd)
for (kind, name), row in summary.iterrows():
    for column in ("smoothed acc", "avg max rd", "avg max ra", "abstain"):
        key.measured(f"{kind} {name}: {column}", row[column])
floor = {"attributes": 0.7, "structure": 0.6}
for kind in noises:
    rows_kind = summary.loc[kind]
    key.claim(f"{kind} noise: every model's smoothed accuracy is at least {floor[kind]}",
              (rows_kind["smoothed acc"] >= floor[kind]).all())
    key.claim(f"{kind} noise: every model certifies more deletions than additions on average",
              (rows_kind["avg max rd"] > rows_kind["avg max ra"]).all())
if {"sparse", "non-sparse"} <= set(comparison):
    key.claim(f"{dense_name.upper()}: sparse noise certifies a larger average max rd than "
              f"non-sparse noise", comparison["sparse"].mean() > comparison["non-sparse"].mean())
    key.claim("projected to n = 100000, sparse noise still certifies the larger average max rd",
              projected["sparse"].mean() > projected["non-sparse"].mean())
if joint_ratio is not None:
    key.claim("joint certificate: the certified ratio never grows with more deletions",
              (np.diff(joint_ratio, axis=0) <= 0).all()
              and (np.diff(joint_ratio, axis=1) <= 0).all())
    key.claim("joint certificate: at least half of the nodes are certified at the clean input",
              joint_ratio[0, 0] >= 0.5)
key.exact("largest rd at n = 100000 (unanimous votes), per noise",
          cap_table["largest r_d at n = 100000"].tolist())
key.report()

# %% [markdown]
# ## Our numbers next to the paper's

# %% tags=["hide-input"]
from myst_nb import glue

averages = {label: float(radii.mean()) for label, radii in comparison.items()}
record_names = {"sparse": "sparse", "non-sparse": "dense"}  # comparison label -> record name
for label, short in record_names.items():
    if label in averages:  # every smoothing runs by default (a sweep may skip some)
        glue(f"ch12_{short}_rd", averages[label], display=False)
        glue(f"ch12_{short}_rd_proj", float(projected[label].mean()), display=False)
why = (f"our n = {n} vs the paper's 100000 caps p_A; few epochs "
       f"(see Scale below)")
save_record({"model": dense_name,
             **{f"{short}_avg_max_rd": averages[label]
                for label, short in record_names.items() if label in averages},
             "smoothed_acc": {f"{k} {m}": float(v) for (k, m), v
                              in summary["smoothed acc"].items()},
             "avg_max_rd": {f"{k} {m}": float(v) for (k, m), v
                            in summary["avg max rd"].items()},
             "avg_max_ra": {f"{k} {m}": float(v) for (k, m), v
                            in summary["avg max ra"].items()}})
stored = stored_runs("12_smoothing_node_classification")


def at_paper_scale(show, model=None):
    """show(values) for every stored paper-scale run ('model: text'; only runs of `model`
    when given), or 'not run yet'."""
    found = []
    for run in stored:
        if model is not None and run["values"].get("model") != model:
            continue
        try:
            found.append(f"{run['values']['model'].upper()}: {show(run['values'])}")
        except KeyError:
            continue
    return "; ".join(found) if found else "not run yet (see Reproduce at paper scale)"


def this_run(label):
    """This run's average max rd for `label` with its projection, or '–' if not run."""
    if label not in averages:
        return "–"
    return f"{averages[label]:.2f} (projected: {projected[label].mean():.2f})"


def stored_by_smoothing(name):
    """{'structure GCN': value, ...}: the stored runs' `name` ("avg_max_rd", ...) merged
    (each smoothed model is in one run)."""
    merged = {}
    for run in stored:
        merged.update(run["values"].get(name, {}))
    return merged


def deletions_vs_additions():
    rd, ra = stored_by_smoothing("avg_max_rd"), stored_by_smoothing("avg_max_ra")
    if not rd:
        return "not run yet (see Reproduce at paper scale)"
    return f"rd > ra in {sum(rd[k] > ra[k] for k in rd)} of {len(rd)} smoothed models"


def models_at_paper_scale():
    rd = stored_by_smoothing("avg_max_rd")
    if not rd:
        return "not run yet (see Reproduce at paper scale)"
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(rd.items()))


comparison_table = pd.DataFrame([
    {"quantity": f"avg max certified rd, sparse ({dense_name.upper()})",
     "paper": f"{paper_avg_rd['sparse']:.2f}",
     "ours, this run": this_run("sparse"),
     "ours, paper scale": at_paper_scale(lambda v: f"{v['sparse_avg_max_rd']:.2f}",
                                         dense_name),
     "scale and why": why},
    {"quantity": f"avg max certified rd, non-sparse ({dense_name.upper()})",
     "paper": f"{paper_avg_rd['non-sparse']:.2f}",
     "ours, this run": this_run("non-sparse"),
     "ours, paper scale": at_paper_scale(lambda v: f"{v['dense_avg_max_rd']:.2f}",
                                         dense_name),
     "scale and why": why},
    {"quantity": "deletions vs additions",
     "paper": "far more robust to deletions",
     "ours, this run": "same pattern in every heatmap",
     "ours, paper scale": deletions_vs_additions(),
     "scale and why": "ordering only"},
    {"quantity": "GAT / GCN / APPNP: avg max certified rd",
     "paper": "models differ in accuracy and robustness (the paper's figure)",
     "ours, this run": "; ".join(
         f"{kind}: " + ", ".join(f"{m} {v:.2f}" for m, v in
                                 summary.loc[kind]["avg max rd"].items())
         for kind in summary.index.get_level_values(0).unique()),
     "ours, paper scale": models_at_paper_scale(),
     "scale and why": why},
])
comparison_table.style.hide(axis="index")

# %% [markdown]
# The stored paper-scale runs side by side: for each GNN and each sparse noise, the average
# max certified radius against deletions and against additions over all nodes (abstentions
# count as 0), with the
# smoothed accuracy under each model's name.

# %% tags=["hide-input"]
paper_rd, paper_ra, paper_acc = (stored_by_smoothing(name) for name in
                                 ("avg_max_rd", "avg_max_ra", "smoothed_acc"))
paper_kinds = ("structure", "attributes")
paper_models = [m.upper() for m in ("gcn", "gat", "appnp")]
fig, axes = plt.subplots(1, len(paper_kinds), figsize=(7.5, 3.4), sharey=True,
                         constrained_layout=True)
bar = 0.38
for ax, kind in zip(axes, paper_kinds):
    x = np.arange(len(paper_models))
    keys = [f"{kind} {m}" for m in paper_models]
    for shift, values, style in (
            (-bar / 2, paper_rd, dict(color="C0", label="deletions: avg max $r_d$")),
            (bar / 2, paper_ra, dict(color="C1", hatch="//", edgecolor="white",
                                     label="additions: avg max $r_a$"))):
        heights = [values.get(k, np.nan) for k in keys]
        bars = ax.bar(x + shift, heights, bar, **style)
        ax.bar_label(bars, labels=[f"{h:.2f}" if np.isfinite(h) else "" for h in heights],
                     fontsize=7, padding=2)
    ax.set_xticks(x, [f"{m}\nacc {paper_acc[k]:.2f}" if k in paper_acc else f"{m}\nnot stored"
                      for m, k in zip(paper_models, keys)])
    ax.set_xlim(-0.6, len(paper_models) - 0.4)
    ax.set_title(f"sparse {kind.removesuffix('s')} noise")
axes[0].set_ylabel("average max certified radius")
axes[0].legend(loc="upper left", fontsize=8)
if not paper_rd:
    fig.suptitle("no paper-scale run stored yet (see Reproduce at paper scale)")
glue("ch12_paper_scale_fig", fig, display=False)
plt.close(fig)
both_noises = [m for m in paper_models
               if all(f"{kind} {m}" in paper_rd for kind in paper_kinds)]
reading = [f"Deletions certify larger average radii than additions in "
           f"{sum(paper_rd[k] > paper_ra[k] for k in paper_rd)} of the {len(paper_rd)} "
           "stored runs." if paper_rd else "No paper-scale run is stored yet."]
if both_noises:
    larger = [m for m in both_noises
              if paper_rd[f"attributes {m}"] > paper_rd[f"structure {m}"]]
    reading.append(f"The sparse attribute noise certifies a larger average max rd than "
                   f"the structure noise for {len(larger)} of the {len(both_noises)} models "
                   f"stored with both ({', '.join(both_noises)}).")
glue("ch12_paper_scale_reading", Markdown(" ".join(reading)), display=False)

# %% [markdown]
# ```{glue:figure} ch12_paper_scale_fig
# :name: fig-ch12-paper-scale
#
# The paper-scale runs stored in `results/paper/12_smoothing_node_classification/`
# ($n_0 = 1000$, $n = 100000$, $\alpha = 0.01$, at most 3000 epochs with early stopping;
# one run per model and noise).
# A model marked "not stored" has no run in that setting yet.
# ```
#
# {glue:md}`ch12_paper_scale_reading`

# %% [markdown]
# The paper ran at $n_0 = 1000$, $n = 100000$, $\alpha = 0.01$ and up to 3000 epochs. This run
# certifies the sparse GCN's average max $r_d$ at
# {glue:text}`ch12_sparse_rd:.2f` (non-sparse: {glue:text}`ch12_dense_rd:.2f`); projected to
# $n = 100000$ the same vote shares give {glue:text}`ch12_sparse_rd_proj:.2f` and
# {glue:text}`ch12_dense_rd_proj:.2f` (a projection, not a certificate).
#
# **Scale.** This run gives every node only $n =$ {glue:text}`ch12_n` estimation samples.
# With Bonferroni over {glue:text}`ch12_n_classes` classes, even a node whose every vote
# agrees gets $\underline{p_A} =$ {glue:text}`ch12_p_cap:.4f`, whereas the paper's
# $n = 100000$ allows
# $\underline{p_A} \approx 0.99993$. Large radii need $\underline{p_A}$ close to one, so our
# radii, and in particular the sparse average max $r_d$, are much smaller than the paper's;
# the *ordering* (sparse $\gg$ non-sparse, deletions $\gg$ additions) is what this run can
# show. The models are also trained for only a few epochs with a larger learning rate. The
# paper's exact non-sparse flip probability is not stated in our source; `dense_p` sets it.
#
# ## Reproduce at paper scale
#
# The column "ours, paper scale" shows the runs stored under
# `results/paper/12_smoothing_node_classification/`. `sweeps/12_paper_scale_cpu.yaml` is the
# GCN alone with the sparse structure noise, and the sparse and non-sparse attribute noises of
# the fidelity question (`smoothings` chooses which smoothed models a run trains), about two
# hours of one core;
# `sweeps/12_paper_scale_appnp_cpu.yaml` and `sweeps/12_paper_scale_gat_cpu.yaml` are APPNP
# and the GAT with each sparse noise (under an hour of one core per noise);
# `sweeps/12_paper_scale.yaml` runs all three GNNs with all four smoothings (4-5 CPU-hours
# per GNN: a GPU or a cluster), each with
# `python -m certlab.sweep SPEC --out results/paper/12_smoothing_node_classification`. A
# single run by hand (a GPU is recommended; the CPU run takes hours):
#
# ```bash
# python -m certlab.run notebooks/12_smoothing_node_classification.py \
#     -p n0 1000 -p n 100000 -p alpha 0.01 -p max_epochs 3000 -p patience 50 -p lr 0.001 \
#     -p max_ra 6 -p max_rd 20
# ```
