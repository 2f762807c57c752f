# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test install bytecode bench bench-peers clean docs lint screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[airflow,celery,test]'
	$(MAKE) --no-print-directory bytecode
	touch $(STAMP)

# The project's modules compiled once, as pip compiles a wheel's: an editable install
# leaves that to Python at first import, which never happens where PYTHONDONTWRITEBYTECODE
# is set (this CI machine sets it), so every command compiled them again (0.05-0.2 s of
# each `crmhub model` here). Stale files are only ignored: run again after pulling, or let
# `make demo` and `make test` do it.
bytecode:
	$(BIN)/python -m compileall -q crmhub crm_model connectors airflow_plugins

install: $(STAMP)

demo: $(STAMP) bytecode
	$(BIN)/crmhub demo

# One run covers both warehouses: every warehouse test is parametrised over
# SQLite and PostgreSQL (CRMHUB_TEST_POSTGRES_URL, default: local trust auth).
test: $(STAMP) bytecode
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/load_csv.py
	$(BIN)/python bench/parse_dags.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/parse_mail.py

# The demo's reports and the live dashboard in headless Chromium (Debian package chromium).
screenshots: $(STAMP)
	$(BIN)/crmhub demo
	$(BIN)/python -m crmhub.demo.screenshots

# crmhub beside a raw COPY pipeline and dlt on the same pages (bench/peers.py --help).
BENCH_ARGS ?=
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

docs: $(STAMP)
	$(BIN)/python -m crm_model.dictionary > docs/warehouse.md

clean:
	rm -rf $(VENV) var build *.egg-info
