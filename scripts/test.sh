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
if [ $# -gt 0 ]; then
  echo "[test] pytest $*"
  "$VENV/bin/python" -m pytest "$@"
else
  # The OpenRLHF tests run Ray, vLLM and DeepSpeed, which leave process-wide state (atexit handlers,
  # CUDA/CPU bridges) behind: they get a pytest process of their own, after everything else.
  echo "[test] pytest (all but tests/openrlhf)"
  "$VENV/bin/python" -m pytest --ignore=tests/openrlhf
  echo "[test] pytest tests/openrlhf (Ray + vLLM + DeepSpeed on the CPU)"
  "$VENV/bin/python" -m pytest tests/openrlhf
fi
