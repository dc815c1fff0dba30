#!/usr/bin/env bash
# Creates the two virtual environments from the pinned lock files, once per lock content.
#   .venv           the product and its dev tools (requirements.lock)
#   .venv-secantus  SecantusDB, the embedded MongoDB wire-protocol server. It is GPL, so it lives
#                   in its own environment and only ever runs as a separate process.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

make_venv() {  # make_venv DIR LOCKFILE [extra pip args...]
  local dir=$1 lock=$2; shift 2
  local stamp="$dir/.lock-sha"
  local want; want=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  echo "bootstrap: installing $lock into $dir" >&2
  [[ -x "$dir/bin/python" ]] || "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --pre -r "$lock" "$@" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
  echo "$want" > "$stamp"
}

make_venv .venv requirements.lock
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
make_venv .venv-secantus requirements-secantus.lock
