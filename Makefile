# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
# Debian packages the code needs: gettext compiles the translations; Pango, HarfBuzz-subset (fast
# font subsetting: 0.1 s a PDF instead of 6 s) and the Noto CJK fonts let WeasyPrint print Chinese.
# FFmpeg's ffprobe and ffmpeg read voice messages (consult/files.py check_audio) in a child process.
SYSTEM_PACKAGES := gettext libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk ffmpeg
# The tests also read PDFs back as text (poppler) and drive a real browser (Debian's Chromium,
# launched by Playwright with executable_path: Playwright's own browser download cannot work here).
# clamav-daemon: the upload scan is tested against a real clamd with a local EICAR-only database.
# Node runs the npm test tools: axe-core, injected into the pages by the browser tests, and
# Lighthouse for `make bench` (each pinned by its package-lock.json, installed with npm ci). npm is
# Debian's package of its own, but part of NodeSource's nodejs (which Debian's npm conflicts with):
# installed only when missing.
# nginx and iproute2: the cluster test (tests/test_cluster_hosts.py) builds its own hosts in network
# namespaces (ip netns, veth) with deploy/'s nginx as their load balancer.
TEST_PACKAGES := poppler-utils chromium clamav-daemon nodejs nginx iproute2
# The services pass in CI (CI=true): the real PostgreSQL and Redis on this machine.
CI_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/consult
CI_REDIS_URL ?= redis://127.0.0.1:6379/0
# Test processes (pytest-xdist). Much of the suite waits on servers, browsers and workers, so three
# keep two cores busy; each takes its own test database and Redis database (tests/workers.py).
# TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 3
PYTEST = $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

# Every Python package is pinned, transitive ones included (an unpinned one once changed under the
# chat in production). The direct dependencies are in requirements.in (runtime) and
# requirements-dev.in (test and lint tools); `make lock` compiles them with pip-tools into
# requirements.txt and requirements-dev.txt, keeping every version already pinned there.
# `make lock-upgrade` (or UPGRADE=1) moves every pin to the newest release the .in files allow,
# `make lock UPGRADE="redis boto3"` only those packages. pip may be configured with local indexes
# and find-links: no option, URL or path of theirs is written into the files.
UPGRADE ?=
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --strip-extras \
	--no-emit-options --no-emit-index-url --no-emit-find-links --no-emit-trusted-host --no-allow-unsafe \
	$(if $(filter 1,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE)))

.PHONY: help run test test-embedded test-services lint bench system-packages messages migrate seed lock lock-upgrade

help:
	@echo "make run    install what is missing, migrate, load demo data, serve on http://127.0.0.1:8000 (with a job worker and beat)"
	@echo "make test   install what is missing and run the tests (CI=true: also on PostgreSQL + Redis)"
	@echo "make lint   ruff and mypy"
	@echo "make lock   pin every package (requirements*.in -> requirements*.txt); make lock-upgrade: newest allowed"

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP)-run: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(STAMP)-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(STAMP)-run

messages: system-packages $(STAMP)-run
	@$(PY) manage.py compilemessages -v0 --ignore=.venv

migrate: $(STAMP)-run
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# daphne, a Celery worker and beat together (consult/management/commands/serve.py); Ctrl-C stops all three.
run: system-packages $(STAMP)-run messages seed
	$(PY) manage.py serve --host 127.0.0.1 --port 8000

E2E_TOOLS := tests/e2e/node_modules/.package-lock.json
LIGHTHOUSE_TOOLS := bench/lighthouse/node_modules/.package-lock.json
NPM_CI = command -v npm >/dev/null || $(MAKE) --no-print-directory system-packages EXTRA_PACKAGES=npm; \
	npm ci --ignore-scripts --no-audit --no-fund --prefix

$(E2E_TOOLS): tests/e2e/package.json tests/e2e/package-lock.json
	$(NPM_CI) tests/e2e
	touch $@

$(LIGHTHOUSE_TOOLS): bench/lighthouse/package.json bench/lighthouse/package-lock.json
	$(NPM_CI) bench/lighthouse
	touch $@

test: EXTRA_PACKAGES = $(TEST_PACKAGES)
test: system-packages $(STAMP)-dev messages $(E2E_TOOLS)
	$(MAKE) --no-print-directory test-embedded
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory test-services; fi

test-embedded:
	@echo "== tests: embedded defaults (SQLite, in-memory channel layer, local files)"
	env -u DATABASE_URL -u REDIS_URL $(PYTEST)

test-services:
	@echo "== tests: services (PostgreSQL, Redis)"
	DATABASE_URL=$(CI_DATABASE_URL) REDIS_URL=$(CI_REDIS_URL) CONSULT_REQUIRE_SERVICES=1 $(PYTEST)

lint: $(STAMP)-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

# Benchmarks run on PostgreSQL (the production database; created if missing) and their own redis-server;
# then Lighthouse's scores of the resident's pages, on the embedded defaults with demo data (bench/lighthouse.py).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/consult_bench
# nginx and iproute2: bench/cluster.py builds the cluster test's hosts (as root; skipped otherwise).
bench: EXTRA_PACKAGES = chromium nodejs nginx iproute2
bench: system-packages $(STAMP)-dev messages $(LIGHTHOUSE_TOOLS)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench
	env -u DATABASE_URL -u REDIS_URL $(PY) -m bench.lighthouse

# The runtime lock first: requirements-dev.in is constrained by it, so both files agree.
lock: $(STAMP)-dev
	$(PIP_COMPILE) --output-file=requirements.txt requirements.in
	$(PIP_COMPILE) --output-file=requirements-dev.txt requirements-dev.in

lock-upgrade:
	@$(MAKE) --no-print-directory lock UPGRADE=1
