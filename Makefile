# Entry points (see README): `make book`, `make test`, `make notebooks`.
# Each creates the virtual environment it needs in .venv from the pinned files.
SHELL  := /bin/bash
PYTHON ?= python3
# The oldest Python the lock (constraints.txt) is made for; also pyproject.toml's requires-python.
PYTHON_MIN := 3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The packages of the standalone-notebook check, downloaded once (like the venv), used offline.
WHEELHOUSE := $(VENV)/wheelhouse
UV_VERSION := 0.13.9

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

.PHONY: venv warm book test unit nbval standalone browser notebooks notebook assignments grade format lab bench lock clean distclean

$(STAMP): requirements.txt requirements-runtime.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < tuple(map(int, "$(PYTHON_MIN)".split("."))))' 2>/dev/null || { \
	  v=$$($(PYTHON) -c 'import platform; print("Python", platform.python_version())' 2>/dev/null); \
	  echo "This project needs Python $(PYTHON_MIN) or newer; PYTHON=$(PYTHON) is $${v:-not a Python interpreter}."; \
	  echo "Choose another interpreter, e.g. make PYTHON=python3.12 $(MAKECMDGOALS)"; exit 1; }
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

# Unit tests of cnnref and the equation-ledger checks. The checks that read the five source
# documents run only where CNNBOOK_SOURCES names their folder (.ci/run sets it).
unit: $(STAMP)
	$(PYTEST) -n 2 -m "not browser and not standalone and not assignments" --ignore=tests/test_notebooks.py tests

# The pairing/outputs checks of book/X.md <-> notebooks/X.ipynb and strict nbval on every
# notebook, in one run (so zero notebooks is not "no tests collected"); a notebook's cells stay on
# one worker (--dist loadscope).
nbval: $(STAMP) warm
	$(PYTEST) -n 2 --dist loadscope $(NBVAL_OPTS) tests/test_notebooks.py $(NOTEBOOKS)

# Every notebook alone in an empty folder, in a fresh venv with only binder/requirements.txt, a
# kernel and the cnnref wheel (installed by a chapter's own Colab cell): tests/test_standalone.py.
$(WHEELHOUSE)/.complete: binder/requirements.txt requirements-runtime.txt constraints.txt | $(STAMP)
	$(BIN)/python -m pip download --quiet --dest $(WHEELHOUSE) -r binder/requirements.txt ipykernel -c constraints.txt
	touch $@

standalone: $(STAMP) $(WHEELHOUSE)/.complete
	CNNBOOK_WHEELHOUSE=$(abspath $(WHEELHOUSE)) $(PYTEST) -n 2 -m standalone tests/test_standalone.py

# Opens every page of _build/html in headless chromium (run `make book` first).
browser: $(STAMP)
	$(PYTEST) -m browser tests/test_browser.py

test: $(STAMP) warm
	@rm -f $(TIMES)
	$(call timed,unit tests + ledger checks,$(MAKE) --no-print-directory unit)
	$(call timed,notebook pairs + strict nbval,$(MAKE) --no-print-directory nbval)
	$(call timed,notebooks alone in a fresh env,$(MAKE) --no-print-directory standalone)
	$(call timed,assignments graded,$(MAKE) --no-print-directory grade)
	$(call timed,strict book build,$(MAKE) --no-print-directory book)
	$(call timed,browser check,$(MAKE) --no-print-directory browser)
	@echo "==> stage wall times"; cat $(TIMES)

# Re-pair every chapter book/X.md -> notebooks/X.ipynb and execute it in place, with outputs.
notebooks: $(STAMP) warm
	@for nb in $(CHAPTERS); do $(MAKE) --no-print-directory notebook NB=$$nb || exit 1; done

# Learner notebooks from every chapter that has solution cells (docs/assignments.md): solutions
# replaced by stubs, exercise solutions removed, outputs cleared. Written to _build/assignments/
# and copied to assignments/, which is committed: Colab and Binder open it from the repository
# and the book links it. Grade them with `python -m cnnref.grade _build/assignments`.
assignments: $(STAMP)
	$(BIN)/python book/_ext/make_assignments.py --out _build/assignments
	rm -rf assignments && mkdir assignments && cp _build/assignments/*.ipynb assignments/

# The assignments graded: every stub fails every graded check, the solutions put back pass them
# all, every planted mistake (tests/assignment_plants.py) fails exactly the checks meant for it.
grade: $(STAMP) warm
	$(PYTEST) -n 2 -m assignments tests/test_assignment_chapters.py

# The chapters' code cells through ruff format (88 columns); tests/test_chapter_format.py checks them.
format: $(STAMP)
	$(BIN)/python book/_ext/format_cells.py

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

# JupyterLab on the notebooks, from the project's environment (installed on first use).
lab: $(STAMP) warm
	$(BIN)/python -m pip install --quiet -r requirements-lab.txt -c constraints.txt
	$(BIN)/jupyter lab notebooks

# PyTorch's CPU-only build (requirements-bench.txt); the tests that check cnnref against PyTorch
# itself (conv layer, max-pool tie rule, SGD momentum convention: they skip wherever torch is not
# installed, so this is where they run); then the side-by-side benchmark.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(PYTEST) -q -rs -k torch tests/test_conv.py tests/test_pooling.py tests/test_optim.py
	$(BIN)/python benchmarks/bench_conv.py

# Re-lock constraints.txt from the top-level requirements, for every Python >= PYTHON_MIN.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile --universal --python-version $(PYTHON_MIN) --custom-compile-command "make lock" \
	  requirements.txt requirements-lab.txt -o constraints.txt

clean:
	rm -rf _build

# Start over: also remove the virtual environment (the next make recreates it).
distclean: clean
	rm -rf $(VENV) .pytest_cache .hypothesis .jupyter_cache
