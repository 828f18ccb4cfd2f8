# Ticketlog — two commands on a fresh machine: `make run` and `make test`.
SWIFT ?= swift
DATABASE ?= ticketlog.sqlite
# System packages the build and the tests need (Debian names).
APT_PACKAGES := liblz4-dev libssl-dev zlib1g-dev libsqlite3-dev sqlite3 pkg-config curl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps venv build run run-postgres test lint docs fuzz bench bench-quick bench-venv soak format clean screenshots

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

# Seeds the sample ticket and a desk of DESK_TICKETS synthetic tickets, ticket-2001 on (idempotent:
# fixed or seeded ids), then serves the HTTP API and the dashboard on the embedded SQLite log.
DESK_TICKETS ?= 30
run: deps
	$(SWIFT) build --product ticketlog
	$(SWIFT) build --product ticketlog-generate
	.build/debug/ticketlog demo --database $(DATABASE)
	.build/debug/ticketlog-generate --tickets $(DESK_TICKETS) --first-ticket 2001 --messages 12 --database $(DATABASE)
	.build/debug/ticketlog serve --development --database $(DATABASE) --port $(PORT)

# The demo desk served by two nodes sharing one PostgreSQL log (issue 19), on PORT and PORT+1: a
# throw-away local server (Tools/Postgres/cluster.sh), removed when Ctrl-C stops the nodes.
run-postgres: deps
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(POSTGRES_PACKAGES)"
	$(SWIFT) build --product ticketlog
	$(SWIFT) build --product ticketlog-generate
	.build/debug/ticketlog-generate --tickets $(DESK_TICKETS) --first-ticket 2001 --messages 12 --out .build/desk.ndjson
	Tools/Postgres/cluster.sh run -- sh -c '.build/debug/ticketlog demo --durability normal --database "$$TICKETLOG_POSTGRES_URL" && \
	  .build/debug/ticketlog import --durability normal --database "$$TICKETLOG_POSTGRES_URL" .build/desk.ndjson && \
	  { .build/debug/ticketlog serve --development --database "$$TICKETLOG_POSTGRES_URL" --port $$(( $(PORT) + 1 )) >/dev/null 2>&1 & } && \
	  exec .build/debug/ticketlog serve --development --database "$$TICKETLOG_POSTGRES_URL" --port $(PORT)'

# Python tools the tests use (pandas and duckdb load exports; openapi-spec-validator checks the
# OpenAPI document; schemathesis sends generated requests to a running server; cryptography checks
# Ed25519 signatures in the independent evidence verifier; selenium drives the dashboard in
# Debian's headless chromium), in a local virtualenv.
VENV := .build-venv
PYTHON_TOOLS := pandas duckdb openapi-spec-validator pyyaml schemathesis cryptography selenium
# The browser the dashboard's tests drive (Debian's, with its WebDriver).
BROWSER_PACKAGES := chromium chromium-driver
# The PostgreSQL server the storage tests start as a throw-away cluster (Tools/Postgres/cluster.sh,
# as `nobody` when run as root; openssl makes the certificate it offers TLS with).
# TICKETLOG_NO_POSTGRES=1 skips those tests, loudly.
POSTGRES_PACKAGES := postgresql openssl

venv:
	@$(VENV)/bin/python -c "import pandas, duckdb, openapi_spec_validator, yaml, schemathesis, cryptography, selenium" 2>/dev/null || { \
	  echo "Installing $(PYTHON_TOOLS) into $(VENV)"; \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q $(PYTHON_TOOLS); }

# Test cases running at once. Unbounded, swift-testing starts all ~300 together: on two cores
# servers, browsers and PostgreSQL clusters then queue behind each other inside their own time
# limits (a feed's 10 s token expired before curl connected). A case's time limit starts when it
# gets its slot, so a bounded width keeps limits honest and the run as fast (284 s at 6 here).
# An older toolchain ignores the variable.
TEST_WIDTH ?= 6

