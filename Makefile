# bioclip-edge: every target sets up what it needs (a .venv in the checkout).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
OUT    ?= demo-out

.PHONY: setup demo test test-slow bench docs lock lock-check typecheck clean help

help:
	@echo "make demo       set up, export BioCLIP and the small trained test model to bundles, verify, classify photos"
	@echo "make test       set up and run the test suite (slow tests skipped)"
	@echo "make test-slow  also run the slow and export-marked tests (real-size ViT-B/16, ViT-L/14, ViT-H/14; every export option)"
	@echo "make bench      set up and run the benchmarks; results in bench-out/"
	@echo "make docs       set up and build the documentation site into site/ (mkdocs build --strict; offline)"
	@echo "make lock       re-resolve pyproject.toml's ranges for every locked Python and rewrite $(LOCK)"
	@echo "                (keeps the locked versions that still fit; UPGRADE=1 takes the newest)"
	@echo "make lock-check show that $(LOCK) resolves from wheels on every Python it lists (needs PyPI)"
	@echo "make typecheck  mypy resolves every import of the package (other type errors: $(BIN)/mypy)"

# Installs exactly the versions in requirements/lock.txt (what CI tested), with whatever python3 the
# machine has: the lock is universal, one version of each package for every Python its header lists
# (`# pythons:`), with markers where a package is needed on some platforms only. On a Python it does
# not list, `make setup UNLOCKED=1` installs from pyproject.toml's ranges instead, and the lock test
# is skipped (BIOCLIP_EDGE_UNLOCKED=1).
LOCK   := requirements/lock.txt
LOCK_PYS = $(shell sed -n 's/^\# pythons: //p' $(LOCK))
ifeq ($(UNLOCKED),1)
CONSTRAIN :=
else
CONSTRAIN := -c $(LOCK)
endif

$(STAMP): pyproject.toml $(LOCK)
	@if [ "$(UNLOCKED)" != 1 ] && ! $(PYTHON) -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] not in "$(LOCK_PYS)".split())'; then \
		echo "$(LOCK) is for Python $(LOCK_PYS), but $(PYTHON) is $$($(PYTHON) -V 2>&1)."; \
		echo "Use PYTHON=python3.X with one of those, or 'make $(MAKECMDGOALS) UNLOCKED=1' to install from pyproject.toml's ranges."; exit 2; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(CONSTRAIN) --upgrade pip
	$(BIN)/python -m pip install -q $(CONSTRAIN) -e ".[dev]"
	$(BIN)/python -m pip install -q $(CONSTRAIN) --no-deps megadetector
	@if [ "$(UNLOCKED)" = 1 ]; then echo "BIOCLIP_EDGE_UNLOCKED=1" > $(VENV)/.unlocked; else rm -f $(VENV)/.unlocked; fi
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python -m bioclip_edge.demo --out $(OUT) $(ARGS)

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-slow: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider --run-slow --run-export --run-typecheck

bench: setup
	$(BIN)/python benchmarks/run_all.py --out bench-out

# The site: docs/ + mkdocs.yml; the CLI reference and results pages are generated at build time
# (docs/gen/hooks.py). --strict fails on a broken link or anchor, or a page missing from the nav.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# Both run requirements/lock.py with uv (requirements/tools.txt), set up in requirements/.tools.
lock:
	PYTHON=$(PYTHON) bash requirements/make_lock.sh $(if $(filter 1,$(UPGRADE)),--upgrade)

lock-check:
	PYTHON=$(PYTHON) bash requirements/make_lock.sh --check

clean:
	rm -rf $(OUT) bench-out .pytest_cache site

# pyproject.toml's [tool.mypy]; tests/test_typecheck.py fails on an import mypy cannot resolve.
typecheck: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider --run-typecheck tests/test_typecheck.py
