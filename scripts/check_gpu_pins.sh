#!/usr/bin/env bash
# Without a GPU: do the pins of the CUDA stack (setup.cfg's `openrlhf` + `local` extras under
# scripts/constraints-gpu.txt) resolve together? pip's dry run with a report, metadata only (nothing is
# installed, no CUDA wheel is downloaded; flash-attn's sdist metadata is built without its CUDA part).
#   bash scripts/check_gpu_pins.sh [PYTHON]     # prints the resolved versions of the key packages
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-python3}"
REPORT="$(mktemp)"
trap 'rm -f "$REPORT"' EXIT
FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE "$PY" -m pip install --quiet --disable-pip-version-check --dry-run \
  --ignore-installed --no-build-isolation --report "$REPORT" \
  -c "$ROOT/scripts/constraints-gpu.txt" "$ROOT[openrlhf,local]" 2>&1 | { grep -v "is ignored" || true; }
"$PY" - "$REPORT" <<'PY'
import json, sys
resolved = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
            for i in json.load(open(sys.argv[1]))["install"]}
want = {"openrlhf": "0.11.2", "vllm": "0.29.0", "flash-attn": "2.8.3", "deepspeed": "0.19.6",
        "ray": "2.55.0", "transformers": "5.15.0"}
bad = {name: resolved.get(name) for name, version in want.items() if resolved.get(name) != version}
print("GPU stack resolves:", ", ".join(f"{n} {resolved.get(n)}" for n in [*want, "torch"]))
sys.exit(f"unexpected versions: {bad}" if bad else 0)
PY
