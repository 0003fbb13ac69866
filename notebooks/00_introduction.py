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
# # What a robustness certificate is
#
# A classifier $g$ is *certifiably robust* at an input $x$ against a threat model
# $\mathcal{B}(x)$ if we can **prove** that
#
# $$
# g(\tilde x) = g(x) \qquad \text{for every } \tilde x \in \mathcal{B}(x).
# $$
#
# An attack can only ever show that a prediction is *not* robust (by finding one
# $\tilde x$ that changes it). A certificate is the opposite claim: no attack inside
# $\mathcal{B}(x)$ can succeed, however clever. That makes a wrong "certified" the worst bug a
# certification method can have, and it shapes how this book and its library are built:
#
# * every certificate in `certlab` is checked, on small cases, against an independent exact
#   method (brute-force enumeration, an exact MILP, or high-precision arithmetic);
# * a method that runs out of time, or whose numerics are in doubt, answers **unknown**,
#   never "certified";
# * certificates come in two flavours: *sound* (a "certified" is always true, but some robust
#   inputs are missed) and *exact* or *complete* (the answer is the true worst case). The four
#   papers reproduced here move along this line.
#
# This chapter introduces the three threat models of the book, computes a first certificate
# ingredient with the library, maps the book and explains how to rerun every chapter.

# %% tags=["parameters"]
# Parameters (papermill): CPU-scale defaults.
n_samples = 1000  # Monte-Carlo samples per estimate
n_repeats = 400  # repeated experiments for the coverage check
true_p = 0.8  # probability that the base classifier returns the top class under noise
alpha = 0.01  # the certificate may be wrong with probability at most alpha
device = "auto"  # "auto" picks CUDA when present
seed = 0

# %% tags=["remove-cell"]
from certlab.parameters import validate_chapter_parameters

validate_chapter_parameters("00_introduction", globals())

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from certlab.checks import KeyResults
from certlab.stats import clopper_pearson_lower, lower_bound_coverage
from certlab.plotting import use_book_style
from certlab.utils import seed_everything

use_book_style()
rng = seed_everything(seed)
print(f"running on {device}")

# %% [markdown]
# ## Three threat models
#
# | part | threat model | what the attacker controls | certificate |
# |---|---|---|---|
# | I | discrete $\ell_0$ evasion | adds up to $r_a$ and deletes up to $r_d$ ones of a binary input (edges, bag-of-words attributes, pixels) at test time | randomized smoothing with sparse noise {cite}`bojchevski2020` |
# | II, III | label poisoning | flips up to $k$ labels of the training set, then the model is retrained | exact MILP {cite}`sabanayagam2025` and closed forms with ensembles {cite}`mohgaonkar2026` for wide networks via the NTK {cite}`jacot2018ntk` |
# | IV | $\ell_\infty$ evasion | moves every pixel by at most $\epsilon$ at test time | bound propagation and branch and bound {cite}`zhang2018crown,xu2021alphacrown,wang2021betacrown` made tractable by linearity grafting {cite}`chen2022grafting` |
#
# The first threat model needs a statistical ingredient that we can already compute with the
# library: a confidence bound on a probability estimated by Monte Carlo.
#
# ## A first ingredient: the Clopper-Pearson bound
#
# Randomized smoothing {cite}`cohen2019,lee2019` replaces a classifier $f$ by the *smoothed*
# classifier $g(x) = \arg\max_y P(f(\phi(x)) = y)$, where $\phi$ is random noise. The
# probability $p_A = P(f(\phi(x)) = y_A)$ of the top class cannot be computed exactly for a
# neural network; it is estimated from $n$ noisy samples. If $k$ of them return $y_A$, the
# one-sided Clopper-Pearson bound
#
# $$
# \underline{p_A} = \mathrm{Beta}^{-1}(\alpha;\; k,\; n - k + 1)
# $$
#
# satisfies $P(p_A \ge \underline{p_A}) \ge 1 - \alpha$ for every true $p_A$: it is exact, not
# asymptotic. The certificate is then computed for the worst case consistent with
# $\underline{p_A}$, so it holds with probability at least $1 - \alpha$.
#
# Below, a stand-in for $f(\phi(x))$ returns the top class with probability `true_p`; we draw
# `n_samples` votes `n_repeats` times. The probability that the bound holds can also be
# computed exactly, by summing the binomial distribution over the vote counts whose bound stays
# below `true_p`; the share of our repeats estimates the same probability, with sampling error.

