# hcp — see README.md. `make run` starts the service embedded; `make test` runs the suite.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: setup run test test-postgres test-sqlite bench bench-figures faults fuzz lint mutation clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: setup
	$(BIN)/hcp run

# The suite on PostgreSQL + Redis + a Celery worker, then again on the embedded default.
test: test-postgres test-sqlite

test-postgres: setup
	HCP_TEST_BACKEND=postgres $(BIN)/pytest -q

test-sqlite: setup
	HCP_TEST_BACKEND=sqlite $(BIN)/pytest -q -m "not browser"

# The figures at scale: load N ratings into database hcp_bench_figures (dropped afterwards),
# time the stats API and check it against counting raw rows. See docs/figures.md.
N ?= 1000000
bench-figures: setup
	$(BIN)/python scripts/bench_figures.py --ratings $(N)

# Speed against the thinnest intake, on loopback (docs/benchmarks.md); a few minutes.
# The figures row loads BENCH_FIGURES_RATINGS ratings (default 10 M; 1000000 for a quick run).
bench: setup
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Fault tests (tests/faults): Redis, PostgreSQL and workers stopped and killed under load.
faults: setup
	HCP_TEST_BACKEND=postgres $(BIN)/pytest -q -s -p no:cacheprovider -m faults tests/faults

# schemathesis over /api/v1/openapi.json as every kind of caller (HCP_FUZZ_EXAMPLES per operation).
fuzz: setup
	HCP_TEST_BACKEND=postgres $(BIN)/pytest -q -p no:cacheprovider -m fuzz tests/fuzz

# pyflakes and pycodestyle rules (pyproject.toml [tool.ruff]); migrations excluded.
lint: setup
	$(BIN)/pip install --quiet -e '.[lint]'
	$(BIN)/ruff check .

# Mutation testing of the rule modules (mutmut, one worker, nice 10) against their fast SQLite
# tests, module by module; MODULES="deadlines intake" for some. Not in CI. See docs/testing.md.
MODULES ?=
mutation: setup
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(BIN)/python scripts/mutation.py $(MODULES)

clean:
	rm -rf $(VENV) var *.egg-info .pytest_cache
