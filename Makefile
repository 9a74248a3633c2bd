# The two commands of the quick start are `make workbook` and `make test`; both create the
# virtual environment from pyproject.toml when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD ?= build
CATALOG ?=

.PHONY: workbook test lab bench lint clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

workbook: $(BIN)/.installed  ## execute every notebook on the embedded (local) backend into build/ (CATALOG=DIR: on your catalog, into build/<its name>)
	$(BIN)/yafdp workbook $(if $(CATALOG),--catalog $(CATALOG) --out $(BUILD)/$(notdir $(abspath $(CATALOG))),--out $(BUILD))

test: $(BIN)/.installed  ## run the test suite, papermill runs of every notebook included, on every core
	$(BIN)/python -m pytest -n auto --dist worksteal

lab: $(BIN)/.installed  ## open the workbook in JupyterLab
	$(BIN)/jupyter lab notebooks

lint: $(BIN)/.installed  ## lint the shipped catalog
	$(BIN)/yafdp lint

bench: $(BIN)/.installed  ## run every benchmark script and print its figures; fails at the end if a target was missed
	status=0; for b in benchmarks/bench_*.py; do $(BIN)/python $$b || status=1; done; exit $$status

clean:
	rm -rf $(BUILD) .pytest_cache
