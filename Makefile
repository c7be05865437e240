# The same commands for people and CI (STYLE §7). `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install run test lint format bench reliability lock clean

PIP    := $(BIN)/pip install --quiet --disable-pip-version-check

## The development set (tests, linters): `make test`, `make lint` and the other targets.
$(BIN)/.installed: pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -c requirements/dev.txt -e '.[dev]'
	touch $@

## The runtime set only: all `make run` needs.
$(BIN)/.installed-run: pyproject.toml requirements/prod.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -c requirements/prod.txt -e .
	touch $@

install: $(BIN)/.installed

.env: | $(BIN)/.installed-run
	sed "s|^TOKEN_ENCRYPTION_KEY=$$|TOKEN_ENCRYPTION_KEY=$$($(BIN)/timedify shops generate-key)|" .env.example > .env
	@echo "created .env from .env.example with a fresh TOKEN_ENCRYPTION_KEY (development values; edit before production)"

## Start the service on the embedded SQLite default, worker in-process.
run: $(BIN)/.installed-run .env
	$(BIN)/timedify migrate
	@echo "logs below are JSON lines; readable ones: LOG_FORMAT=console make run"
	$(BIN)/timedify serve

## The whole test suite, PostgreSQL included (a throwaway server started by the tests).
test: install
	bash scripts/ensure-postgres
	bash scripts/ensure-bubblewrap
	bash scripts/ensure-chromium
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

## Benchmarks against a raw-ASGI baseline measured in the same run, the shipped `serve` end to end
## included (starts everything itself on 127.0.0.1, installs wrk when missing and root; ~25 min on
## 2 cores). Each scenario's figures replace its block in docs/benchmarks.md.
## One scenario, quickly: make bench BENCH_ARGS="e2e --db sqlite --repeat 1 --burst-seconds 5"
bench: install
	bash scripts/ensure-postgres
	BENCH_COMMAND="make bench$(if $(BENCH_ARGS), BENCH_ARGS='$(BENCH_ARGS)')" $(BIN)/python -m bench $(BENCH_ARGS)

## The reliability suite at 5x scale (RELIABILITY_SCALE=N to change); figures to docs/reliability.md.
RELIABILITY_SCALE ?= 5
reliability: install
	bash scripts/ensure-postgres
	rm -f tmp/reliability-figures.jsonl && mkdir -p tmp
	TIMEDIFY_RELIABILITY_SCALE=$(RELIABILITY_SCALE) TIMEDIFY_RELIABILITY_FIGURES=$(CURDIR)/tmp/reliability-figures.jsonl \
		$(BIN)/pytest -n 2 --dist loadgroup tests/reliability $(PYTEST_ARGS)
	$(BIN)/python -m tests.support.figures tmp/reliability-figures.jsonl \
		"make reliability RELIABILITY_SCALE=$(RELIABILITY_SCALE)" >> docs/reliability.md

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

## Re-resolve the pinned dependency sets after changing pyproject.toml. `make lock UPGRADE=1`
## also moves every pin to the newest version pyproject.toml allows (the monthly update).
UPGRADE ?=
LOCK_ARGS := --python-version 3.11 -q $(if $(UPGRADE),--upgrade)
lock:
	uv pip compile pyproject.toml --extra dev -o requirements/dev.txt $(LOCK_ARGS)
	uv pip compile pyproject.toml -o requirements/prod.txt $(LOCK_ARGS)

## The quarterly security audit: pip-audit on the production lock file, bandit on src/, the
## image's runtime contract (tests/deploy), then the operator checklist, also written to
## $(AUDIT_REPORT) with the results (the quarterly workflow files it as an issue).
AUDIT_REPORT ?= tmp/audit-report.md
.PHONY: audit
audit: install
	bash scripts/ensure-bubblewrap
	$(BIN)/python scripts/audit --report $(AUDIT_REPORT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
