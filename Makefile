# bioclip-edge: every target sets up what it needs (a .venv in the checkout).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
OUT    ?= demo-out

.PHONY: setup setup-runtime demo test test-slow bench clean help

help:
	@echo "make demo       set up, export BioCLIP to a bundle, verify it, classify sample photos"
	@echo "make test       set up and run the test suite (slow tests skipped)"
	@echo "make test-slow  also run the slow tests (real-size ViT-L/14 and ViT-H/14 exports)"
	@echo "make bench      set up and run the benchmarks; results in bench-out/"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
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

clean:
	rm -rf $(OUT) bench-out .pytest_cache
