#!/usr/bin/env bash
# Make (or check) .venv-trl: the venv in which bench_trl.py runs TRL's GRPOTrainer. Idempotent: a stamp
# keyed on this file skips the install when nothing changed. torch is pinned to the project's CPU build (an
# unpinned torch would pull a multi-GB CUDA build); transformers to the version the project's own venv uses,
# so both engines run the same model code.
#
#   bash benchmarks/trl_env.sh        # prints the venv's python
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPENRLHF_MT_TRL_VENV:-$ROOT/.venv-trl}"
PY="$VENV/bin/python"
PINS=(torch==2.13.0 trl==1.16.0 transformers==5.19.0)
STAMP="$VENV/.bench-trl"
want="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "$PY"
  exit 0
fi
[ -x "$PY" ] || python3 -m venv "$VENV" >&2
"$PY" -m pip install --quiet --disable-pip-version-check uv 2>&1 | { grep -v "is ignored" || true; } >&2
# uv reads pip's index settings (this machine's wheel folders and local indexes), as scripts/env.sh does
links="${PIP_FIND_LINKS:-$("$PY" -m pip config get global.find-links 2>/dev/null || true)}"
index="${PIP_EXTRA_INDEX_URL:-$("$PY" -m pip config get global.extra-index-url 2>/dev/null || true)}"
if [ -n "$links" ]; then export UV_FIND_LINKS="${UV_FIND_LINKS:-$links}"; fi
if [ -n "$index" ]; then export UV_EXTRA_INDEX_URL="${UV_EXTRA_INDEX_URL:-$(echo $index)}"; fi
echo "[trl-env] installing ${PINS[*]} into $VENV" >&2
UV_INDEX_STRATEGY=unsafe-best-match "$VENV/bin/uv" pip install --quiet --python "$PY" "${PINS[@]}" >&2
echo "$want" > "$STAMP"
echo "$PY"
