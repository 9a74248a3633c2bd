# The two commands of the quick start are `make workbook` and `make test`; both create the
# virtual environment from pyproject.toml when it is missing or older than pyproject.toml or constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUILD ?= build
CATALOG ?=
# constraints.txt pins every package to the release the test suite passed with (`make lock` refreshes it).
CONSTRAINTS ?= constraints.txt
USER_ID ?= $(shell id -u)

.PHONY: workbook test bytecode lab bench lint lock wheel git-filter clean

$(BIN)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint $(CONSTRAINTS) -e '.[dev]'
	$(MAKE) --no-print-directory git-filter
	touch $@

# The project's own modules compiled to bytecode before the workbook or the tests start their many interpreters
# (kernels, command lines, moto servers): where PYTHONDONTWRITEBYTECODE is set (as on the development machine),
# each would otherwise compile every module it imports again, about 0.13 s of CPU per `yafdp` command. Up to date,
# this takes hundredths of a second; a module edited later is simply compiled again by the process that imports it.
bytecode: $(BIN)/.installed
	$(BIN)/python -m compileall -q yafdp

workbook: $(BIN)/.installed bytecode  ## execute every notebook on the embedded (local) backend into build/, with an index page (CATALOG=DIR: on your catalog, into build/<its name>)
	$(BIN)/yafdp workbook $(if $(CATALOG),--catalog $(CATALOG) --out $(BUILD)/$(notdir $(abspath $(CATALOG))),--out $(BUILD))

test: $(BIN)/.installed bytecode  ## run the test suite, papermill runs of every notebook included, on every core
	$(BIN)/python -m pytest -n auto --dist worksteal

# JupyterLab with the project's own kernel, "Python (yafdp)", registered for this user (any Jupyter, VS Code
# included, can then run the notebooks with this environment). JupyterLab refuses to start as root unless told.
lab: $(BIN)/.installed  ## open the workbook in JupyterLab
	$(BIN)/python -m ipykernel install --user --name yafdp --display-name "Python (yafdp)"
	$(BIN)/jupyter lab $(if $(filter 0,$(USER_ID)),--allow-root) notebooks

# The wheel is built from a copy of the committed files (git archive), so nothing stale from an earlier build ships
# and nothing lands in build/, which is the workbook's folder.
wheel: $(BIN)/.installed  ## build dist/yafdp-<version>-py3-none-any.whl from the committed files
	rm -rf .wheel-source && mkdir -p .wheel-source dist
	git archive HEAD | tar -x -C .wheel-source
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist ./.wheel-source
	rm -rf .wheel-source

lint: $(BIN)/.installed  ## lint the shipped catalog
	$(BIN)/yafdp lint

bench: $(BIN)/.installed  ## run every benchmark script and print its figures; fails at the end if a target was missed
	status=0; for b in benchmarks/bench_*.py; do $(BIN)/python $$b || status=1; done; exit $$status

# The git filter that strips outputs from notebooks as they are staged (.gitattributes names it for *.ipynb),
# nbstripout, run by this repository's own environment ($(VENV), relative: git runs filters at the top of the
# work tree). Cell ids are kept: the notebooks are committed with them. The filter is not `required`: where
# $(VENV) is missing, git stages the file as it is, and tests/integration/test_packaging.py refuses outputs.
git-filter:  ## install the nbstripout git filter in this repository (make does it when it creates the environment)
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean '$(BIN)/python -m nbstripout --keep-id' && \
	  git config filter.nbstripout.smudge cat && \
	  git config diff.ipynb.textconv '$(BIN)/python -m nbstripout --keep-id --textconv'; \
	fi

# A fresh environment with the newest releases pyproject.toml allows, frozen: review the diff, run `make test`
# (it reinstalls from the new pins), and commit constraints.txt with the README's list of tested versions.
lock:  ## refresh constraints.txt
	rm -rf $(BUILD)/lock-venv
	$(PYTHON) -m venv $(BUILD)/lock-venv
	$(BUILD)/lock-venv/bin/python -m pip install --quiet --upgrade pip
	$(BUILD)/lock-venv/bin/python -m pip install --quiet '.[dev]'
	{ echo "# The releases the test suite passed with: make test and .ci/run install these (pip --constraint)."; \
	  echo "# Written by \`make lock\` with $$($(BUILD)/lock-venv/bin/python --version) on $$(uname -m) Linux."; \
	  $(BUILD)/lock-venv/bin/python -m pip freeze --all --exclude yafdp --exclude pip; } > $(CONSTRAINTS)
	rm -rf $(BUILD)/lock-venv

clean:
	rm -rf $(BUILD) .pytest_cache
