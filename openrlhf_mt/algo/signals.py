"""Per-task signals the weighters read, computed the same way in every engine (MTGRPO_SPEC.md §2).

    batch_accuracy(groups, correct=1.0) -> dict[str, float]
        fraction of a task's rollouts with reward >= correct, over the generated (pre-filter) groups; the
        sampler already reports it per generation round as BatchInfo.accuracy_per_round
    RewardEMA(tasks, decay=0.5)       J_k: .update(accuracy) once per generation round, .values()
    per_task_improvement(task_of_sample, objective_before, objective_after, kept=None)
        I_k: sum over the task's samples of (after - before), the per-sample clipped surrogate objective
        recorded before a PPO mini-batch's optimizer step and recomputed (no grad) after it
    improvement_sample(task_of_sample, fraction, rng) -> ImprovementSample
        which samples to recompute "after" for when only a share of them is (`algo.improvement_fraction`),
        and the weights that keep I_k's expectation; .rows_per_part(sizes) splits them by micro-batch; pass
        it to per_task_improvement with the kept samples' "after" values
    per_task_mean_abs_advantage(task_of_sample, advantages) -> dict[str, float]   SEC's mean |A| per task
    task_stats(reward, improvement=None, mean_abs_advantage=None) -> dict[str, TaskStats]

Per-sample arrays may be numpy arrays, lists or torch tensors (read as float64 on the CPU). Results only
hold tasks that occur in the input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openrlhf_mt.algo.filters import summarize_rewards
from openrlhf_mt.algo.types import Group, TaskStats, check_state_tasks


def batch_accuracy(groups: Sequence[Group], correct: float = 1.0) -> dict[str, float]:
    """J_k's input: each task's fraction of rollouts with reward >= `correct` (pre-filter batch)."""
    summary = summarize_rewards([g.rewards for g in groups], correct)
    names, codes = encode_tasks([g.task for g in groups])
    num_correct = np.bincount(codes, weights=summary.num_correct, minlength=len(names))
    num_rollouts = np.bincount(codes, weights=summary.sizes, minlength=len(names))
    return dict(zip(names, (num_correct / num_rollouts).tolist(), strict=True))


class RewardEMA:
    """J_k, the released code's reward level: J_k <- decay * J_k + (1 - decay) * accuracy_k.

    Like the released code, every J_k starts at 0 (not at its first observation; so IWU's lam * J_k term
    starts small and grows over the first few rounds), and only the tasks present in an update move. Call
    update() once per generation round: `for a in info.accuracy_per_round: reward_ema.update(a)`.
    """

    def __init__(self, tasks: Sequence[str], decay: float = 0.5) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"RewardEMA: decay must be in [0, 1), got {decay}")
        self.tasks = tuple(tasks)
        self.decay = float(decay)
        self._values = dict.fromkeys(self.tasks, 0.0)

    def update(self, accuracy: Mapping[str, float]) -> dict[str, float]:
        """Subroutine 1 input J: EMA (decay 0.5) of the training-batch accuracy, for the tasks given."""
        for task, value in accuracy.items():
            if task not in self._values:
                raise ValueError(f"RewardEMA: accuracy for unknown task {task!r}; tasks: {list(self.tasks)}")
            if not math.isfinite(value):
                raise ValueError(f"RewardEMA: accuracy of task {task!r} is {value}; must be finite")
            self._values[task] = self.decay * self._values[task] + (1 - self.decay) * float(value)
        return self.values()

    def values(self) -> dict[str, float]:
        return dict(self._values)

    def state_dict(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "values": [self._values[t] for t in self.tasks]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_state_tasks("RewardEMA", state["tasks"], self.tasks)
        self._values = dict(zip(self.tasks, map(float, state["values"]), strict=True))


def as_float64(values: Any, name: str) -> np.ndarray:
    """A 1-D float64 numpy copy of a list, numpy array or torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one value per sample (1-D), got shape {array.shape}")
    return array


