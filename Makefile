# Ticketlog — two commands on a fresh machine: `make run` and `make test`.
SWIFT ?= swift
DATABASE ?= ticketlog.sqlite
# System packages the build and the tests need (Debian names).
APT_PACKAGES := liblz4-dev zlib1g-dev libsqlite3-dev sqlite3 pkg-config curl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps venv build run test bench bench-quick bench-venv soak format clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

PORT ?= 8080

# Seeds a sample ticket (idempotent), then serves the HTTP API on the embedded SQLite log.
run: deps
	$(SWIFT) build --product ticketlog
	$(SWIFT) run ticketlog demo --database $(DATABASE)
	$(SWIFT) run ticketlog serve --database $(DATABASE) --port $(PORT)

# Python tools the tests use (pandas and duckdb load exports; openapi-spec-validator checks the
# OpenAPI document), in a local virtualenv.
VENV := .build-venv
PYTHON_TOOLS := pandas duckdb openapi-spec-validator pyyaml

venv:
	@$(VENV)/bin/python -c "import pandas, duckdb, openapi_spec_validator, yaml" 2>/dev/null || { \
	  echo "Installing $(PYTHON_TOOLS) into $(VENV)"; \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q $(PYTHON_TOOLS); }

test: deps venv
	TICKETLOG_PYTHON=$(CURDIR)/$(VENV)/bin/python $(SWIFT) test

# Benchmarks (issue 6): the engine against a C baseline (SQLite C API) and the Python
# eventsourcing library, in one run on the same seeded corpus. Results: bench-results.md.
BENCH_VENV := .build-bench-venv
BENCH_PYTHON_TOOLS := eventsourcing==9.5.6
CC := $(shell command -v cc || command -v clang)
BENCH_EVENTS ?= 1000000

bench-venv:
	@$(BENCH_VENV)/bin/python -c "import eventsourcing" 2>/dev/null || { \
	  echo "Installing $(BENCH_PYTHON_TOOLS) into $(BENCH_VENV)"; \
	  python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q $(BENCH_PYTHON_TOOLS); }

bench: deps bench-venv
	@$(MAKE) --no-print-directory deps APT_PACKAGES=wrk
	$(SWIFT) build -c release --product ticketlog-bench
	$(SWIFT) build -c release --product ticketlog
	mkdir -p .build-bench
	$(CC) -O2 -o .build-bench/baseline Tools/Bench/baseline.c -lsqlite3
	.build/release/ticketlog-bench --events $(BENCH_EVENTS) --baseline .build-bench/baseline \
	  --python $(BENCH_VENV)/bin/python --work .build-bench/run \
	  --server .build/release/ticketlog --wrk $$(command -v wrk)

bench-quick:
	$(MAKE) bench BENCH_EVENTS=100000

# Reliability, long form (issue 7): the release crash test, SOAK_KILLS times. `make test` runs
# the short form (5 kills).
SOAK_KILLS ?= 50

soak: deps
	$(SWIFT) build -c release --product ticketlog-crashtest
	mkdir -p .build-soak
	.build/release/ticketlog-crashtest run --database .build-soak/crash.sqlite --kills $(SOAK_KILLS)

format:
	$(SWIFT) format --in-place --recursive Sources Tests Tools Package.swift

clean:
	rm -rf .build
