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
# This page shows those records as they are stored: rerun a script to refresh its record,
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

# %%
from certlab.parameters import validate_chapter_parameters

validate_chapter_parameters("90_benchmarks", globals())

# %%
from certlab.benchmarking import load_records, records_table

records = load_records(results_dir)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(records)} benchmark records")
for record in records:
    verdict = {True: "met", False: "NOT met", None: "no target"}[record.target_met]
    print(f"- {record.name}: target {verdict}")

# %% [markdown]
# Each record in detail: the target, whether it was met, the measured numbers, and where and
# when they were measured.

# %%
from IPython.display import Markdown, display

for record in records:
    display(Markdown(record.to_markdown()))

# %% [markdown]
# Overview of where the records were measured:

# %%
records_table(records)
