"""Cost of the MT-GRPO core per training step, with generation replaced by a synthetic function.

The paper's 9-task setting: K = 9 tasks, B = 256 prompts x N = 8 rollouts, M_os = 3, N_rs = 2, lenient filter,
IWU with Adam stepped once per PPO mini-batch (4 per step). What is timed, per step (the "core"):
    sampler    build_batch: weights check, n ~ Multinomial(B, z), inflation and apportioning per round,
               reading and filtering every generated group, rho, per-round accuracy, the final per-task
               subsample, the shuffle and BatchInfo. The time spent inside generate() is subtracted.
    signals    J_k: the reward EMA, once per generation round; the GRPO advantages of the batch's reward
               matrix; I_k: per_task_improvement of each of the 4 mini-batches (from per-sample task names)
    weighter   4 IWU (Adam) updates, each with its signals.task_stats() assembly, and one read of the
               weighter's diagnostics (the engines log them once per step)
Reported beside the core, not in it:
    generate   the synthetic engine: draws each group's rewards and builds its Group (the constructor
               converts and validates the rewards): an engine's work, done while it generates
    hand-off   what an engine has after its PPO step and passes in: per-sample task names, the batch's
               rewards as a (B, N) array, the objectives before/after each mini-batch; and freeing the
               step's batch of groups once trained on (else the next build_batch call would pay for it)
    sec        SEC's signal, per_task_mean_abs_advantage over the batch: SEC runs only, not MT-GRPO's loop
Times are this process's CPU time (process_time; the steady measure on a shared machine) and wall time
(perf_counter), per step; the table gives median, mean and min over steps, and the core per number of
generation rounds (a second round doubles the groups to read).

Run: .venv/bin/python benchmarks/bench_core.py [--steps 1000] [--repeats 3] [--request adaptive].
Writes benchmarks/results/core.{json,md} (core_adaptive.{json,md} with --request adaptive).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from openrlhf_mt.algo.advantages import group_advantages
from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.algo.signals import RewardEMA, per_task_improvement, per_task_mean_abs_advantage, task_stats
from openrlhf_mt.algo.weights import make_weighter
from openrlhf_mt.simulate import SyntheticTasks

RESULTS = Path(__file__).parent / "results"
MACHINE = "2-core CPU, no GPU"
NUM_TASKS, BATCH_SIZE, ROLLOUTS, MINI_BATCHES = 9, 256, 8, 4
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CORE_PARTS = ("sampler", "signals", "weighter")
PARTS = (*CORE_PARTS, "core", "generate", "hand-off", "sec")
# on a shared machine the minimum over steps is the closest to the uncontended cost
STATISTICS = {"median": np.median, "mean": np.mean, "min": np.min}


class Stopwatch:
    """Seconds per (part, clock) within one step."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        start = {clock: read() for clock, read in CLOCKS.items()}
        yield
        for clock, read in CLOCKS.items():
            self.seconds[name, clock] += read() - start[clock]


