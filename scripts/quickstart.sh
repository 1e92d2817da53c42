#!/usr/bin/env bash
# One command from a fresh clone to a result: makes .venv if missing, installs the local extra,
# then runs the main job (the local demo: GRPO vs MT-GRPO on a tiny model, CPU friendly).
# Re-runnable; extra arguments go to `openrlhf-mt demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_env local
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$VENV/bin/openrlhf-mt" demo "$@"
