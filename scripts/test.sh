#!/usr/bin/env bash
# The project's test command: makes .venv if missing, installs dev + local + the CPU-installable part
# of the OpenRLHF stack, then runs ruff and pytest. Re-runnable; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_env dev,local openrlhf-cpu
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "[test] ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check . >/dev/null || { "$VENV/bin/ruff" format --diff . | head -50; exit 1; }
echo "[test] pytest"
"$VENV/bin/python" -m pytest "$@"
