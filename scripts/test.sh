#!/usr/bin/env bash
# The project's test command: makes .venv if missing, installs dev + local + the CPU-installable part
# of the OpenRLHF stack, then runs ruff, the GPU stack's pin check and pytest. Re-runnable; extra
# arguments go to pytest.
#   bash scripts/test.sh              ruff, the GPU pins, the default suite (under 10 minutes on 2 cores)
#   bash scripts/test.sh tests/algo   ruff, then pytest on what you name
#   bash scripts/test.sh --cluster    the opt-in simulations: a 2-node SLURM cluster (tests/cluster) and
#                                     the full end-to-end set (one rank, async, dry run); about 15 minutes
#   bash scripts/test.sh --reliability  the opt-in fault injection: 20 SIGKILLs of a local run at random
#                                     points, in a checkpoint write and in an evaluation, each resumed
#                                     (OPENRLHF_MT_RELIABILITY_KILLS=N for another count); about 5 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_env dev,local openrlhf-cpu
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "[test] ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check . >/dev/null || { "$VENV/bin/ruff" format --diff . | head -50; exit 1; }
if [ "${1:-}" = "--cluster" ]; then
  shift
  echo "[test] cluster simulations (SLURM shim + 2 Ray nodes; 1-rank, async and dry-run end to end)"
  OPENRLHF_MT_CLUSTER_SIM=1 OPENRLHF_MT_E2E_FULL=1 "$VENV/bin/python" -m pytest tests/cluster tests/openrlhf/test_e2e.py "$@"
elif [ "${1:-}" = "--reliability" ]; then
  shift
  echo "[test] reliability: many SIGKILLs of a local run, each resumed (tests/local/test_reliability.py)"
  OPENRLHF_MT_RELIABILITY=1 "$VENV/bin/python" -m pytest tests/local/test_reliability.py -s "$@"
elif [ $# -gt 0 ]; then
  echo "[test] pytest $*"
  "$VENV/bin/python" -m pytest "$@"
else
  # Four jobs side by side: the pin check (pip's resolver: mostly the network), the OpenRLHF end-to-end
  # test and the other OpenRLHF tests (Ray, vLLM and DeepSpeed: mostly waiting on process starts, about
  # 30 s of CPU in the 3-minute end-to-end test), and the rest (CPU-bound, one core). The OpenRLHF tests
  # leave process-wide state behind (atexit handlers, CUDA/CPU bridges): they get pytest processes of
  # their own; each --mt.cpu run and Ray fixture starts a private local Ray.
  logs="$(mktemp -d)"
  trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # an interrupted run leaves nothing behind
  bash scripts/check_gpu_pins.sh "$VENV/bin/python" >"$logs/gpu-pins" 2>&1 &
  pins=$!
  echo "[test] in the background: pytest tests/openrlhf (Ray + vLLM + DeepSpeed on the CPU), in two parts"
  "$VENV/bin/python" -m pytest --durations=5 tests/openrlhf/test_e2e.py >"$logs/openrlhf-e2e" 2>&1 &
  e2e=$!
  "$VENV/bin/python" -m pytest --durations=5 tests/openrlhf --ignore=tests/openrlhf/test_e2e.py \
    >"$logs/openrlhf-units" 2>&1 &
  units=$!
  echo "[test] pytest (all but tests/openrlhf)"
  failed=""
  "$VENV/bin/python" -m pytest --durations=10 --ignore=tests/openrlhf || failed="$failed pytest"
  for job in gpu-pins:$pins openrlhf-units:$units openrlhf-e2e:$e2e; do
    wait "${job#*:}" || failed="$failed ${job%%:*}"
    echo "[test] ${job%%:*}:"
    cat "$logs/${job%%:*}"
  done
  if [ -n "$failed" ]; then
    echo "[test] FAILED:$failed" >&2
    exit 1
  fi
fi
