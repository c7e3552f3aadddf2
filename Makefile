# The README's commands. Each creates .venv and installs the package when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# Real data for tests and demos: ../shared/datasets when it exists, unless set.
ifeq ($(origin NEUMOD_DATA_ROOT), undefined)
  ifneq ($(wildcard ../shared/datasets),)
    export NEUMOD_DATA_ROOT := $(abspath ../shared/datasets)
  endif
endif
export MPLBACKEND := Agg

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,maml]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

demo: $(STAMP)
	$(BIN)/python -m avalanche_neumod.demo

bench: $(STAMP)
	$(BIN)/python benchmarks/perf/run_all.py --out reports/perf.md

lint: $(STAMP)
	$(BIN)/ruff check avalanche_neumod tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
