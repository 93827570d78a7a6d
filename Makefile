# Set-up and entry points named in the README. Every target installs what it needs first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel of torch, pinned and installed first so pip never pulls a multi-GB CUDA build.
# GPU machines: install the CUDA build of torch that matches your driver into $(VENV) first,
# then run `make ... TORCH=` to keep it.
TORCH ?= torch==2.13.0
EXTRAS ?= test

.PHONY: setup pretrain test test-fast lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install -q "$(TORCH)")
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

# The main job: pretrain the tiny GPT-2 on the built-in corpus (6 min 43 s measured on 2 CPU cores: benchmarks/RESULTS.md).
# -q: a refused flag shows llmkit's one-line error, without accelerate's traceback of the failed process after it.
pretrain: setup
	$(BIN)/accelerate launch -q recipes/pretrain_gpt2.py $(ARGS)

# The whole test suite (slow, multi-process and browser tests included) plus the linter.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Skip the tests marked slow/multiproc/browser while iterating.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not multiproc and not browser" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/bench_pretrain.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
