"""`openrlhf-mt train`: one MT-GRPO (or baseline) run on this machine, from a YAML config.

openrlhf-mt train --config examples/tiny_cpu.yaml [--method NAME] [--out DIR] [--steps N]
                  [--set section.key=value ...] [--resume]
"""

from __future__ import annotations

import argparse
import shlex
import sys

from openrlhf_mt.config import METHOD_PRESETS, ConfigError, RunConfig, load_config


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run config (sections as in openrlhf_mt/config.py)")
    parser.add_argument("--method", choices=list(METHOD_PRESETS), help="method preset (overrides the file's)")
    parser.add_argument("--out", help="output directory (overrides `out:`)")
    parser.add_argument("--steps", type=int, help="training steps (overrides train.steps)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, read as YAML (repeatable), e.g. --set algo.lam=0.25",
    )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    overrides = list(args.overrides)
    if args.out is not None:
        overrides.append(f"out={args.out}")
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    return load_config(args.config, method=args.method, overrides=overrides)


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last")
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2

    from openrlhf_mt.engines.local.checkpoint import CheckpointError
    from openrlhf_mt.engines.local.trainer import LocalTrainer

    try:
        trainer = LocalTrainer(cfg, resume=args.resume)
    except (FileNotFoundError, ValueError, CheckpointError) as error:
        # a bad model path, task name or eval file, a missing checkpoint, an output directory without room
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    for task, source in trainer.eval_sources.items():
        print(
            f"eval {task}: {source['eval_prompts']} prompts from {source['source']}; "
            f"{source['train_prompts_removed_as_eval']} training prompts removed as eval prompts"
        )
    try:
        rows = trainer.train()
    except CheckpointError as error:  # the disk filled up during the run
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    if trainer.stopped_by is not None:
        again = [*argv, *([] if args.resume else ["--resume"])]
        print(
            f"stopped by {trainer.stopped_by} after step {trainer.step} of {cfg.train.steps}; checkpoint: "
            f"{trainer.out / 'checkpoints' / 'last'}. Resume with:\n  {prog} {shlex.join(again)}"
        )
        return 0
    evals = [row for row in rows if "eval/worst_accuracy" in row]
    if evals:
        last = evals[-1]
        per_task = ", ".join(f"{t} {last[f'eval/{t}/accuracy']:.3f}" for t in cfg.data.tasks)
        print(
            f"step {last['step']}: worst {last['eval/worst_accuracy']:.3f}, "
            f"mean {last['eval/mean_accuracy']:.3f} ({per_task})"
        )
    print(f"metrics: {trainer.out / 'metrics.jsonl'}; checkpoints: {trainer.out / 'checkpoints'}")
    return 0