# %%
votes = rng.binomial(n_samples, true_p, size=n_repeats)
lower = clopper_pearson_lower(votes, n_samples, alpha)
empirical_coverage = float(np.mean(lower <= true_p))
exact_coverage = lower_bound_coverage(n_samples, true_p, alpha)

# %%
print(f"first repeat: {votes[0]} of {n_samples} votes, estimate {votes[0] / n_samples:.3f}, "
      f"lower bound {lower[0]:.4f}")
print(f"exact probability that the bound holds: {exact_coverage:.4f} "
      f"(guaranteed >= {1 - alpha:.2f})")
print(f"share of our {n_repeats} repeats whose bound holds: {empirical_coverage:.4f} "
      f"(sampling error about {np.sqrt(exact_coverage * (1 - exact_coverage) / n_repeats):.4f})")
print(f"median gap between true p and the bound: {np.median(true_p - lower):.4f}")

# %% tags=["hide-input"]
sizes = np.unique(np.logspace(1, 5, 60).astype(int))
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.4))
for p in (0.6, 0.8, 0.95, 0.99):
    expected_votes = np.round(p * sizes).astype(int)
    axes[0].semilogx(sizes, clopper_pearson_lower(expected_votes, sizes, alpha), label=f"p = {p}")
    axes[0].axhline(p, color="0.8", lw=0.8, zorder=0)
axes[0].axvline(n_samples, color="k", ls=":", lw=1)
axes[0].set(xlabel="Monte-Carlo samples n", ylabel="Clopper-Pearson lower bound",
            title=f"More samples, tighter bounds (alpha = {alpha})")
axes[0].legend(loc="lower right")
axes[1].hist(votes / n_samples, bins=30, alpha=0.6, label="estimate k / n")
axes[1].hist(lower, bins=30, alpha=0.6, label="lower bound")
axes[1].axvline(true_p, color="k", lw=2, label="true p")
axes[1].set(xlabel="probability", ylabel="repeats",
            title=f"{n_repeats} repeats with n = {n_samples}: the bound stays below p")
axes[1].legend()
fig.tight_layout()
glue("ch00_cp_fig", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} ch00_cp_fig
# :name: fig-ch00-clopper-pearson
#
# The one-sided Clopper-Pearson lower bound at this chapter's $\alpha$. Left: the bound for the
# expected vote count $k = p n$ as the number of Monte-Carlo samples $n$ grows, for four true
# probabilities $p$ (grey lines; the dotted line marks this chapter's $n$). Right: the
# estimates $k / n$ and their lower bounds over the repeated experiments, against the true $p$.
# ```
#
# The left panel of {numref}`fig-ch00-clopper-pearson` is why smoothing papers use $n = 10^5$ samples: the bound approaches $p$
# only slowly, and for $p$ close to one (where large radii live) the gap matters most. The
# right panel is the guarantee at work: the estimate scatters around $p$ and the bound sits
# below it, except in rare repeats whose probability is at most $\alpha$ (the exact value is
# printed above; a finite number of repeats can show a few more or fewer failures).
#
# ### Worked example 1: discrete $\ell_0$ evasion
#
# Part I turns such a bound into a certificate. Suppose the noise flips each $0$ of a binary
# input to $1$ with probability $p_+ = 0.01$ and each $1$ to $0$ with probability $p_- = 0.6$
# (sparse noise, as for bag-of-words attributes), and the bound from the first repeat above
# holds. The library computes, for every budget of $r_a$ additions and $r_d$ deletions,
# whether the smoothed prediction provably survives (the worst-case probability $\rho$ of the
# top class stays above $1/2$):

# %%
from certlab.smoothing.certificate import certify_grid, max_certified_radius

grid = certify_grid(lower[0], 0.01, 0.6, max_ra=3, max_rd=8)

# %%
print("largest certified deletion radius:", max_certified_radius(lower[0], 0.01, 0.6, kind="rd"))
print("largest certified addition radius:", max_certified_radius(lower[0], 0.01, 0.6, kind="ra"))
pd.DataFrame(np.where(grid, "yes", "no"),
             index=pd.Index(range(grid.shape[0]), name="additions r_a"),
             columns=pd.Index(range(grid.shape[1]), name="deletions r_d"))

# %% [markdown]
# Deletions are much cheaper to certify than additions: with sparse noise, a deleted one looks
# like the noise's own work, while an added one is a rare event under $\phi(x)$.
#
# ### Worked example 2: label poisoning
#
# Parts II and III certify against an attacker who flips training labels before the model is
# trained. On a small contextual stochastic block model (two classes, Gaussian features), we
# train the kernel SVM of a wide simplified GCN (its neural tangent kernel,
# {cite:alp}`jacot2018ntk`) on 10 labeled nodes and ask, for each test node, for the fewest
# label flips that change its prediction, twice: by enumerating every flip set and by the exact
# MILP of {cite:t}`sabanayagam2025`. The two independent exact methods must agree.

