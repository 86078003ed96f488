#!/usr/bin/env bash
# Sets up everything Parley needs, idempotently, and stops at the first step that fails, saying why:
#   Python 3.11+, system packages (espeak-ng, cmake, a C++ compiler, haproxy, supervisor; Chromium and coturn for the
#   tests with --test), a virtual environment, the package with its embedded runtimes (pip install -e .[local]:
#   llama-cpp-python builds from source the first time, a few minutes) and the model weights (`parley models`:
#   downloaded, joined and sha256-checked into PARLEY_CACHE_DIR, ~/.cache/parley).
#   scripts/setup.sh [--test] [--remote]
#     --test    the test dependencies too (make test)
#     --remote  for a server whose three stages are remote (OpenAI or compatible): no embedded runtimes, no
#               compiler, only the VAD and end-of-turn weights
# A run that completes leaves a stamp in the virtual environment; a second run checks it and the weights and
# finishes in seconds. A run that fails leaves no stamp, and the next one starts that step again.
# PARLEY_VENV (.venv), PARLEY_CACHE_DIR and PYTHON choose the environment, the weights' folder and the interpreter;
# PARLEY_SYSTEM_PACKAGES=skip leaves the system packages to whoever built the machine (an image, a CI runner).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
remote=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --remote) remote=1 ;;
    *) echo "usage: scripts/setup.sh [--test] [--remote]" >&2; exit 2 ;;
  esac
done
VENV=${PARLEY_VENV:-.venv}
# Bold and red only on a terminal: a log file or CI gets plain text.
say() { if [ -t 1 ]; then printf '\033[1m[setup]\033[0m %s\n' "$*"; else printf '[setup] %s\n' "$*"; fi; }
fail() {
  if [ -t 2 ]; then printf '\033[1;31m[setup] failed:\033[0m %s\n' "$*" >&2; else printf '[setup] failed: %s\n' "$*" >&2; fi
  exit 1
}

# --- Python 3.11 or newer, checked before anything is installed ---------------------------------------------------
py_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  py_ok "$PYTHON" || fail "PYTHON=$PYTHON is not Python 3.11 or newer ($("$PYTHON" --version 2>&1 || true))"
  PY=$PYTHON
else
  PY=""
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && py_ok "$candidate"; then PY=$candidate; break; fi
  done
  found=$(command -v python3 >/dev/null && python3 --version 2>&1 || echo "missing")
  [ -n "$PY" ] || fail "Parley needs Python 3.11 or newer; python3 here is $found.
  Install one (Debian/Ubuntu: apt-get install python3.11 python3.11-venv; macOS: brew install python@3.12;
  or pyenv), then run again, or name it: PYTHON=/path/to/python3.12 scripts/setup.sh"
fi
if [ -x "$VENV/bin/python" ] && ! py_ok "$VENV/bin/python"; then
  fail "$VENV was made with $("$VENV/bin/python" --version 2>&1); remove it (rm -r $VENV) and run again"
fi

# --- System packages -------------------------------------------------------------------------------------------------
# espeak-ng speaks the languages that have no offline neural voice, cmake and a C++ compiler build llama-cpp-python
# (both only for the embedded models); haproxy and supervisor run a cluster of workers on one host
# (python -m server.cluster); the tests also drive Chromium and relay a call through a real coturn.
if [ $remote -eq 1 ]; then
  debian_pkgs=(python3-venv haproxy supervisor)
  needed=()
else
  debian_pkgs=(espeak-ng cmake g++ python3-venv haproxy supervisor)
  needed=("espeak-ng:espeak-ng" "cmake:cmake" "c++:a C++ compiler (g++ or clang++)")
fi
optional=("haproxy:haproxy" "supervisord:supervisor")
if [ $want_test -eq 1 ]; then
  debian_pkgs+=(chromium coturn postgresql)  # postgresql: the history's tests start a throwaway cluster
  optional+=("chromium:chromium" "turnserver:coturn")
fi

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq || fail "apt-get update failed (above)"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
    || fail "apt-get could not install ${missing[*]} (above)"
}

if [ "${PARLEY_SYSTEM_PACKAGES:-}" = "skip" ]; then
  say "not checking system packages (PARLEY_SYSTEM_PACKAGES=skip): ${debian_pkgs[*]} on Debian"
