# Entry points (see README): `make book`, `make test`, `make notebooks`.
# Each creates the virtual environment it needs in .venv from the pinned files.
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Notebook kernels (nbval, the book build, `make notebooks`) run from the venv, on the CPU, so
# jax prints nothing to stderr. MPLBACKEND is deliberately NOT set: it would drop the figures.
export PATH := $(abspath $(BIN)):$(PATH)
export JAX_PLATFORMS := cpu
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# Chapters are the MyST Markdown notebooks in book/ (they have a `kernelspec:` front matter).
CHAPTERS  = $(patsubst book/%.md,%,$(shell grep -l '^kernelspec:' book/*.md 2>/dev/null))
NOTEBOOKS = $(wildcard notebooks/*.ipynb)

# Seconds per cell for nbval and `make notebooks` (the book build's is in _config.yml).
CELL_TIMEOUT := 120
PYTEST       := $(BIN)/python -m pytest
NBVAL_OPTS   := --nbval --nbval-current-env --nbval-sanitize-with nbval-sanitize.cfg --nbval-cell-timeout=$(CELL_TIMEOUT)
BOOK_BUILD   := $(BIN)/jupyter-book build . --all -W -n --keep-going
TIMES        := _build/stage-times.txt

# $(call timed,NAME,COMMAND): run COMMAND, print and record its wall time (no commas in COMMAND).
define timed
	@mkdir -p _build; echo "==> $(1)"; s=$$(date +%s); $(2); rc=$$?; \
	  printf '%-34s %4d s%s\n' "$(1)" $$(( $$(date +%s) - s )) "$$( [ $$rc = 0 ] || echo '  FAILED' )" | tee -a $(TIMES); \
	  exit $$rc
endef

.PHONY: venv warm book test unit nbval browser notebooks notebook bench clean

$(STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt -e .
	touch $(STAMP)

venv: $(STAMP)

# matplotlib writes "building the font cache" to stderr once per machine; do it here, not in a
# notebook, where stderr fails the build.
warm: $(STAMP)
	@$(BIN)/python -c "import matplotlib.font_manager"

# The strict build: warnings (-W), broken references (-n), cell errors and any stderr fail it.
book: $(STAMP) warm
	$(BOOK_BUILD)

# Unit tests of cnnref and the equation-ledger checks.
unit: $(STAMP)
	$(PYTEST) -n 2 -m "not browser" --ignore=tests/test_notebooks.py tests

# The pairing/outputs checks of book/X.md <-> notebooks/X.ipynb and strict nbval on every
# notebook, in one run (so zero notebooks is not "no tests collected"); a notebook's cells stay on
# one worker (--dist loadscope).
nbval: $(STAMP) warm
	$(PYTEST) -n 2 --dist loadscope $(NBVAL_OPTS) tests/test_notebooks.py $(NOTEBOOKS)

# Opens every page of _build/html in headless chromium (run `make book` first).
browser: $(STAMP)
	$(PYTEST) -m browser tests/test_browser.py

test: $(STAMP) warm
	@rm -f $(TIMES)
	$(call timed,unit tests + ledger checks,$(MAKE) --no-print-directory unit)
	$(call timed,notebook pairs + strict nbval,$(MAKE) --no-print-directory nbval)
	$(call timed,strict book build,$(MAKE) --no-print-directory book)
	$(call timed,browser check,$(MAKE) --no-print-directory browser)
	@echo "==> stage wall times"; cat $(TIMES)

# Re-pair every chapter book/X.md -> notebooks/X.ipynb and execute it in place, with outputs.
notebooks: $(STAMP) warm
	@for nb in $(CHAPTERS); do $(MAKE) --no-print-directory notebook NB=$$nb || exit 1; done

notebook: $(STAMP)
	@test -n "$(NB)" -a -f "book/$(NB).md" || { echo "usage: make notebook NB=<name> (for book/<name>.md)"; exit 2; }
	@mkdir -p notebooks
	$(BIN)/jupytext --update --to ipynb --output notebooks/$(NB).ipynb book/$(NB).md
	$(BIN)/python -c "$$EXECUTE_NOTEBOOK" notebooks/$(NB).ipynb

# Execute a notebook in place with nbclient (cwd: its folder, as under nbval), without timing metadata.
define EXECUTE_NOTEBOOK
import sys, nbformat, nbclient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
nbclient.NotebookClient(nb, timeout=$(CELL_TIMEOUT), record_timing=False,
                        resources={"metadata": {"path": "notebooks"}}).execute()
nbformat.write(nb, path)
print(f"executed {path}")
endef
export EXECUTE_NOTEBOOK

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(BIN)/python benchmarks/bench_conv.py

clean:
	rm -rf _build
