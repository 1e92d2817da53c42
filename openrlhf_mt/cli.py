"""The `openrlhf-mt` command: one subcommand per module, each imported only when it is used."""

from __future__ import annotations

import importlib
import sys

# name -> (module with `main(argv: list[str], prog: str) -> int`, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train-ray": ("openrlhf_mt.engines.openrlhf.train_ray", "MT-GRPO on OpenRLHF: Ray, DeepSpeed, vLLM"),
    "stop": (
        "openrlhf_mt.engines.openrlhf.stop",
        "ask the train-ray runs on a Ray cluster to checkpoint after the current step and end",
    ),
    "simulate": (
        "openrlhf_mt.simulate",
        "MT-GRPO vs DAPO batch building on synthetic tasks (no model, seconds)",
    ),
    "train": (
        "openrlhf_mt.engines.local.train",
        "train one method on this machine (CPU or one GPU) from a YAML config",
    ),
    "demo": (
        "openrlhf_mt.engines.local.demo",
        "quickstart: GRPO vs MT-GRPO on 3 tiny tasks, CPU, ~10 min, report",
    ),
    "report": (
        "openrlhf_mt.engines.local.report",
        "report.md + report.png (accuracy, weights) for run directories",
    ),
    "tiny-model": (
        "openrlhf_mt.engines.local.tiny_model",
        "write the warmed-up builtin:tiny model as a Hugging Face directory (e.g. for train-ray)",
    ),
    "tasks": ("openrlhf_mt.tasks.cli_tasks", "list tasks (paper's, tiny-*, rg:*); --sample shows one each"),
    "data": ("openrlhf_mt.tasks.cli_data", "build train/test jsonl+parquet datasets; check; paper-test"),
}


def _usage() -> str:
    width = max((len(name) for name in SUBCOMMANDS), default=0)
    lines = [
        "usage: openrlhf-mt <command> [options]",
        "",
        "Multi-Task GRPO (MT-GRPO) on one machine or on OpenRLHF clusters.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run `openrlhf-mt <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version", "version"}:
        from openrlhf_mt import __version__

        print(f"openrlhf-mt {__version__}")
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        print(f"openrlhf-mt: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(argv[1:], prog=f"openrlhf-mt {name}") or 0)


if __name__ == "__main__":
    sys.exit(main())
