# certlab: two commands a user needs.
#   make book   set up .venv, execute every chapter at its default (CPU-scale) parameters,
#               build the HTML book into _build/html
#   make test   set up .venv, run pytest and, beside it, nbval on every notebook (twice: as set
#               up here, then with other CPU kernels and one thread), then the strict book
#               build and the browser test of every page
# Helpers: make setup | notebooks | notebook NB=notebooks/x.py | html | benchmarks | clean
#          | browser-test | chromium

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.certlab-installed
export CERTLAB_DATA ?= $(HOME)/.cache/certlab
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.py))

.PHONY: book test setup notebooks notebook html pytest nbval nbval-portable nbval-both benchmarks clean

book: setup notebooks html

# pytest (one process) runs beside the two nbval runs (two notebooks at a time), so that
# both cores stay busy; each target's output is printed in one piece when it ends.
test: setup
	$(MAKE) --no-print-directory --output-sync=target -j2 pytest nbval-both
	$(VENV)/bin/jupyter-book build -W -n --keep-going .
	$(MAKE) --no-print-directory browser-test

nbval-both: setup
	$(MAKE) --no-print-directory nbval
	$(MAKE) --no-print-directory nbval-portable

setup: $(STAMP) chromium

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps auto-lirpa==0.3
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

notebooks: setup
	$(PY) -m certlab.run --inplace $(NOTEBOOKS)

notebook: setup
	@test -n "$(NB)" || { echo "usage: make notebook NB=notebooks/<chapter>.py"; exit 2; }
	$(PY) -m certlab.run --inplace $(NB)

html: setup
	$(VENV)/bin/jupyter-book build .

pytest: setup
	$(PY) -m pytest tests -q -p no:cacheprovider || { rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; else exit $$rc; fi; }

# nbval checks only the cells tagged nbval-check-output (certlab.checks.KeyResults): exact
# results and the chapters' claims, which must print the same on every x86-64 machine.
# tests/nbval_parallel.py checks NBVAL_JOBS notebooks at a time (cores split between them),
# the slowest chapters first.
NBVAL_JOBS ?= 2
NBVAL_ARGS := -q -p no:cacheprovider --nbval-lax --nbval-sanitize-with nbval_sanitize.cfg --nbval-cell-timeout 900
SLOW_FIRST := 42 12 41 22 13 31
ordered = $(foreach n,$(SLOW_FIRST),$(filter notebooks/$(n)_%,$(1))) \
          $(filter-out $(foreach n,$(SLOW_FIRST),notebooks/$(n)_%),$(1))
NBVAL = $(PY) tests/nbval_parallel.py --jobs $(NBVAL_JOBS) --pytest-args "$(NBVAL_ARGS)"
# A configuration unlike the one the notebooks are executed with: PyTorch's scalar kernels,
# MKL without AVX, one thread per job (issue: portable nbval checks). It re-checks the chapters
# whose checked results depend on float training (PyTorch); 11, 22, 31 and 90 compute their
# checked results with exact or double-precision NumPy/SciPy code only, checked in the first run.
PORTABLE_ENV := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
ALL_EXECUTED := $(sort $(wildcard notebooks/[0-9]*.ipynb))
PORTABLE_NOTEBOOKS := $(filter-out notebooks/11_% notebooks/22_% notebooks/31_% notebooks/90_%,$(ALL_EXECUTED))

nbval: setup
	$(NBVAL) $(call ordered,$(ALL_EXECUTED))

nbval-portable: setup
	env $(PORTABLE_ENV) $(NBVAL) --threads 1 $(call ordered,$(PORTABLE_NOTEBOOKS))

benchmarks: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf _build

# Every page of the built book in headless Chromium (tests/test_book_browser.py); Debian's
# chromium package is installed by the set-up when missing (root and apt-get needed).
.PHONY: browser-test chromium
browser-test: setup
	CERTLAB_REQUIRE_BROWSER=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_book_browser.py

chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	{ if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: no chromium; browser-test needs it: apt-get install -y chromium"; fi; }
