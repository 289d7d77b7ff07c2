# Convenience targets; the scripts do the work (and install what is missing).
SHELL := /bin/bash

.PHONY: run test lint bench

run:
	bash scripts/run.sh

# make test ARGS='-m "not e2e"'
test:
	bash scripts/test.sh $(ARGS)

lint:
	bash scripts/bootstrap.sh --python-only && .venv/bin/ruff check .

bench:
	. scripts/bootstrap.sh && python -m bench