# %%
from certlab.graphs.csbm import csbm_split, sample_csbm
from certlab.ntk import gnn_ntk
from certlab.poisoning.certificates import min_label_flips

csbm = sample_csbm(n=60, seed=seed)
split = csbm_split(csbm, n_train=10, n_val=0, seed=seed)
kernel = gnn_ntk(csbm.adj, csbm.features, "sgc")
train, test = split.train, split.test[:12]
flips = {method: min_label_flips(kernel[np.ix_(train, train)], kernel[np.ix_(test, train)],
                                 csbm.labels[train], model="svm", C=0.05, max_flips=4,
                                 method=method)
         for method in ("enumerate", "milp")}

# %%
print("fewest flips per test node (5 = more than 4):", flips["enumerate"].tolist())
print("enumeration and MILP agree on every node:",
      bool(np.array_equal(flips["enumerate"], flips["milp"])))
print("certified against 1 / 2 flips:", [int((flips["milp"] > k).sum()) for k in (1, 2)],
      f"of {len(test)} test nodes")

# %% [markdown]
# ### Worked example 3: $\ell_\infty$ evasion
#
# Part IV verifies neural networks against every perturbation of at most $\epsilon$ per pixel.
# We train a tiny ReLU network on MNIST for a few seconds and verify a few test images at
# $\epsilon = 0.05$ with our branch and bound (bound propagation through auto_LiRPA,
# {cite:alp}`xu2020autolirpa`, with beta-CROWN splits, {cite:alp}`wang2021betacrown`), checked
# against an exact MILP. Statuses are *verified* (no perturbation changes the prediction),
# *falsified* (a counterexample was found and checked) or *timeout* (never counted as
# verified).

# %% tags=["hide-input"]
import torch

from certlab.data import load_mnist
from certlab.verification import mlp, verify

# a tiny ReLU network, trained for a few seconds
images, labels = load_mnist("train")
x_train = torch.tensor(images[:3000].reshape(-1, 784) / 255.0, dtype=torch.float32)
y_train = torch.tensor(labels[:3000])
net = mlp(784, hidden=(16,), num_classes=10)
optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
for epoch in range(8):
    for start in range(0, len(x_train), 100):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x_train[start:start + 100]),
                                                 y_train[start:start + 100])
        loss.backward()
        optimizer.step()
net.eval()
test_images, test_labels = load_mnist("test")
x_test = torch.tensor(test_images[:8].reshape(-1, 784) / 255.0, dtype=torch.float32)

# %%
results = {method: [verify(net, x_test[i], int(test_labels[i]), 0.05, timeout=20.0,
                           method=method).status for i in range(len(x_test))]
           for method in ("bab", "milp")}

# %%
pd.DataFrame(results, index=pd.Index(range(len(x_test)), name="test image")).T

# %% [markdown]
# ### What CI checks
#
# Every chapter ends with a list like the one below: the results that `make test` compares
# on every machine. Exact results (votes drawn from a seeded generator, certified radii, flip
# counts) are printed in full; results of float training, such as the tiny network's
# verdicts, are checked as claims that must hold on any machine, because float32 training
# takes other kernel paths on other CPUs.

# %% tags=["nbval-check-output"]
key = KeyResults("00_introduction")
key.exact(f"first repeat: votes of {n_samples}", votes[0])
key.exact(f"repeats (of {n_repeats}) whose bound holds", int(np.sum(lower <= true_p)))
key.claim(f"the exact coverage of the bound is at least 1 - alpha = {1 - alpha:g}",
          exact_coverage >= 1 - alpha)
key.exact("largest certified deletion / addition radius of the first repeat",
          [max_certified_radius(lower[0], 0.01, 0.6, kind=kind) for kind in ("rd", "ra")])
key.exact("certified (ra, rd) cells of the first repeat, per ra", grid.sum(axis=1))
key.exact("fewest flips per test node (5 = more than 4)", flips["enumerate"])
key.claim("enumeration and MILP agree on every test node",
          np.array_equal(flips["enumerate"], flips["milp"]))
key.claim("no image is verified by one method and falsified by the other",
          not any({"verified", "falsified"} <= set(pair)
                  for pair in zip(results["bab"], results["milp"])))
key.report()

