#!/usr/bin/env bash
# Runs the whole test suite. Where this user may create a network namespace (root, or user namespaces),
# the tests run inside one that has only loopback, so no test can send a packet anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."
export PARLEY_ICE_LOOPBACK=1
if unshare --net true 2>/dev/null; then
  exec unshare --net sh -c 'ip link set lo up && exec .venv/bin/python -m pytest "$@"' pytest "$@"
fi
exec .venv/bin/python -m pytest "$@"
