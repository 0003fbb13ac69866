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
# # Benchmarks
#
# Speed and memory targets are not asserted in unit tests (timings on shared machines are
# noisy); they are measured by the scripts in `benchmarks/`, each of which times the method
# against a baseline **in the same run** and records the result with its provenance
# (command, parameters, git commit, hardware, wall time, date) in `benchmarks/results/`.
# Below, one table per benchmark: what was measured, the target, whether it was met, the
# numbers that answer the target, and when, at which commit and on which hardware they were
# measured. Every result follows in the collapsed block under the table, and the full record
# is one click away (the `.json` link). Rerun a script to refresh its record,
#
# ```bash
# .venv/bin/python benchmarks/bench_<name>.py      # or: make benchmarks
# ```
#
# and re-execute this page (`make notebook NB=notebooks/90_benchmarks.py`).

# %% tags=["parameters"]
results_dir = "../benchmarks/results"  # where the benchmark records live
device = "auto"  # unused here; every chapter takes it
seed = 0  # unused here; every chapter takes it

# %% tags=["remove-cell"]
from certlab.parameters import validate_chapter_parameters

validate_chapter_parameters("90_benchmarks", globals())

# %% tags=["remove-cell"]
import os

from IPython.display import Markdown, display

from certlab.benchmarking import load_records, records_overview

records = load_records(results_dir)  # a ValueError names results_dir if it is not a folder

# The results that answer each record's target (shell wildcards over the dotted result keys).
# A record that stores its own "headline" (save_record(..., headline=...)) overrides its entry.
HEADLINES = {
    "ensembles": ["min_speedup", "all_answers_identical", "ensemble_min_flips.worst_case_s",
                  "ensemble_min_flips.median_s_per_point", "chapter_table.wall_s"],
    "grafting": ["summary.baseline.VA_bab_%", "summary.grafting 50%.VA_bab_%",
                 "grafting50_minus_baseline_verified_images_bab",
                 "bab_median_time_ratio_grafting50_over_baseline",
                 "no_bab_milp_disagreement"],
    "poisoning_collective_curve": ["wall_time_s", "labellings_one_pass",
                                   "baseline_agrees_with_curve",
                                   "speedup_vs_per_budget_enumeration"],
    "poisoning_milp": ["all_agree_with_enumeration", "worst_median_s_per_node_m20",
                       "paper_gurobi_s_per_node_m20", "largest_m_decided"],
    "poisoning_samplewise_table": ["wall_time_s", "certificates",
                                   "baseline.milp_equals_enumeration",
                                   "baseline.speedup_vs_milp"],
    "smoothing_grid": ["speedup_vs_baseline", "identical_certified_cells",
                       "fast_grid_s.median_s", "baseline.extrapolated_all_nodes_s"],
    "smoothing_prediction": ["attributes.ratio_to_clean_forward",
                             "structure.ratio_to_clean_forward", "clean_forward_median_s"],
    "verification": ["models.*.methods.bab.verified_accuracy",
                     "models.*.methods.alpha-crown.verified_accuracy",
                     "models.*.bab_milp_disagreements"],
}

# %% tags=["nbval-check-output"]
verdicts = {True: "met", False: "NOT met", None: "no target"}
print(f"{len(records)} benchmark records")
for record in records:
    print(f"- {record.name}: target {verdicts[record.target_met]}")

# %% tags=["remove-input"]
display(Markdown("## Overview\n\n" + records_overview(records)))

# %% tags=["remove-input"]
for record in records:
    display(Markdown(record.to_markdown(headline=HEADLINES.get(record.name),
                                        link=os.path.relpath(record.source))))

# %% [markdown]
# ## What varies between machines
#
# CI checks each chapter's key results twice: as the notebooks were executed, and with
# PyTorch's scalar kernels, MKL without AVX and one thread (see the README). Exact results and
# claims must print the same in both; the values below are the ones a chapter shows but does
# not check, because float32 training takes other kernel paths on other CPUs. The
# `portability` record above holds both runs of every chapter; here is how far each measured
# value moved between them.

# %% tags=["remove-input"]
import json
from pathlib import Path

import pandas as pd

portability = Path(results_dir) / "portability.json"
if portability.is_file():
    for chapter, result in json.loads(portability.read_text())["results"].items():
        spread = pd.DataFrame(result["measured"]).T
        if spread.empty:
            continue
        spread = spread.rename(columns={"abs_diff": "difference"})
        spread.index = [name.replace("$", "") for name in spread.index]  # no raw TeX
        moved = spread[spread["difference"] > 0]
        display(Markdown(
            f"**{chapter}**: {len(spread)} measured values, {len(moved)} moved; largest "
            f"difference {result['max_abs_diff']:.3g}; exact results and claims identical: "
            f"{result['exact_identical'] and result['claims_identical']}"))
        if len(moved):
            display(moved.astype(float).round(4))
else:
    display(Markdown("No portability record yet: run `benchmarks/bench_portability.py`."))
