# Two entry points on a fresh machine with Python 3.11+: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
# The Dagster instance: dagster_home (embedded SQLite, the default) or deploy (MySQL, DAGSTER_MYSQL_*).
DAGSTER_INSTANCE ?= dagster_home
export DAGSTER_HOME := $(CURDIR)/$(DAGSTER_INSTANCE)
# Two targets started together on a fresh clone (make dev, make fake-api) build .venv once: the
# second waits for the first under this lock, then finds it built (flock is util-linux; without it,
# start one target first).
VENV_LOCK := $(shell command -v flock >/dev/null 2>&1 && echo "flock $(CURDIR)/.venv.lock")

.PHONY: dev test demo lint format fake-api scorecard clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=python3.11)")'
	$(VENV_LOCK) sh -c '[ $(STAMP) -nt pyproject.toml ] || { $(PYTHON) -m venv $(VENV) \
		&& $(BIN)/pip install --quiet --upgrade pip && $(BIN)/pip install --quiet -e ".[dev]" \
		&& touch $(STAMP); }'

## Start Dagster (webserver on http://127.0.0.1:$(PORT), default 3000, and the daemon) on the embedded SQLite
## default; DAGSTER_INSTANCE=deploy runs it on the MySQL-backed instance of deploy/dagster.yaml.
dev: $(STAMP)
	@# Dagster's storage tables first: the webserver and the daemon would race to create them.
	$(BIN)/dagster instance migrate > /dev/null
	$(BIN)/dg dev --host 127.0.0.1 --port $(PORT)

## Run the test suite (the MariaDB/MySQL half too when SPOT_PIPELINE_TEST_MYSQL_URL is set).
test: $(STAMP)
	$(BIN)/python -m pytest

## Offline demo: fake API -> reference data -> universe -> 30 days of candles into data/market.sqlite.
demo: $(STAMP)
	$(BIN)/python -m spot_pipeline_dev.demo --days 30

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/dg check defs

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Serve the fake CCData API on 127.0.0.1:8765 (data) and :8766 (min-api) for offline runs.
fake-api: $(STAMP)
	$(BIN)/python -m spot_pipeline_dev.fake_ccdata --data-port 8765 --min-port 8766

## Regenerate docs/reliability.md from the fault suite's results (MariaDB rows need SPOT_PIPELINE_TEST_MYSQL_URL).
scorecard: $(STAMP)
	@[ -n "$$SPOT_PIPELINE_TEST_MYSQL_URL" ] || { echo "set SPOT_PIPELINE_TEST_MYSQL_URL: the scorecard has MariaDB rows"; exit 2; }
	SPOT_PIPELINE_SCORECARD=$(CURDIR)/.scorecard.json $(BIN)/python -m pytest -q \
		spot_pipeline_tests/test_fault_suite.py -k "not committed_scorecard"
	$(BIN)/python -m spot_pipeline_tests.scorecard .scorecard.json > docs/reliability.md
	rm -f .scorecard.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
