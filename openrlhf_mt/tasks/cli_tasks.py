"""`openrlhf-mt tasks`: list the tasks (optionally with one sample each) or reasoning-gym's datasets."""

from __future__ import annotations

import argparse
import sys

from openrlhf_mt.tasks.base import TaskDataError
from openrlhf_mt.tasks.registry import ENTRY_POINT_GROUP, get_task, list_tasks


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="List tasks. Besides these names: 'rg:<dataset>[?key=value&...]' (any reasoning-gym "
        f"dataset), '<module.path>:<factory>' and entry points in the group '{ENTRY_POINT_GROUP}'.",
    )
    parser.add_argument("names", nargs="*", help="tasks to show (default: all registered)")
    parser.add_argument(
        "--sample", action="store_true", help="print one generated prompt, label and answer each"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument(
        "--rg", action="store_true", help="list reasoning-gym datasets usable as rg:<dataset>"
    )
    return parser


def _print_reasoning_gym_datasets() -> None:
    from reasoning_gym.factory import DATASETS

    from openrlhf_mt.tasks.reasoning_gym_task import UNSAFE_SCORERS

    usable = [name for name in sorted(DATASETS) if name not in UNSAFE_SCORERS and name != "composite"]
    print(f"{len(usable)} reasoning-gym datasets usable as rg:<name>:")
    print("  " + " ".join(usable))
    print("refused (their scorer evaluates the answer as code): " + ", ".join(sorted(UNSAFE_SCORERS)))


def main(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    if args.rg:
        _print_reasoning_gym_datasets()
        return 0
    try:
        tasks = [get_task(name) for name in args.names or list_tasks()]
    except TaskDataError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    width = max(len(task.name) for task in tasks)
    for task in tasks:
        print(f"{task.name:<{width}}  {task.description}")
        if args.sample:
            (row,) = task.generate(1, seed=args.seed)
            indented = row["prompt"].replace("\n", "\n    | ")
            answer = task.reference_response(row["label"])
            print(f"    | {indented}\n    label: {row['label']}\n    answer: {answer!r}\n")
    return 0
