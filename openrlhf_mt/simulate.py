"""`openrlhf-mt simulate`: MT-GRPO's batch building on synthetic tasks, no model (a few seconds on a CPU).

Each synthetic task has a fixed probability that a prompt's group is zero-gradient (all rollouts right or all
wrong), as real tasks do (MTGRPO_SPEC.md §7: ARC ≈ 0.46-0.88, countdown ≈ 0.34-0.62, zebra ≈ 0.01-0.32).
The same weights are fed to the ratio-preserving sampler (MT-GRPO) and to the task-blind DAPO refill, and
the table shows each task's share of the trained batches: RPS keeps it at the weight, DAPO drifts toward
the tasks whose groups survive the filter.

    openrlhf-mt simulate [--steps 200] [--tasks 3] [--weighter uniform|static|iwu] [--weights 0.5,0.3,0.2]
                         [--zero-gradient-rates 0.7,0.4,0.1] [--batch-size 256] [--max-rounds 10] [--seed 0]

With --weighter iwu (Adam, as the released code) the weights move: J_k is the EMA of the task's accuracy in
each generation round, and I_k is a synthetic improvement, gain * (task's share of the batch) * (1 - J_k)
plus noise: tasks that get trained on improve, the more so the further they are from solved. Hard tasks
(many zero-gradient groups) are mostly all-wrong, so they have the lowest J_k and IWU raises their weight;
under DAPO they also get fewer samples, hence less improvement, and IWU pushes their weight higher still.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from openrlhf_mt.algo.sampler import BatchInfo, RatioPreservingSampler
from openrlhf_mt.algo.signals import RewardEMA, task_stats
from openrlhf_mt.algo.types import Group
from openrlhf_mt.algo.weights import make_weighter


@dataclass
class SyntheticTasks:
    """A `generate(counts) -> list[Group]` for the sampler, with no model behind it.

    A group of task k is zero-gradient with probability zero_gradient_rates[k]: then all its rollouts are
    correct with probability all_correct_share[k] (default 0.5), else all wrong. Otherwise between 1 and
    N - 1 rollouts (uniform) are correct. Rewards are 1.0 (correct) or 0.0.
    """

    zero_gradient_rates: dict[str, float]
    rollouts: int = 8
    seed: int = 0
    all_correct_share: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rollouts < 2:
            raise ValueError(f"SyntheticTasks: need at least 2 rollouts per prompt, got {self.rollouts}")
        for task, rate in self.zero_gradient_rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(
                    f"SyntheticTasks: zero-gradient rate of {task!r} must be in [0, 1], got {rate}"
                )
        self.rng = np.random.default_rng(self.seed)
        self.reward_rows = [(1.0,) * c + (0.0,) * (self.rollouts - c) for c in range(self.rollouts + 1)]

    def __call__(self, counts: dict[str, int]) -> list[Group]:
        groups = []
        for task, count in counts.items():
            zero_gradient = self.rng.random(count) < self.zero_gradient_rates[task]
            all_correct = self.rng.random(count) < self.all_correct_share.get(task, 0.5)
            num_correct = np.where(
                zero_gradient, all_correct * self.rollouts, self.rng.integers(1, self.rollouts, count)
            )
            groups += [Group(task, self.reward_rows[c]) for c in num_correct.tolist()]
        return groups


@dataclass
class SimulationResult:
    """Per-task means over the steps of one run, and the per-step BatchInfo records."""

    method: str
    mean_weight: dict[str, float]
    mean_share: dict[str, float]
    infos: list[BatchInfo]
    seconds: float

    @property
    def mean_rounds(self) -> float:
        return float(np.mean([info.rounds for info in self.infos]))

    @property
    def mean_shortfall(self) -> float:
        return float(np.mean([info.shortfall for info in self.infos]))

    @property
    def prompts_per_step(self) -> float:
        return float(np.mean([sum(info.generated.values()) for info in self.infos]))


def simulate(
    zero_gradient_rates: dict[str, float],
    steps: int,
    batch_size: int = 256,
    rollouts: int = 8,
    preserve_ratio: bool = True,
    weighter: str = "uniform",
    static_weights: dict[str, float] | None = None,
    max_rounds: int = 10,
    improvement_gain: float = 0.2,
    seed: int = 0,
    progress: bool = False,
) -> SimulationResult:
    """Run `steps` sampler steps on synthetic tasks and average the weights and realised shares."""
    tasks = list(zero_gradient_rates)
    kwargs: dict = {"weights": static_weights} if weighter == "static" else {}
    if weighter == "iwu":  # the released code's optimizer; plain SGD at lr 0.025 barely moves in 200 steps
        kwargs = {"optimizer": "adam", "weight_decay": 1e-4}
    task_weighter = make_weighter(weighter, tasks, **kwargs)
    sampler = RatioPreservingSampler(
        tasks,
        batch_size,
        max_rounds=max_rounds,
        filter_mode="lenient",
        preserve_ratio=preserve_ratio,
        seed=seed,
    )
    generate = SyntheticTasks(
        zero_gradient_rates, rollouts, seed + 1, all_correct_shares(zero_gradient_rates)
    )
    reward_level = RewardEMA(tasks)
    noise = np.random.default_rng(seed + 2)
    weight_sum, share_sum, infos = np.zeros(len(tasks)), np.zeros(len(tasks)), []
    method = "MT-GRPO (RPS)" if preserve_ratio else "DAPO refill"
    step_iter = range(steps)
    if progress:
        from tqdm import tqdm

        step_iter = tqdm(step_iter, desc=f"simulate {method}", unit="step", leave=False)
    start = time.perf_counter()
    for _ in step_iter:
        weights = task_weighter.weights()
        _, info = sampler.build_batch(weights, generate)
        for accuracy in info.accuracy_per_round:  # J_k: EMA of the accuracy of each generation round
            reward_level.update(accuracy)
        rewards = reward_level.values()
        improvement = {
            t: improvement_gain
            * info.realised_share[t]
            * (1 - rewards[t])
            * (1 + 0.5 * noise.standard_normal())
            for t in tasks
        }
        task_weighter.update(task_stats(rewards, improvement))
        weight_sum += [weights[t] for t in tasks]
        share_sum += [info.realised_share[t] for t in tasks]
        infos.append(info)
    return SimulationResult(
        method=method,
        mean_weight=dict(zip(tasks, (weight_sum / steps).tolist(), strict=True)),
        mean_share=dict(zip(tasks, (share_sum / steps).tolist(), strict=True)),
        infos=infos,
        seconds=time.perf_counter() - start,
    )


PAPER_LIKE_TASKS = ("arc", "countdown", "zebra")  # zero-gradient rates mid-training: MTGRPO_SPEC.md §7


def default_rates(num_tasks: int) -> dict[str, float]:
    """Zero-gradient rates spread over 0.7-0.15 (hard to easy); the paper's families' names for 3 tasks."""
    rates = np.linspace(0.7, 0.15, num_tasks) if num_tasks > 1 else [0.5]
    names = PAPER_LIKE_TASKS if num_tasks == 3 else [f"task-{k + 1}" for k in range(num_tasks)]
    return {name: round(float(r), 3) for name, r in zip(names, rates, strict=True)}


def all_correct_shares(rates: dict[str, float]) -> dict[str, float]:
    """Tasks with many zero-gradient groups are the hard ones: mostly all wrong (share 0.2 .. 0.8)."""
    low, high = min(rates.values()), max(rates.values())
    return {t: 0.8 - 0.6 * (r - low) / (high - low) if high > low else 0.5 for t, r in rates.items()}


def parse_floats(parser: argparse.ArgumentParser, text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        parser.error(f"{flag}: expected comma-separated numbers, got {text!r}")


def format_table(rates: dict[str, float], results: Sequence[SimulationResult]) -> str:
    header = f"{'task':<12} {'zero-grad':>9}"
    for result in results:
        header += f" | {result.method + ' weight':>20} {'share':>6} {'share-weight':>12}"
    lines = [header, "-" * len(header)]
    for task, rate in rates.items():
        line = f"{task:<12} {rate:>9.2f}"
        for result in results:
            weight, share = result.mean_weight[task], result.mean_share[task]
            line += f" | {weight:>20.3f} {share:>6.3f} {share - weight:>+12.3f}"
        lines.append(line)
    lines.append("-" * len(header))
    for result in results:
        gap = np.mean([abs(result.mean_share[t] - result.mean_weight[t]) for t in rates])
        lines.append(
            f"{result.method:<14} mean |share - weight| {gap:.3f} · rounds/step {result.mean_rounds:.2f} · "
            f"prompts/step {result.prompts_per_step:.0f} · shortfall/step {result.mean_shortfall:.1f} · "
            f"{1e3 * result.seconds / len(result.infos):.1f} ms/step"
        )
    lines.append(
        "share: the task's mean fraction of the trained batch. RPS holds it at the weight; DAPO's\n"
        "task-blind refill over-represents the tasks whose groups survive the zero-gradient filter."
    )
    return "\n".join(lines)


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="sampler steps per method (default 200)")
    parser.add_argument("--tasks", type=int, default=3, help="number of synthetic tasks (default 3)")
    parser.add_argument(
        "--zero-gradient-rates", help="comma-separated zero-gradient probability per task (overrides --tasks)"
    )
    parser.add_argument("--weighter", choices=["uniform", "static", "iwu"], default="uniform")
    parser.add_argument("--weights", help="comma-separated static weights (implies --weighter static)")
    parser.add_argument("--batch-size", type=int, default=256, help="B, prompts per batch (default 256)")
    parser.add_argument("--rollouts", type=int, default=8, help="N, rollouts per prompt (default 8)")
    parser.add_argument("--max-rounds", type=int, default=10, help="N_rs, generation rounds cap (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="PNG", help="also draw weight vs realised share per task into PNG")
    args = parser.parse_args(argv)

    if args.tasks < 1:
        parser.error(f"--tasks must be >= 1, got {args.tasks}")
    rates = default_rates(args.tasks)
    if args.zero_gradient_rates:
        values = parse_floats(parser, args.zero_gradient_rates, "--zero-gradient-rates")
        rates = dict(zip(default_rates(len(values)), values, strict=True))
    static_weights = None
    if args.weights:
        values = parse_floats(parser, args.weights, "--weights")
        if len(values) != len(rates):
            parser.error(f"--weights has {len(values)} numbers for {len(rates)} tasks {list(rates)}")
        static_weights, args.weighter = dict(zip(rates, values, strict=True)), "static"
    elif args.weighter == "static":
        parser.error("--weighter static needs --weights")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")

    print(
        f"{len(rates)} synthetic tasks, B={args.batch_size}, N={args.rollouts}, {args.steps} steps, "
        f"weights: {args.weighter}, lenient filter, M_os=3, N_rs={args.max_rounds}, seed {args.seed}"
    )
    try:
        results = [
            simulate(
                rates,
                args.steps,
                batch_size=args.batch_size,
                rollouts=args.rollouts,
                preserve_ratio=preserve_ratio,
                weighter=args.weighter,
                static_weights=static_weights,
                max_rounds=args.max_rounds,
                seed=args.seed,
                progress=True,
            )
            for preserve_ratio in (True, False)
        ]
    except ValueError as error:
        parser.error(str(error))
    print(format_table(rates, results))
    if args.plot:
        plot_shares(rates, results, args.plot)
        print(f"plot: {args.plot}")
    return 0


def plot_shares(rates: dict[str, float], results: Sequence[SimulationResult], path: str) -> None:
    """Bars per task: each method's mean weight (outline) and realised share of the batch (filled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.arange(len(rates))
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(rates), 3.6))
    for i, result in enumerate(results):
        x = positions + (i - (len(results) - 1) / 2) * width
        ax.bar(x, [result.mean_share[t] for t in rates], width, label=f"{result.method}: share", alpha=0.8)
        ax.bar(x, [result.mean_weight[t] for t in rates], width, fill=False, edgecolor="black", linewidth=1)
    ax.set_xticks(positions, [f"{t}\nzero-grad {r:.2f}" for t, r in rates.items()])
    ax.set_ylabel("fraction of the trained batch")
    ax.set_title("realised task shares (bars) vs task weights (outlines)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
