# cmet-ops — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# every store a run writes lives inside the project's working folder
WORK := $(CURDIR)/.cmet
export PREFECT_HOME := $(WORK)/prefect
export MLFLOW_TRACKING_URI ?= sqlite:///$(WORK)/mlflow/mlflow.db
export BENTOML_HOME := $(WORK)/bentoml
export DO_NOT_TRACK := 1
export BENTOML_DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180
CMET := $(BIN)/cmet

.PHONY: help setup run test test-deps test-full lint bench ui schedule bento serve clean models

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel
	$(BIN)/python -m pip install -q -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP) ## create .venv and install the project from its own files (idempotent, fast the second time)
	@$(CMET) face assets ensure

run: setup ## the whole pipeline on the embedded default (Prefect flow: data -> checks -> tune -> train -> eval -> gate -> registry -> bento); ARGS="k=v ..." adds overrides
	$(CMET) pipeline run experiment=daily $(ARGS)

test: setup ## the fast test suite
	$(BIN)/python -m pytest -q

test-deps: ## Debian packages the slow tests use (chromium + chromium-driver, PostgreSQL, ffmpeg's ffprobe); idempotent, fails loudly
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v ffprobe >/dev/null \
	    && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "test-deps: chromium, chromedriver, postgresql, ffprobe present"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO="sudo -n"; \
	  else echo "test-deps: root or sudo is needed to apt-get install chromium chromium-driver postgresql ffmpeg" >&2; exit 1; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends \
	    chromium chromium-driver postgresql ffmpeg && \
	  command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v ffprobe >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null \
	  || { echo "test-deps: installing chromium chromium-driver postgresql ffmpeg failed" >&2; exit 1; }; \
	fi

test-full: setup test-deps ## every test, the slow ones too (PostgreSQL, browser, bento); a missing tool fails, not skips
	$(BIN)/python -m pip install -q -e ".[emotion2vec]"  # FunASR for the emotion2vec loader test
	CMET_TEST_FULL=1 $(BIN)/python -m pytest -q -ra -m "slow or not slow"

lint: setup ## ruff
	$(BIN)/ruff check cmet flows serving data_checks tests bench
	$(BIN)/ruff format --check cmet flows serving data_checks tests bench

bench: setup ## benchmarks: writes bench/results/ and prints the tables
	$(BIN)/python -m bench.run

ui: setup ## MLflow UI (and the Prefect UI) on localhost against the project's stores (MLFLOW_PORT=5000 PREFECT_PORT=4200; 0: no Prefect UI)
	$(CMET) ui $(if $(MLFLOW_PORT),--port $(MLFLOW_PORT)) $(if $(PREFECT_PORT),--prefect-port $(PREFECT_PORT))

schedule: setup ## the cron deployment of the flow (pipeline.schedule) on a Prefect server that schedules (started when none runs); Ctrl-C stops
	$(CMET) schedule

bento: setup ## build the BentoML service from the registry's champion (or BUNDLE=dir; PROFILE=gpu for a CUDA image)
	$(CMET) bento build $(if $(BUNDLE),--bundle $(BUNDLE)) $(if $(PROFILE),--profile $(PROFILE))

serve: setup ## serve the latest bento on localhost (PORT=3000; demo page at /ui/)
	$(CMET) bento serve $(if $(PORT),--port $(PORT))

clean: ## remove run outputs (keeps .venv)
	rm -rf outputs .cmet/cache
