# Ticketlog — two commands on a fresh machine: `make run` and `make test`.
SWIFT ?= swift
DATABASE ?= ticketlog.sqlite
# System packages the build and the tests need (Debian names).
APT_PACKAGES := liblz4-dev zlib1g-dev libsqlite3-dev sqlite3 pkg-config curl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps venv build run test bench-log format clean

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

# A first measurement of the core log (events/s, bytes/event); EVENTS=1000000 for the full corpus.
EVENTS ?= 100000
bench-log: deps
	$(SWIFT) build -c release --product LogBench
	.build/release/LogBench $(EVENTS)

format:
	$(SWIFT) format --in-place --recursive Sources Tests Tools Package.swift

clean:
	rm -rf .build
