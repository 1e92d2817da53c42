"""Generated prompts vs the paper's test sets: size parameters and prompt lengths, per task and level.

For N generated prompts per level (default 200) and the paper's 200 test prompts per level: the number
of countdown numbers, zebra houses and attributes, ARC grid lengths (each must be the table's value), and
prompt lengths in characters and in "words" (a simple tokenizer: runs of letters/digits, or a single
other non-space character; no model tokenizer is available offline here).

    python benchmarks/task_statistics.py [--n 200] [--workers 2]

Writes benchmarks/results/task_statistics.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.paper import LEVELS
from openrlhf_mt.tasks.paper_test import load_paper_test

ROOT = Path(__file__).resolve().parents[1]
PAPER_TEST = ROOT.parent / "shared" / "data" / "paper_test"
RESULTS = ROOT / "benchmarks" / "results"
WORD = re.compile(r"\w+|[^\w\s]")


def size_parameter(task: str, prompt: str) -> tuple[int, ...]:
    """countdown: (how many numbers,); zebra: (houses, attributes); arc: sorted set of grid lengths."""
    if task.startswith("countdown"):
        numbers = re.search(r"Using the numbers \[([^\]]*)\]", prompt).group(1)
        return (len(numbers.split(",")),)
    if task.startswith("zebra"):
        houses = int(re.search(r"There are (\d+) houses", prompt).group(1))
        return (houses, len(re.findall(r"^ - ", prompt, flags=re.MULTILINE)))
    grids = re.findall(r"(?:Input|Output):\s*\n?((?:\d ?)+)", prompt)
    return tuple(sorted({len(grid.split()) for grid in grids}))


def describe(task: str, prompts: list[str]) -> dict:
    chars = [len(p) for p in prompts]
    words = [len(WORD.findall(p)) for p in prompts]
    return {
        "n": len(prompts),
        "size_parameters": sorted({size_parameter(task, p) for p in prompts}),
        "chars_mean": statistics.fmean(chars),
        "chars_range": [min(chars), max(chars)],
        "words_mean": statistics.fmean(words),
        "words_range": [min(words), max(words)],
    }


def _generate(task: str, n: int) -> tuple[str, list[str], float]:
    started = time.perf_counter()
    rows = get_task(task).generate(n, seed=0)
    return task, [row["prompt"] for row in rows], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200, help="generated prompts per level")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    names = [f"{family}-{level}" for family in ("countdown", "zebra", "arc") for level in LEVELS]
    paper: dict[str, list[str]] = {}
    for row in load_paper_test(PAPER_TEST):
        paper.setdefault(row["datasource"], []).append(row["prompt"])
    slowest_first = sorted(names, key=lambda name: (not name.startswith("zebra-"), -names.index(name)))
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = pool.map(_generate, slowest_first, [args.n] * len(names))
        generated = {task: (prompts, seconds) for task, prompts, seconds in jobs}

    results = {}
    for task in names:
        prompts, seconds = generated[task]
        results[task] = {
            "generated": describe(task, prompts),
            "paper": describe(task, paper[task]),
            "generation_s_per_prompt": seconds / args.n,
        }
    machine = f"2-core CPU, no GPU ({platform.machine()}, Python {platform.python_version()})"
    lines = [
        f"# Generated prompts vs the paper's test sets ({args.n} generated per level; machine: {machine})",
        "",
        "words = runs of letters/digits or single other characters (a simple tokenizer, no model vocab).",
        "gen. s/prompt = wall time per prompt in one worker process (machine load included).",
        "",
        "| task | size parameter (ours / paper) | chars mean (ours / paper) | words mean (ours / paper) "
        "| words range (ours / paper) | gen. s/prompt |",
        "|---|---|---|---|---|---|",
    ]
    for task, result in results.items():
        ours, theirs = result["generated"], result["paper"]
        lines.append(
            f"| {task} | {ours['size_parameters']} / {theirs['size_parameters']} "
            f"| {ours['chars_mean']:.0f} / {theirs['chars_mean']:.0f} "
            f"| {ours['words_mean']:.0f} / {theirs['words_mean']:.0f} "
            f"| {ours['words_range']} / {theirs['words_range']} | {result['generation_s_per_prompt']:.3f} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "task_statistics.md").write_text(table)
    (RESULTS / "task_statistics.json").write_text(
        json.dumps({"machine": machine, "n": args.n, "tasks": results}, indent=1)
    )


if __name__ == "__main__":
    main()
