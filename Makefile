# The two commands of the README: `make run` (the default pipeline run) and `make test` (ruff, then the test suite);
# `make test-fast` for the inner loop.
# Both create or reuse the virtual environment in .venv and install the package (pyproject.toml: pinned versions,
# every extra) into it, editable, first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
CORES ?= all
# A local copy of the upstream data (same layout) makes the run offline; ../shared/data when present.
DATA_MIRROR ?= $(abspath $(wildcard ../shared/data))
MIRROR_ARG := $(if $(DATA_MIRROR),--config "data={mirror: $(DATA_MIRROR)}")

.PHONY: run test test-fast clean-results

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[all]"
	touch $@

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(MIRROR_ARG) $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	PEFT_BENCH_DATA_MIRROR=$(DATA_MIRROR) $(BIN)/python -m pytest tests $(PYTEST_ARGS)

# the inner loop: unit tests only (no Snakemake runs, no SLURM cluster, no support matrix)
test-fast: $(STAMP)
	$(BIN)/ruff check .
	PEFT_BENCH_DATA_MIRROR=$(DATA_MIRROR) $(BIN)/python -m pytest tests -m "not slow and not cluster" $(PYTEST_ARGS)

clean-results:
	rm -rf results logs
