# The two commands of the README's quick start. Both set everything up first (idempotent).
.PHONY: run test setup setup-test bench

run: setup
	.venv/bin/python -m server $(ARGS)

test: setup-test
	scripts/test.sh $(ARGS)

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

bench: setup
	.venv/bin/python -m bench.latency $(ARGS)
