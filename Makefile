# bioclip-edge: every target sets up what it needs (a .venv in the checkout).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
OUT    ?= demo-out

.PHONY: setup demo test test-slow bench lock clean help

help:
	@echo "make demo       set up, export BioCLIP to a bundle, verify it, classify sample photos"
	@echo "make test       set up and run the test suite (slow tests skipped)"
	@echo "make test-slow  also run the slow tests (real-size ViT-L/14 and ViT-H/14 exports)"
	@echo "make bench      set up and run the benchmarks; results in bench-out/"
	@echo "make lock       re-resolve pyproject.toml's ranges in a fresh venv and rewrite $(LOCK)"

# Installs exactly the versions in requirements/lock.txt (what CI tested). The lock is made for one
# Python minor version (its header says which); on another, `make setup UNLOCKED=1` installs from
# pyproject.toml's ranges instead, and the lock test is skipped (BIOCLIP_EDGE_UNLOCKED=1).
LOCK   := requirements/lock.txt
LOCK_PY = $(shell sed -n 's/^\# python: //p' $(LOCK))
ifeq ($(UNLOCKED),1)
CONSTRAIN :=
else
CONSTRAIN := -c $(LOCK)
endif

$(STAMP): pyproject.toml $(LOCK)
	@if [ "$(UNLOCKED)" != 1 ] && ! $(PYTHON) -c 'import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" != "$(LOCK_PY)")'; then \
		echo "$(LOCK) is for Python $(LOCK_PY), but $(PYTHON) is $$($(PYTHON) -V 2>&1)."; \
		echo "Use PYTHON=python$(LOCK_PY), or 'make $(MAKECMDGOALS) UNLOCKED=1' to install from pyproject.toml's ranges."; exit 2; fi
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
	$(BIN)/python -m pytest -q -p no:cacheprovider --run-slow

bench: setup
	$(BIN)/python benchmarks/run_all.py --out bench-out

lock:
	PYTHON=$(PYTHON) bash requirements/make_lock.sh

clean:
	rm -rf $(OUT) bench-out .pytest_cache
