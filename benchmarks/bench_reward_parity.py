"""Reward parity with the released code: our paper-task scorers against the reference of the released
scorers (benchmarks/reward_parity.py), on generated responses over the paper's test rows and generated rows.

Per family: responses compared, responses outside the stated coverage, the released reward mix, and the
disagreements of our default scorer (must be 0), of each non-default reward option, and of the OpenRLHF
reward function (every 10th response, with an EOS token after it).

    python benchmarks/bench_reward_parity.py [--responses 100000] [--seed 0]

Writes benchmarks/results/reward_parity.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository

from benchmarks.reward_parity import COVERAGE, OPTION_SUFFIXES, compare, iter_rows
from openrlhf_mt.tasks.paper_test import load_paper_test

ROOT = Path(__file__).resolve().parents[1]
PAPER_TEST = Path(os.environ.get("OPENRLHF_MT_PAPER_TEST", ROOT.parent / "shared" / "data" / "paper_test"))
RESULTS = ROOT / "benchmarks" / "results"
GENERATED_ROWS_PER_FAMILY = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=100_000, help="responses per family")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paper = load_paper_test(PAPER_TEST) if PAPER_TEST.is_dir() else None
    rows = list(iter_rows(paper, GENERATED_ROWS_PER_FAMILY, args.seed))
    started = time.perf_counter()
    results = compare(rows, args.responses, args.seed + 1, through_reward_func_every=10)
    seconds = time.perf_counter() - started
    machine = f"{os.cpu_count()}-core CPU, no GPU ({platform.machine()}, Python {platform.python_version()})"
    options = [*OPTION_SUFFIXES, "reward_func"]
    lines = [
        f"# Reward parity with the released scorers (machine: {machine})",
        "",
        f"{args.responses} generated responses per family over "
        f"{'the paper test rows (200 per task) and ' if paper else ''}"
        f"{GENERATED_ROWS_PER_FAMILY} generated rows per family; seed {args.seed}; {seconds:.0f} s in all.",
        f"Coverage: {COVERAGE}",
        "Disagreements with the released reference, per scorer: `default` is ours as shipped (must be 0);",
        "`newline=ignore` and `format_credit=valid` are the documented variants (docs/parity.md);",
        "`reward_func` is the OpenRLHF reward function on every 10th response with an EOS token after it.",
        "",
        "| family | compared | outside coverage | released 0 / 0.1 / 1 | " + " | ".join(options) + " |",
        "|---|---|---|---|" + "---|" * len(options),
    ]
    payload: dict = {"machine": machine, "seconds": seconds, "seed": args.seed, "coverage": COVERAGE}
    for family, result in results.items():
        mix = " / ".join(str(result.rewards[value]) for value in (0, 0.1, 1.0))
        counts = " | ".join(str(result.disagreements[option]) for option in options)
        lines.append(f"| {family} | {result.responses} | {result.outside_coverage} | {mix} | {counts} |")
        payload[family] = {
            "compared": result.responses,
            "outside_coverage": result.outside_coverage,
            "released_rewards": {str(k): v for k, v in sorted(result.rewards.items())},
            "disagreements": {option: result.disagreements[option] for option in options},
            "first_disagreement": {option: list(map(repr, ex)) for option, ex in result.examples.items()},
        }
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reward_parity.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "reward_parity.json").write_text(json.dumps(payload, indent=1) + "\n")
    if any(r.disagreements["default"] or r.disagreements["reward_func"] for r in results.values()):
        raise SystemExit("disagreements in the default mode: see benchmarks/results/reward_parity.json")


if __name__ == "__main__":
    main()
