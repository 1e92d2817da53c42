"""Scoring throughput: 10,000 responses per task, per-call microseconds (mean, median, p99, max).

Responses are realistic in shape: ~1 KB of reasoning, then a last line that is correct (the reference
answer), wrong but boxed, or unboxed, in equal thirds. Labels come from the paper's test sets for the
paper's tasks and from generation for the others. Also times OpenRLHF's per-sample `reward_func` call.

    python benchmarks/bench_scoring.py [--responses 10000]

Writes benchmarks/results/scoring.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

from openrlhf_mt.tasks import get_task, list_tasks
from openrlhf_mt.tasks.openrlhf_reward import reward_func
from openrlhf_mt.tasks.paper_test import load_paper_test

ROOT = Path(__file__).resolve().parents[1]
PAPER_TEST = ROOT.parent / "shared" / "data" / "paper_test"
RESULTS = ROOT / "benchmarks" / "results"
RG_TASK = "rg:basic_arithmetic?min_terms=2&max_terms=4"
FILLER = "Let me think about this carefully. We try a few options and check each one. " * 13


def _labels(task_name: str, paper: dict[str, list[dict]]) -> list[dict]:
    return paper.get(task_name) or get_task(task_name).generate(60, seed=0)


def _responses(task_name: str, rows: list[dict], count: int, rng: random.Random) -> list[tuple[str, str]]:
    task, tiny = get_task(task_name), task_name.startswith("tiny-")
    references = [task.reference_response(row["label"]) for row in rows]
    samples = []
    for i in range(count):
        row, reference = rows[i % len(rows)], references[i % len(rows)]
        kind = i % 3
        if tiny:
            response = [reference, reference[::-1] + "1", "?" * rng.randint(1, 9)][kind]
        else:
            answer = reference.removeprefix("\\boxed{").removesuffix("}")
            wrong = "\\boxed{" + (answer + "+1" if "countdown" in task_name else answer[::-1] + "x") + "}"
            response = (
                FILLER + "\n" + ["So the answer is " + reference, "So " + wrong, "So it is " + answer][kind]
            )
        samples.append((response, row["label"]))
    return samples


def _time_calls(function, calls: list[tuple]) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds) per call; CPU time is what a loaded machine cannot inflate."""
    seconds = []
    for args in calls:
        wall, cpu = time.perf_counter(), time.process_time()
        function(*args)
        seconds.append((time.perf_counter() - wall, time.process_time() - cpu))
    return seconds


def _summary(seconds: list[tuple[float, float]]) -> dict[str, float]:
    wall = sorted(w * 1e6 for w, _ in seconds)
    cpu = sorted(c * 1e6 for _, c in seconds)
    return {
        "cpu_mean_us": statistics.fmean(cpu),
        "cpu_max_us": cpu[-1],
        "wall_median_us": wall[len(wall) // 2],
        "wall_p99_us": wall[int(len(wall) * 0.99)],
        "wall_max_us": wall[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--responses", type=int, default=10_000, help="responses scored per task")
    args = parser.parse_args()
    rng = random.Random(0)
    paper: dict[str, list[dict]] = {}
    for row in load_paper_test(PAPER_TEST) if PAPER_TEST.is_dir() else []:
        paper.setdefault(row["datasource"], []).append(row)

    results = {}
    for name in [*list_tasks(), RG_TASK]:
        task = get_task(name)
        samples = _responses(name, _labels(name, paper), args.responses, rng)
        for response, label in samples[:30]:  # warm caches (label parsing, imports) outside the timing
            task.score(response, label)
        seconds = _time_calls(task.score, samples)
        rewards = [task.score(response, label) for response, label in samples[:3]]
        results[name] = {**_summary(seconds), "rewards_of_correct_wrong_unboxed": rewards}
        print(f"{name:<45} {results[name]['cpu_mean_us']:8.1f} µs/call (CPU)", flush=True)

    rows = paper.get("countdown-medium") or get_task("countdown-medium").generate(60, seed=0)
    samples = _responses("countdown-medium", rows, args.responses, rng)
    calls = [([row["prompt"] + response + "</s>"], [row["prompt"]], [label]) for (response, label), row in
             zip(samples, [rows[i % len(rows)] for i in range(len(samples))], strict=True)]  # fmt: skip
    results["openrlhf reward_func (countdown-medium, 1 sample/call)"] = _summary(
        _time_calls(reward_func, calls)
    )

    machine = f"2-core CPU, no GPU ({platform.machine()}, Python {platform.python_version()})"
    lines = [
        f"# Scoring: {args.responses} responses per task, per call (machine: {machine})",
        "",
        "Responses: ~1 KB of reasoning, then a correct / wrong-but-boxed / unboxed last line (thirds).",
        "CPU = process CPU time per call; wall = elapsed time per call, which includes any time the",
        f"process was descheduled (load average at start: {os.getloadavg()[0]:.1f} on 2 cores).",
        "",
        "| task | CPU mean µs | CPU max µs | wall median µs | wall p99 µs | wall max µs |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {r['cpu_mean_us']:.1f} | {r['cpu_max_us']:.0f} | {r['wall_median_us']:.1f} "
        f"| {r['wall_p99_us']:.1f} | {r['wall_max_us']:.0f} |"
        for name, r in results.items()
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scoring.md").write_text(table)
    payload = {"machine": machine, "responses_per_task": args.responses, "tasks": results}
    (RESULTS / "scoring.json").write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
