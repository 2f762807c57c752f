# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test install bench bench-peers clean docs lint screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[airflow,celery,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crmhub demo

# One run covers both warehouses: every warehouse test is parametrised over
# SQLite and PostgreSQL (CRMHUB_TEST_POSTGRES_URL, default: local trust auth).
test: $(STAMP)
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