elif command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  apt_install "${debian_pkgs[@]}"
else
  # Not Debian: say which packages this system lacks rather than skip them. Commands, not package names, are
  # checked, since each system names its packages differently.
  lacking=()
  for entry in "${needed[@]}"; do command -v "${entry%%:*}" >/dev/null || lacking+=("${entry#*:}"); done
  spare=()
  for entry in "${optional[@]}"; do command -v "${entry%%:*}" >/dev/null || spare+=("${entry#*:}"); done
  if [ ${#spare[@]} -gt 0 ]; then
    say "not found, install with your package manager if you need them: ${spare[*]}"
    say "  (haproxy, supervisor: python -m server.cluster; chromium, coturn: some tests, skipped without them)"
  fi
  if [ ${#lacking[@]} -gt 0 ]; then
    fail "this is not a Debian system, so the setup cannot install system packages; install these with your
  package manager and run again: ${lacking[*]}
  (or scripts/setup.sh --remote, for remote providers only, which needs none of them)"
  fi
fi

# --- The virtual environment and the package -----------------------------------------------------------------------
pip_step() {  # pip_step WHAT PIP-ARGS...: pip with its progress shown; on failure its errors, and the setup stops
  local what=$1 log rc
  shift
  log=$(mktemp "${TMPDIR:-/tmp}/parley-setup-pip.XXXXXX")
  set +e
  PIP_PROGRESS_BAR=off CMAKE_BUILD_PARALLEL_LEVEL=$(nproc 2>/dev/null || echo 2) "$VENV/bin/python" -m pip "$@" 2>&1 \
    | tee "$log" | grep --line-buffered -E '^(Collecting|Building|Successfully)'
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    # pip names the package in its ERROR lines ("... satisfies the requirement X", "Failed building wheel for X").
    grep -E '^(ERROR|error:)|Failed|No matching distribution' "$log" | sort -u | tail -15 >&2 || true
    fail "$what: pip exited with $rc; nothing is marked as done (pip's whole output: $log)"
  fi
  rm -f "$log"
}

if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment in $VENV with $PY ($("$PY" --version 2>&1))"
  "$PY" -m venv "$VENV" || fail "could not create $VENV (Debian/Ubuntu: apt-get install python3-venv)"
  pip_step "upgrading pip in $VENV" install -q --upgrade pip wheel
fi

extras=local
[ $remote -eq 1 ] && extras=""
[ $want_test -eq 1 ] && extras="${extras:+$extras,}test"
pins=server/providers/local/requirements-models.txt
stamp_src=$(cat pyproject.toml "$pins" scripts/setup.sh | sha256sum | cut -c1-16)
stamp="$VENV/.parley-setup-$stamp_src-${extras:-core}"
if [ ! -f "$stamp" ]; then
  rm -f "$VENV"/.parley-setup-* "$VENV"/.parley-deps-*  # from now on, until the end, nothing is marked as done
  if [ $remote -eq 0 ] && ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    say "building llama-cpp-python from source: about 4 minutes on 2 cores, once"
  fi
  say "installing Parley and its Python dependencies (pip install -e .${extras:+[$extras]})"
  # The distribution was called "parley" before; its editable install of this checkout would shadow this one.
  if "$VENV/bin/python" -m pip show parley 2>/dev/null | grep -qx "Editable project location: $PWD"; then
    pip_step "removing the old editable install" uninstall -y -q parley
  fi
  pip_step "pip install -e .${extras:+[$extras]}" install -e ".${extras:+[$extras]}"
fi

# --- Model weights: downloaded, joined and checked (fast when already verified) -----------------------------------
models_args=()
[ $remote -eq 1 ] && models_args=(--remote-only)
say "model weights (parley models${models_args[*]:+ ${models_args[*]}}): into ${PARLEY_CACHE_DIR:-~/.cache/parley}"
"$VENV/bin/parley" models "${models_args[@]}" \
  || fail "the model weights are not all there (the package is named above); fix that and run the setup again:
  the files already verified are kept"

# Older setups installed the model packages into the environment; the joined files in the cache are all the server
# reads now (server/providers/local/weights.py), so those copies (1.3 GB) go once every file is joined (not with
# --remote, which checks only two of them).
if [ ! -f "$stamp" ] && [ $remote -eq 0 ]; then
  installed=$("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null | cut -d= -f1 | tr 'A-Z_' 'a-z-')
  legacy=()
  for pin in $(grep -vE '^\s*(#|$)' "$pins" | cut -d= -f1); do
    if grep -qx "$pin" <<<"$installed"; then legacy+=("$pin"); fi
  done
  if [ ${#legacy[@]} -gt 0 ]; then
    say "removing the model packages from $VENV: their weights are in the cache now"
    pip_step "removing the model packages" uninstall -y -q "${legacy[@]}"
  fi
fi
# tests/test_js_types.py type-checks the JS client's types with TypeScript from npm's cache (tests run offline).
if [ $want_test -eq 1 ]; then
  if command -v npx >/dev/null; then
    say "TypeScript into npm's cache (npx typescript@5)"
    npx -y -p typescript@5 tsc --version >/dev/null || fail "npx could not fetch typescript@5 from the npm registry"
  else
    say "warning: npx is missing (Node.js's npm): tests/test_js_types.py will be skipped"
  fi
fi
touch "$stamp"
say "ready"
