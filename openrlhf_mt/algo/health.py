"""Run health the engines count and report: tasks that give no learning signal for many steps in a row.

    streaks = ZeroGradientStreaks(tasks, warn_after=10)
    newly = streaks.observe(zero_gradient_rate)   # task -> this step's rate, for the tasks that generated
    # newly: the tasks whose streak reached warn_after at this step; the engine logs each once, with its cause
    streaks.values()                               # task -> steps in a row with every group zero-gradient
    streaks.state_dict() / streaks.load_state_dict(sd)

A task whose groups are all zero-gradient (every rollout wrong, or every rollout right) trains on nothing:
the sampler's refill cannot help it, and MT-GRPO's weights keep moving towards it if it is also the worst
task. The run goes on (the weights stay a distribution; the batch is short, never stuck); the streak is
what tells the user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openrlhf_mt.algo.types import check_state_tasks

ZERO_GRADIENT_STREAK_WARNING = 10


class ZeroGradientStreaks:
    def __init__(self, tasks: Sequence[str], warn_after: int = ZERO_GRADIENT_STREAK_WARNING) -> None:
        if warn_after < 1:
            raise ValueError(f"ZeroGradientStreaks: warn_after must be >= 1, got {warn_after}")
        self.tasks = tuple(tasks)
        self.warn_after = warn_after
        self._streaks = dict.fromkeys(self.tasks, 0)

    def observe(self, zero_gradient_rate: Mapping[str, float]) -> list[str]:
        """One step: a task with rate 1 extends its streak, any other rate ends it; tasks absent this step
        (they generated nothing) keep theirs. Returns the tasks whose streak just reached `warn_after`."""
        reached = []
        for task, rate in zero_gradient_rate.items():
            if task not in self._streaks:
                raise ValueError(f"ZeroGradientStreaks: rate for unknown task {task!r}; tasks: {self.tasks}")
            self._streaks[task] = self._streaks[task] + 1 if rate >= 1.0 else 0
            if self._streaks[task] == self.warn_after:
                reached.append(task)
        return reached

    def values(self) -> dict[str, int]:
        return dict(self._streaks)

    def state_dict(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "streaks": [self._streaks[t] for t in self.tasks]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_state_tasks("ZeroGradientStreaks", state["tasks"], self.tasks)
        self._streaks = dict(zip(self.tasks, map(int, state["streaks"]), strict=True))