def run(
    steps: int, warmup: int, request: str = "oversample", seed: int = 0
) -> tuple[dict[tuple[str, str], np.ndarray], np.ndarray]:
    """Per-step seconds for each (part, clock), and each step's number of generation rounds."""
    tasks = [f"task-{k}" for k in range(NUM_TASKS)]
    rates = dict(zip(tasks, np.linspace(0.1, 0.8, NUM_TASKS).tolist(), strict=True))
    synthetic = SyntheticTasks(rates, rollouts=ROLLOUTS, seed=seed)
    sampler = RatioPreservingSampler(
        tasks, BATCH_SIZE, max_rounds=2, filter_mode="lenient", seed=seed, request=request
    )
    weighter = make_weighter("iwu", tasks, optimizer="adam", weight_decay=1e-4, improvement_clip=0.2)
    reward_level = RewardEMA(tasks)
    rng = np.random.default_rng(seed)
    per_step: dict[tuple[str, str], list[float]] = defaultdict(list)
    rounds = []

    for step in range(warmup + steps):
        watch = Stopwatch()

        def generate(counts: dict[str, int], watch: Stopwatch = watch) -> list:
            with watch.part("generate"):
                return synthetic(counts)

        with watch.part("sampler"):
            batch, info = sampler.build_batch(weighter.weights(), generate)

        with watch.part("hand-off"):
            task_of_sample = [g.task for g in batch for _ in range(ROLLOUTS)]
            batch_rewards = np.array([g.rewards for g in batch])
            objective_before = rng.normal(size=len(task_of_sample))
            objective_after = objective_before + 0.01 * rng.normal(size=len(task_of_sample))
            size = len(task_of_sample) // MINI_BATCHES
            mini_batches = [slice(start, start + size) for start in range(0, size * MINI_BATCHES, size)]

        with watch.part("signals"):
            for accuracy in info.accuracy_per_round:  # J_k: EMA over generation rounds, as the released code
                rewards = reward_level.update(accuracy)
            advantages = group_advantages(batch_rewards)
            improvements = [
                per_task_improvement(task_of_sample[s], objective_before[s], objective_after[s])
                for s in mini_batches
            ]
        with watch.part("weighter"):
            for improvement in improvements:
                weighter.update(task_stats(rewards, improvement))
            diagnostics = weighter.diagnostics  # read once per step, as the engines' loggers do
        assert len(diagnostics) == 6 * NUM_TASKS  # score, gradient and IWU's four fields, per task
        with watch.part("sec"):
            per_task_mean_abs_advantage(task_of_sample, advantages.ravel())
        with watch.part("hand-off"):  # the engine lets go of the step's groups once it has trained on them
            del batch

        if step >= warmup:
            rounds.append(info.rounds)
            for clock in CLOCKS:
                watch.seconds["sampler", clock] -= watch.seconds["generate", clock]  # build_batch's own time
                watch.seconds["core", clock] = sum(watch.seconds[part, clock] for part in CORE_PARTS)
                for part in PARTS:
                    per_step[part, clock].append(watch.seconds[part, clock])
    return {key: np.array(values) for key, values in per_step.items()}, np.array(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs of --steps steps, pooled in the table")
    parser.add_argument(
        "--request",
        choices=("oversample", "adaptive"),
        default="oversample",
        help="the sampler's request sizing",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    runs = [
        run(args.steps, args.warmup, args.request) for _ in range(args.repeats)
    ]  # the same workload: spread = machine
    load_after = os.getloadavg()[0]
    per_step = {key: np.concatenate([r[0][key] for r in runs]) for key in runs[0][0]}
    rounds = np.concatenate([r[1] for r in runs])
    core_median_per_run = [float(1e6 * np.median(r[0]["core", "cpu"])) for r in runs]

    rows = []
    for part in PARTS:
        row: dict[str, float | str] = {"part": part}
        for clock in CLOCKS:
            us = 1e6 * per_step[part, clock]
            row |= {f"{clock}_{name}_us": float(reduce(us)) for name, reduce in STATISTICS.items()}
        rows.append(row)
    core_us = 1e6 * per_step["core", "cpu"]
    core_by_rounds = {
        int(r): {"steps": int((rounds == r).sum()), "cpu_median_us": float(np.median(core_us[rounds == r]))}
        for r in np.unique(rounds)
    }
    lines = [
        f"MT-GRPO core cost per step: K={NUM_TASKS}, B={BATCH_SIZE}, N={ROLLOUTS}, M_os=3, N_rs=2, lenient",
        f"filter, IWU (Adam) x {MINI_BATCHES} mini-batches; {args.repeats} runs of {args.steps} steps after "
        f"{args.warmup} warm-up, pooled; core CPU median per run: "
        + ", ".join(f"{us:.0f} µs" for us in core_median_per_run),
        f"machine: {MACHINE}; 1-minute load average {load_before:.1f} before, {load_after:.1f} after",
        f"mean generation rounds per step: {rounds.mean():.2f}; core CPU median by rounds: "
        + ", ".join(
            f"{r} round(s) {v['cpu_median_us']:.0f} µs ({v['steps']} steps)"
            for r, v in core_by_rounds.items()
        ),
        "core = sampler (build_batch without generate) + signals (J EMA, advantages, I_k x 4) + weighter",
        "(task_stats + IWU update, x 4); the rows below it are engine work or SEC-only, not in the core",
        "",
        "| part | CPU µs/step: median | mean | min | wall µs/step: median | mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "core": "**core total**",
        "generate": "(synthetic generate + Group construction: engine)",
        "hand-off": "(engine hand-off: task names, reward array, objectives)",
        "sec": "(SEC's mean abs advantage: SEC runs only)",
    }
    for row in rows:
        label = labels.get(str(row["part"]), row["part"])
        cpu = " | ".join(f"{row[f'cpu_{name}_us']:.0f}" for name in STATISTICS)
        wall = " | ".join(f"{row[f'wall_{name}_us']:.0f}" for name in ("median", "mean"))
        lines.append(f"| {label} | {cpu} | {wall} |")
    table = "\n".join(lines)
    print(table)

    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "core" if args.request == "oversample" else f"core_{args.request}"
    (RESULTS / f"{name}.md").write_text(table + "\n")
    record = {
        "machine": MACHINE,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": load_after},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "settings": {
            "tasks": NUM_TASKS,
            "batch_size": BATCH_SIZE,
            "rollouts": ROLLOUTS,
            "oversample": 3.0,
            "request": args.request,
            "max_rounds": 2,
            "filter_mode": "lenient",
            "weighter": "iwu, adam",
            "weight_updates_per_step": MINI_BATCHES,
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
        },
        "core": list(CORE_PARTS),
        "core_cpu_median_per_run_us": core_median_per_run,
        "mean_rounds": float(rounds.mean()),
        "core_cpu_by_rounds": core_by_rounds,
        "per_step_us": rows,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
