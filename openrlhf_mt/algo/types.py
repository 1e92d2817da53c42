"""The two records that cross the engine -> core boundary.

    Group(task, rewards, payload=None)   one prompt's N rollouts, as the engine scored them
    TaskStats(reward, improvement=0.0, mean_abs_advantage=0.0)   one task's signals for a weighter update

Both are plain frozen dataclasses: the core reads `task` and `rewards`, and carries `payload` (token ids,
responses, log-probs: whatever the engine needs to train on the group) through untouched.

    check_state_tasks(owner, saved_tasks, tasks)   the resume check every stateful core object shares
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Group:
    """One prompt of task `task` and the rewards of its N rollouts (stored as a tuple of floats)."""

    task: str
    rewards: Sequence[float]
    payload: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        rewards = tuple(map(float, self.rewards))
        if not rewards:
            raise ValueError(
                f"Group of task {self.task!r} has no rewards; a group needs at least one rollout"
            )
        if not all(map(math.isfinite, rewards)):
            raise ValueError(f"Group of task {self.task!r} has a non-finite reward: {rewards}")
        object.__setattr__(self, "rewards", rewards)


@dataclass(frozen=True, slots=True)
class TaskStats:
    """One task's signals for a weight update (MTGRPO_SPEC.md §2).

    reward:             J_k, the task's reward level (IWU, strict, reg); e.g. `signals.RewardEMA` values.
    improvement:        I_k, summed (objective_after - objective_before) over the task's samples (IWU);
                        see `signals.per_task_improvement`.
    mean_abs_advantage: mean |A| over the task's samples (SEC bandit); see
                        `signals.per_task_mean_abs_advantage`.
    """

    reward: float
    improvement: float = 0.0
    mean_abs_advantage: float = 0.0


def check_state_tasks(owner: str, saved_tasks: Iterable[str], tasks: Sequence[str]) -> None:
    """Refuse to resume `owner` from a state_dict saved for other tasks (names and order must match)."""
    if list(saved_tasks) != list(tasks):
        raise ValueError(f"{owner}: state_dict is for tasks {list(saved_tasks)}, this run has {list(tasks)}")
