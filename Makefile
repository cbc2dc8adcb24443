# The two commands of the README. Both work on a fresh machine.
.PHONY: demo test lint bench-emulator bench-auth bench-import

VENV := .venv
PY := $(VENV)/bin/python

demo:
	scripts/bootstrap.sh
	scripts/demo.sh

test:
	scripts/bootstrap.sh --test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench-emulator:
	$(PY) bench/emulator_throughput.py

bench-auth:
	$(PY) bench/auth_overhead.py

bench-import:
	$(PY) bench/import_throughput.py
