# The two commands of the README's quick start. Both set everything up first (idempotent).
# make test-fast: the fast tier (pytest -m fast, under a minute on 2 cores): the turn logic driven by scripted
# speech on fake providers (tests/scripted.py) and the unit tests; no WebRTC call, no server, no model files,
# none of llama_cpp/faster_whisper/piper imported. It needs only the virtual environment. CI runs make test.
# scripts/setup.sh stops at the first step that fails and says why; run the same command again after the fix.
.PHONY: run cluster test test-fast setup setup-test bench

run: setup
	.venv/bin/parley serve $(ARGS)

# N workers (default one per core) under supervisord behind HAProxy on :8080 (docs/deployment.md).
cluster: setup
	.venv/bin/python -m server.cluster $(ARGS)

test: setup-test
	scripts/test.sh $(ARGS)

test-fast:
	scripts/test.sh -m fast $(ARGS)

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

bench: setup
	.venv/bin/python -m bench.latency $(ARGS)