def encode_tasks(task_of_sample: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct task names (sorted) and each sample's index into them."""
    names = sorted(set(task_of_sample))
    index = {task: i for i, task in enumerate(names)}
    codes = np.fromiter(map(index.__getitem__, task_of_sample), dtype=np.int64, count=len(task_of_sample))
    return names, codes


def per_task_sum_and_count(task_of_sample: Sequence[str], values: np.ndarray) -> dict[str, tuple[float, int]]:
    """(sum of values, number of samples) per task that occurs in `task_of_sample`."""
    if len(task_of_sample) != len(values):
        raise ValueError(
            f"{len(task_of_sample)} task names for {len(values)} per-sample values; need one each"
        )
    names, codes = encode_tasks(task_of_sample)
    sums = np.bincount(codes, weights=values, minlength=len(names)).tolist()
    counts = np.bincount(codes, minlength=len(names)).tolist()
    return {task: (s, c) for task, s, c in zip(names, sums, counts, strict=True)}


def per_task_improvement(
    task_of_sample: Sequence[str],
    objective_before: Any,
    objective_after: Any,
    kept: ImprovementSample | None = None,
) -> dict[str, float]:
    """Subroutine 1 input I: I_k = sum over task k's samples of (objective_after - objective_before).

    With `kept` (from improvement_sample), `objective_after` holds only the kept samples' values, in
    kept.indices order, and each kept sample's difference counts kept.weights times."""
    before = as_float64(objective_before, "objective_before")
    after = as_float64(objective_after, "objective_after")
    if kept is not None:
        before, task_of_sample = before[kept.indices], [task_of_sample[i] for i in kept.indices]
    if before.shape != after.shape:
        raise ValueError(f"objective_before has {before.shape[0]} samples, objective_after {after.shape[0]}")
    difference = after - before if kept is None else (after - before) * kept.weights
    return {task: s for task, (s, _) in per_task_sum_and_count(task_of_sample, difference).items()}


@dataclass(frozen=True)
class ImprovementSample:
    """The samples whose "after" objective is recomputed (mini-batch order) and what each one stands for."""

    indices: np.ndarray  # positions in the mini-batch, ascending
    weights: np.ndarray  # N_k / m_k for a sample of task k: m_k of its N_k samples were drawn

    def rows_per_part(self, sizes: Sequence[int]) -> list[np.ndarray]:
        """The kept rows of each consecutive part of the mini-batch (micro-batches of these sizes), each
        counted from its part's first row: what an engine re-forwards."""
        bounds = np.cumsum([0, *sizes])
        cuts = np.searchsorted(self.indices, bounds)
        return [
            self.indices[a:b] - first for a, b, first in zip(cuts[:-1], cuts[1:], bounds[:-1], strict=True)
        ]


def improvement_sample(
    task_of_sample: Sequence[str], fraction: float, rng: np.random.Generator
) -> ImprovementSample:
    """I_k at a share of the re-forward's cost: ceil(fraction * N_k) of each task's N_k samples.

    Drawn uniformly without replacement within each task, each weighted N_k / m_k: the weighted sum is an
    unbiased estimate of the task's full sum, and every task in the mini-batch keeps at least one sample
    (so its I_k is never silently 0). fraction 1 selects every sample at weight 1 (the released code)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"improvement_sample: fraction must be in (0, 1], got {fraction}")
    names, codes = encode_tasks(task_of_sample)
    weight_of_sample = np.zeros(len(codes))
    for code in range(len(names)):
        members = np.flatnonzero(codes == code)
        drawn = math.ceil(round(fraction * len(members), 9))  # round: 0.3 * 10 is 3.0000000000000004
        picked = members if drawn == len(members) else rng.choice(members, size=drawn, replace=False)
        weight_of_sample[picked] = len(members) / drawn
    indices = np.flatnonzero(weight_of_sample)
    return ImprovementSample(indices, weight_of_sample[indices])


def per_task_mean_abs_advantage(task_of_sample: Sequence[str], advantages: Any) -> dict[str, float]:
    """SEC bandit input: mean |A| over task k's samples."""
    magnitudes = np.abs(as_float64(advantages, "advantages"))
    return {task: s / c for task, (s, c) in per_task_sum_and_count(task_of_sample, magnitudes).items()}


def task_stats(
    reward: Mapping[str, float],
    improvement: Mapping[str, float] | None = None,
    mean_abs_advantage: Mapping[str, float] | None = None,
) -> dict[str, TaskStats]:
    """TaskStats for every task in `reward`; a task without improvement / mean |A| gets 0 (as in the code)."""
    improvement, mean_abs_advantage = improvement or {}, mean_abs_advantage or {}
    for name, signal in (("improvement", improvement), ("mean_abs_advantage", mean_abs_advantage)):
        if not signal.keys() <= reward.keys():
            extra = sorted(set(signal) - set(reward))
            raise ValueError(f"task_stats: {name} given for tasks {extra} that have no reward")
    return {
        task: TaskStats(
            float(value), float(improvement.get(task, 0.0)), float(mean_abs_advantage.get(task, 0.0))
        )
        for task, value in reward.items()
    }
