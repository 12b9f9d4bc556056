# Tailor: `make demo` runs the whole loop, `make test` runs every test. Both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_LIBS := .cache/kafka/libs
STAMP := .cache/stamps

.PHONY: setup demo test lint typecheck contracts unit e2e faults stack-up stack-down bench clean

setup: $(STAMP)/venv $(STAMP)/kafka $(STAMP)/redis $(STAMP)/chromium $(STAMP)/prometheus $(STAMP)/wrk ## Install everything (idempotent, quick when nothing changed)

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,eval]'
	@touch $@

$(STAMP)/kafka: config/kafka/pom.xml
	@mkdir -p $(STAMP) $(KAFKA_LIBS)
	@command -v java >/dev/null || { echo "Java 17+ is required to run Kafka (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to fetch the Kafka jars (apt-get install maven)"; exit 1; }
	@echo "Fetching Apache Kafka jars from Maven Central into $(KAFKA_LIBS) ..."
	rm -f $(KAFKA_LIBS)/*.jar
	mvn --batch-mode --quiet -f config/kafka/pom.xml dependency:copy-dependencies \
		-DoutputDirectory=$(CURDIR)/$(KAFKA_LIBS) -DincludeScope=runtime
	@touch $@

$(STAMP)/redis:
	@mkdir -p $(STAMP)
	@if command -v redis-server >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's redis-server ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	else \
		echo "redis-server is missing: run 'sudo apt-get install redis-server', or point TAILOR_REDIS_URL at a running Redis."; \
		exit 1; \
	fi
	@touch $@

# Debian's Chromium drives the menu-board page test (tests never download a browser). Without
# root it only says how to install it, and that test skips; the stamp waits until it is there.
$(STAMP)/chromium:
	@mkdir -p $(STAMP)
	@if [ -x /usr/bin/chromium ]; then touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			&& touch $@; \
	else \
		echo "chromium is missing: 'sudo apt-get install chromium' enables the board page test."; \
	fi

# Debian's prometheus scrapes the demo's API and worker, and runs the Grafana dashboard's
# queries in the tests; the launcher starts it (engine/dev/prometheus.py), never systemd.
$(STAMP)/prometheus:
	@mkdir -p $(STAMP)
	@if command -v prometheus >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's prometheus ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else \
		echo "prometheus is missing: run 'sudo apt-get install prometheus', or set TAILOR_PROMETHEUS_URL to an existing Prometheus."; \
		exit 1; \
	fi
	@touch $@

# Debian's wrk drives the serving benchmark (benchmarks/serving.py; redis-benchmark comes
# with redis-server). Only the benchmark needs it: without root the setup just says so.
$(STAMP)/wrk:
	@mkdir -p $(STAMP)
	@if command -v wrk >/dev/null; then touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's wrk ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
			&& touch $@; \
	else \
		echo "wrk is missing: 'sudo apt-get install wrk' enables the serving benchmark."; \
	fi

demo: setup ## Start Kafka, Redis, a worker, the API and the simulator; Ctrl-C stops all of it
	$(BIN)/tailor demo

lint:
	$(BIN)/ruff check engine models config benchmarks tests
	$(BIN)/ruff format --check engine models config benchmarks tests

typecheck:
	$(BIN)/mypy

contracts: ## The architecture's import contracts (pyproject.toml, [tool.importlinter])
	$(BIN)/lint-imports

unit: setup
	$(BIN)/pytest -m 'not e2e'

e2e: setup
	$(BIN)/pytest -m e2e

test: setup lint typecheck contracts ## Every test, ruff, mypy and the import contracts
	$(BIN)/pytest

faults: setup ## The fault-injection suite with full streams (~20,000 answers per test), figures shown
	TAILOR_FAULTS_FULL=1 $(BIN)/pytest -m faults -s

stack-up: setup
	$(BIN)/tailor stack up

stack-down:
	$(BIN)/tailor stack down

clean:
	-$(BIN)/tailor stack down
	rm -rf .tailor .cache $(VENV)
