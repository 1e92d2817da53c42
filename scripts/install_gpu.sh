#!/usr/bin/env bash
# The whole CUDA stack of the OpenRLHF engine in one command, on a machine with NVIDIA GPUs:
#
#   bash scripts/install_gpu.sh              # makes .venv-gpu (OPENRLHF_MT_VENV=/path elsewhere)
#   source .venv-gpu/bin/activate
#
# torch 2.13.0 (the CUDA build PyPI serves for Linux; TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# picks another CUDA), then flash-attn 2.8.3 built against that torch (its sdist cannot build in pip's
# isolated environment, which has no torch: hence --no-build-isolation; it fetches a prebuilt wheel when
# one matches torch/CUDA/ABI, else compiles for a long while: MAX_JOBS bounds the parallel compilers),
# then openrlhf-mt with the `openrlhf` and `local` extras under scripts/constraints-gpu.txt.
# Re-runnable. Not run here (no GPU); scripts/check_gpu_pins.sh checks in CI that these pins resolve.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPENRLHF_MT_VENV:-$ROOT/.venv-gpu}"
command -v nvidia-smi >/dev/null || { echo "$0: no nvidia-smi: this installs the CUDA stack; on a CPU use scripts/env.sh" >&2; exit 2; }
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
"${PIP[@]}" --upgrade pip setuptools wheel packaging ninja psutil
"${PIP[@]}" "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
MAX_JOBS="${MAX_JOBS:-8}" "${PIP[@]}" --no-build-isolation "flash-attn==2.8.3"
"${PIP[@]}" -c "$ROOT/scripts/constraints-gpu.txt" -e "$ROOT[openrlhf,local]"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md, torch
for dist in ("torch", "flash-attn", "vllm", "openrlhf", "deepspeed", "ray", "transformers"):
    print(f"{dist:13s} {md.version(dist)}")
print("CUDA devices:", torch.cuda.device_count())
PY