test: deps venv lint
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BROWSER_PACKAGES) $(POSTGRES_PACKAGES)"
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_WIDTH) \
	  TICKETLOG_PYTHON=$(CURDIR)/$(VENV)/bin/python $(SWIFT) test
	$(MAKE) --no-print-directory docs
	$(MAKE) --no-print-directory fuzz

# The README's pictures of the dashboard (docs/screenshots/*.png, committed): the browser test's
# script against a fresh demo log, saving what it sees.
screenshots: deps venv
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BROWSER_PACKAGES)"
	$(SWIFT) build --product ticketlog
	PYTHON=$(CURDIR)/$(VENV)/bin/python TICKETLOG=$$($(SWIFT) build --show-bin-path)/ticketlog \
	  sh Tests/Dashboard/screenshots.sh docs/screenshots

# The DocC catalog of every library product (swift-docc-plugin), warnings as errors: a broken
# symbol link or an undocumented parameter fails the build. Archives in .build/plugins/Swift-DocC.
DOC_TARGETS := Ticketlog TicketlogServer StreamChatSync TicketlogStreamChat TicketlogPostgres
docs: deps
	@mkdir -p .build; for target in $(DOC_TARGETS); do \
	  echo "docs: $$target"; \
	  $(SWIFT) package generate-documentation --target $$target --warnings-as-errors >.build/docs-$$target.log 2>&1 \
	    || { grep -E -A3 "^(error|warning)" .build/docs-$$target.log | head -60; exit 1; }; \
	done

# The formatter's rules (.swift-format) over the whole tree, as a check (`make format` fixes);
# and every import declared in Package.swift, for the fuzz targets too.
FORMATTED := Sources Tests Tools Fuzz Package.swift
lint:
	$(SWIFT) format lint --strict --recursive $(FORMATTED)
	$(SWIFT) package dump-package | python3 Tools/Checks/check_imports.py
	TICKETLOG_FUZZ=1 $(SWIFT) package dump-package | python3 Tools/Checks/check_imports.py

# libFuzzer targets (Fuzz/) over the seed corpus in Fixtures/fuzz, FUZZ_SECONDS each: every Swift
# target built with -sanitize=fuzzer,address in .build-fuzz (TICKETLOG_FUZZ=1 adds the targets to
# Package.swift). A crash, a hang (-timeout), memory over -rss_limit_mb or (for the decoder) a
# leak report fails the run and leaves the input in .build-fuzz/artifacts. The webhook and HTTP
# targets run async code and keep a store between inputs; LeakSanitizer reports Foundation and
# Swift runtime objects there that are still reachable through Swift's tagged references (seen
# on the first seed, before any mutation), so leak detection is off for them and memory growth
# is bounded by -rss_limit_mb instead.
FUZZ_TARGETS := event-decoder webhook http-request
FUZZ_SECONDS ?= 20
FUZZ_BUILD := TICKETLOG_FUZZ=1 $(SWIFT) build --scratch-path .build-fuzz \
	-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library

fuzz: deps
	@for target in $(FUZZ_TARGETS); do $(FUZZ_BUILD) --product fuzz-$$target || exit 1; done
	@mkdir -p .build-fuzz/artifacts
	@for target in $(FUZZ_TARGETS); do \
	  mkdir -p .build-fuzz/corpus/$$target; \
	  leaks=1; case $$target in webhook|http-request) leaks=0;; esac; \
	  echo "fuzz-$$target: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=$$leaks .build-fuzz/debug/fuzz-$$target -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=4096 -detect_leaks=$$leaks \
	    -artifact_prefix=.build-fuzz/artifacts/$$target- -print_final_stats=1 \
	    .build-fuzz/corpus/$$target Fixtures/fuzz/$$target 2>.build-fuzz/$$target.log \
	    || { tail -40 .build-fuzz/$$target.log; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^Done" .build-fuzz/$$target.log; \
	done

# Benchmarks (issue 6): the engine against a C baseline (SQLite C API) and the Python
# eventsourcing library, in one run on the same seeded corpus. Results: bench-results.md.
BENCH_VENV := .build-bench-venv
# eventsourcing's PostgreSQL recorder (psycopg, on Debian's libpq) is the PostgreSQL rows' peer.
BENCH_PYTHON_TOOLS := eventsourcing[postgres]==9.5.6
CC := $(shell command -v cc || command -v clang)
BENCH_EVENTS ?= 1000000