# %% [markdown]
# ## Map of the book
#
# * **Part I: sparsity-aware randomized smoothing** {cite}`bojchevski2020`. A model-agnostic
#   certificate for discrete data: the adversary adds up to $r_a$ and deletes up to $r_d$
#   ones. The worst case is a Neyman-Pearson problem over $r_a + r_d + 1$ likelihood-ratio
#   regions; we compute it exactly and check it against enumeration.
# * **Part II: exact label-flipping certificates for GNNs** {cite}`sabanayagam2025`. The
#   neural tangent kernel turns a wide GNN trained with hinge loss into a kernel SVM; the
#   poisoning problem becomes a mixed-integer linear program whose optimum is the exact worst
#   case.
# * **Part III: ScaLabelCert and EnsembleCert** {cite}`mohgaonkar2026`. For models that are
#   linear in the labels the exact certificate is a sort; partition ensembles
#   {cite}`levine2021dpa,wang2022fa` aggregate white-box per-partition certificates.
# * **Part IV: linearity grafting** {cite}`chen2022grafting`. Replacing unstable,
#   insignificant ReLUs by learnable linear functions makes complete verification by bound
#   propagation and branch and bound tractable.
#
# The chapters of each part are listed in the table of contents; the
# {doc}`../book/reproduction_status` page says what has been reproduced
# at which scale.
#
# ## How to rerun a chapter
#
# Every chapter is a [jupytext](https://jupytext.readthedocs.io) py:percent file
# `notebooks/<chapter>.py` (the file to edit), paired with the executed notebook that this
# book renders. Its first code cell, tagged `parameters`, holds CPU-scale defaults that run in
# a minute or two on a laptop. Papermill overrides them:
#
# ```bash
# python -m certlab.run notebooks/00_introduction.py -p n_samples 100000 -p n_repeats 2000
# ```
#
# A parameterized run writes the executed notebook and a `provenance.json` (parameters, git
# commit, hardware, wall time, date) to `results/<chapter>-<time>/`; it never overwrites the
# notebooks of the book. Unknown parameter names and values of the wrong type are errors.
# Every chapter takes `device` (`"auto"` picks a CUDA GPU when one is present; `"cpu"` or
# `"cuda"` force one) and `seed`. The tables below are read from the chapters themselves: their
# defaults, and the values that reproduce the papers' scale (where a GPU is recommended; values
# that change at paper scale are in bold). Open a chapter's table to see its parameters.

# %% tags=["remove-input"]
import re

import jupytext

from certlab.chapters import existing_chapters
from certlab.run import chapter_defaults


def parameter_comments(path):
    """``{name: comment}`` from the ``name = value  # comment`` lines of the parameters cell."""
    (cell,) = [c for c in jupytext.read(path).cells
               if "parameters" in c.get("metadata", {}).get("tags", [])]
    comments = re.findall(r"^(\w+)\s*=.*?#\s*(.+)$", cell.source, flags=re.M)
    return {name: re.sub(r"([\\`*_\[\]<>|$])", r"\\\1", text) for name, text in comments}


sections = []
for chapter in existing_chapters():
    defaults = chapter_defaults(chapter.path)
    comments = parameter_comments(chapter.path)
    comments.setdefault("seed", "seed of every random choice (data splits, noise, training)")
    changed = [name for name in defaults if name in chapter.paper_scale
               and chapter.paper_scale[name] != defaults[name]]
    lines = ["```{list-table}", ":header-rows: 1", ":widths: 22 18 22 38", "",
             "* - parameter", "  - default (CPU)", "  - paper scale", "  - meaning"]
    for name, value in defaults.items():
        paper = chapter.paper_scale.get(name, value)
        lines += [f"* - `{name}`", f"  - `{value!r}`",
                  f"  - `{paper!r}`" if paper == value else f"  - **`{paper!r}`**",
                  f"  - {comments.get(name, '')}"]
    lines.append("```")
    title = (f"{chapter.stem[:2]} {chapter.title}: {len(defaults)} parameters, "
             f"{len(changed)} changed at paper scale")
    sections.append("\n".join([f"````{{dropdown}} {title}", *lines, "````"]))
display(Markdown("\n\n".join(sections)))

# %% [markdown]
# `make book` re-executes every chapter at its defaults and builds this book; `make test` runs
# the library's tests, re-executes every notebook with nbval (comparing the key numbers
# printed in the cells tagged `nbval-check-output`), builds the book with warnings as errors
# and reads every page of it in a headless browser.
# The references cited here are collected in the {doc}`../book/bibliography`.
