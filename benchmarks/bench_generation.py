"""Generation cost of MT-GRPO's batch building: groups generated per ideal group, rounds, shares.

    python benchmarks/bench_generation.py [--steps 300]

The ratio-preserving sampler on synthetic tasks (openrlhf_mt.simulate.SyntheticTasks: each task's group is
zero-gradient with a fixed probability), no model: the released request sizing (M_os x B prompts per
round) against adaptive sizing (request="adaptive", openrlhf_mt/algo/request.py), each with and without
reusing surplus accepted groups for one step (reuse_max_age=1). The ideal is sum_k n_k / (1 - rate_k) with
the tasks' true rates: what an oracle that knows each acceptance rate would have to generate on average.
Columns: groups generated / ideal, generation rounds per step, steps short of B groups, the mean over
tasks of |mean realised share - weight| (ratio preservation; the per-step shares also carry the
Multinomial(B, z) draw of the quotas, by design), groups reused per step and their mean age (off-policy
steps), and the sampler's time per step with the synthetic generate() inside it (the machine is shared:
indicative only). The first 10 steps (rho settling) are left out.

Writes benchmarks/results/generation.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.simulate import SyntheticTasks

RESULTS = Path(__file__).resolve().parent / "results"
WARMUP_STEPS = 10

# zero-gradient rates: the paper's Exp. 1 mid-training values (MTGRPO_SPEC.md §7), a wide and a flat
# spread, and 9 tasks of graded difficulty with Exp. 2's batch and round cap
SCENARIOS = {
    "exp1-like, 3 tasks": dict(
        rates=[0.7, 0.5, 0.2], weights=[0.5, 0.3, 0.2], batch=32, rollouts=72, rounds=10
    ),
    "wide spread, 3 tasks": dict(
        rates=[0.9, 0.5, 0.05], weights=[1 / 3] * 3, batch=64, rollouts=8, rounds=10
    ),
    "flat, 3 tasks": dict(rates=[0.3, 0.3, 0.3], weights=[1 / 3] * 3, batch=64, rollouts=8, rounds=10),
    "exp2-like, 9 tasks": dict(
        rates=np.linspace(0.05, 0.85, 9).round(2).tolist(),
        weights=[1 / 9] * 9,
        batch=256,
        rollouts=8,
        rounds=2,
    ),
}
MODES = {
    "released (M_os x B)": dict(request="oversample", reuse_max_age=0),
    "released + reuse": dict(request="oversample", reuse_max_age=1),
    "adaptive": dict(request="adaptive", reuse_max_age=0),
    "adaptive + reuse": dict(request="adaptive", reuse_max_age=1),
}


def run(scenario: dict, mode: dict, steps: int, seed: int = 0) -> dict[str, float]:
    tasks = [f"task{k}" for k in range(len(scenario["rates"]))]
    rates = dict(zip(tasks, scenario["rates"], strict=True))
    weights = dict(zip(tasks, scenario["weights"], strict=True))
    sampler = RatioPreservingSampler(
        tasks, scenario["batch"], filter_mode="lenient", max_rounds=scenario["rounds"], seed=seed, **mode
    )
    generate = SyntheticTasks(rates, rollouts=scenario["rollouts"], seed=seed)
    infos, core_seconds = [], 0.0
    for _ in range(steps):
        start = time.perf_counter()
        infos.append(sampler.build_batch(weights, generate)[1])
        core_seconds += time.perf_counter() - start
    infos = infos[WARMUP_STEPS:]
    generated = sum(sum(info.generated.values()) for info in infos)
    ideal = sum(sum(info.desired[t] / (1 - rates[t]) for t in tasks) for info in infos)
    mean_share = {t: np.mean([info.realised_share[t] for info in infos]) for t in tasks}
    deviation = np.mean([abs(mean_share[t] - weights[t]) for t in tasks])
    return {
        "generated_per_ideal": generated / ideal,
        "rounds": float(np.mean([info.rounds for info in infos])),
        "short_steps": float(np.mean([info.shortfall > 0 for info in infos])),
        "share_deviation": float(deviation),
        "reused_per_step": float(np.mean([info.reused for info in infos])),
        "reused_mean_age": float(np.mean([info.reused_mean_age for info in infos if info.reused] or [0.0])),
        "core_ms_per_step": 1000 * core_seconds / steps,  # includes the synthetic generate()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    results = {
        name: {mode: run(s, m, args.steps) for mode, m in MODES.items()} for name, s in SCENARIOS.items()
    }
    machine = f"{os.cpu_count()}-core CPU, no GPU ({platform.machine()}, Python {platform.python_version()})"
    header = (
        "| scenario | sizing | generated / ideal | rounds / step | short steps | share bias "
        "| reused / step (age) | sampler ms / step |"
    )
    lines = [header, "|" + "---|" * 8]
    for name, by_mode in results.items():
        for mode, r in by_mode.items():
            lines.append(
                f"| {name} | {mode} | {r['generated_per_ideal']:.3f} | {r['rounds']:.2f} | "
                f"{100 * r['short_steps']:.0f} % | {r['share_deviation']:.4f} | "
                f"{r['reused_per_step']:.1f} ({r['reused_mean_age']:.2f}) | {r['core_ms_per_step']:.2f} |"
            )
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generation.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "steps": args.steps,
                "scenarios": SCENARIOS,
                "modes": MODES,
                "results": results,
            },
            indent=1,
        )
    )
    command = f"python benchmarks/bench_generation.py --steps {args.steps}"
    (RESULTS / "generation.md").write_text(
        f"# Generation cost of the batch building (`{command}`)\n\n"
        f"Machine: {machine}. Synthetic tasks, no model; the first {WARMUP_STEPS} steps left out. "
        "Ideal: sum_k n_k / (1 - rate_k) with the true rates.\n\n" + table + "\n"
    )


if __name__ == "__main__":
    main()