bench-venv:
	@$(BENCH_VENV)/bin/python -c "import eventsourcing, psycopg" 2>/dev/null || { \
	  echo "Installing $(BENCH_PYTHON_TOOLS) into $(BENCH_VENV)"; \
	  python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q "$(BENCH_PYTHON_TOOLS)"; }

bench: deps bench-venv
	@$(MAKE) --no-print-directory deps APT_PACKAGES="wrk valgrind $(POSTGRES_PACKAGES)"
	$(SWIFT) build -c release --product ticketlog-bench
	$(SWIFT) build -c release --product ticketlog
	$(SWIFT) build -c release --product ticketlog-instructions
	mkdir -p .build-bench
	$(CC) -O2 -o .build-bench/baseline Tools/Bench/baseline.c -lsqlite3
	.build/release/ticketlog-bench --events $(BENCH_EVENTS) --baseline .build-bench/baseline \
	  --python $(BENCH_VENV)/bin/python --work .build-bench/run \
	  --server .build/release/ticketlog --wrk $$(command -v wrk) --valgrind $$(command -v valgrind) \
	  --instructions-program .build/release/ticketlog-instructions --postgres-cluster Tools/Postgres/cluster.sh

bench-quick:
	$(MAKE) bench BENCH_EVENTS=100000

# Reliability, long form (issue 7): the release crash test, SOAK_KILLS times. `make test` runs
# the short form (5 kills).
SOAK_KILLS ?= 50
# The load runs with a 4 MiB writer page cache: the server's memory grows with the log up to its
# caches, and a small cache fills early, so that growth after it is not the cache. The tool
# prints the server's resident memory beside its heap in use and SQLite's share (from /metrics).
SOAK_LOAD_SECONDS ?= 600
# Three nodes on one PostgreSQL log (issue 19): a throw-away cluster, one node killed a third of
# the way in, the database restarted at two thirds. `make test` runs the 20 s form.
SOAK_NODES_SECONDS ?= 120
SOAK_CLUSTER := /tmp/ticketlog-soak-pg

soak: deps
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(POSTGRES_PACKAGES)"
	$(SWIFT) build -c release --product ticketlog-crashtest
	$(SWIFT) build -c release --product ticketlog-load
	$(SWIFT) build -c release --product ticketlog
	mkdir -p .build-soak
	.build/release/ticketlog-crashtest run --database .build-soak/crash.sqlite --kills $(SOAK_KILLS)
	.build/release/ticketlog-load --server .build/release/ticketlog --database .build-soak/load.sqlite \
	  --duration $(SOAK_LOAD_SECONDS) --cache-mib 4
	Tools/Postgres/cluster.sh stop $(SOAK_CLUSTER) >/dev/null 2>&1 || true
	rm -rf $(SOAK_CLUSTER) && mkdir -p $(SOAK_CLUSTER)
	Tools/Postgres/cluster.sh start $(SOAK_CLUSTER) >/dev/null
	status=0; .build/release/ticketlog-load --server .build/release/ticketlog \
	  --database "$$(Tools/Postgres/cluster.sh createdb $(SOAK_CLUSTER) load)" --nodes 3 \
	  --duration $(SOAK_NODES_SECONDS) --kill-node-after $$(( $(SOAK_NODES_SECONDS) / 3 )) \
	  --restart-after $$(( $(SOAK_NODES_SECONDS) * 2 / 3 )) \
	  --restart-command "Tools/Postgres/cluster.sh restart $(SOAK_CLUSTER)" --logs .build-soak/nodes || status=$$?; \
	Tools/Postgres/cluster.sh stop $(SOAK_CLUSTER) >/dev/null; rm -rf $(SOAK_CLUSTER); exit $$status
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=600

format:
	$(SWIFT) format --in-place --recursive $(FORMATTED)

clean:
	rm -rf .build .build-fuzz .build-soak .build-bench
