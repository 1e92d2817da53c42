"""Scoring that never stops a run: both engines score every response through a `ScoreGuard`.

A task's reward function may be third-party or plug-in code. If it raises, or returns a value that is not a
finite number (NaN, inf, a string), the response scores 0 instead, the event is counted per task and cause,
and the first event of each (task, cause) is logged with its message, so a run that lasts days neither dies
of one bad reward nor fills its log with the same warning. The library's own scorers never raise and
always return 1, 0.1 or 0 (tests/tasks/test_fuzz_scoring.py, benchmarks/bench_fuzz.py): through the guard
their rewards are unchanged.

    guard = ScoreGuard()
    reward = guard.score(task, response, label, train=True)      # 0.0 where the task failed
    reward = guard.try_score(task, response, label, train=True)  # None where the task failed
    guard.counts          # {"reward_raised/<task>": n, "reward_non_finite/<task>": n}
    guard.state_dict() / guard.load_state_dict(state)   # the counts, for an exact resume of the metrics
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from openrlhf_mt.tasks.base import Task

logger = logging.getLogger("openrlhf_mt.tasks")

CAUSES = ("reward_raised", "reward_non_finite", "bad_sample")  # the last: the OpenRLHF reward function


class ScoreGuard:
    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log
        self.counts: Counter[str] = Counter()
        self.logged: set[str] = set()

    def score(self, task: Task, response: str, label: str | Mapping[str, Any], train: bool = True) -> float:
        """`task.score(response, label, train)`, or 0.0 where it raised or was not finite (counted)."""
        reward = self.try_score(task, response, label, train)
        return 0.0 if reward is None else reward

    def try_score(
        self, task: Task, response: str, label: str | Mapping[str, Any], train: bool = True
    ) -> float | None:
        """`task.score(response, label, train)` as a float, or None (counted, logged once) if it failed."""
        try:
            value = task.score(response, label, train)
        except Exception as error:  # a plug-in's bug must not end a run: the response scores 0, counted
            self.record(
                task.name, "reward_raised", f"its reward function raised {type(error).__name__}: {error}"
            )
            return None
        try:
            reward = float(value)
        except (TypeError, ValueError):
            reward = math.nan
        if not math.isfinite(reward):
            self.record(task.name, "reward_non_finite", f"its reward function returned {value!r:.80}")
            return None
        return reward

    def record(self, task: str, cause: str, message: str) -> None:
        """Count one failed sample of `task` (cause: one of CAUSES); log the first of each task and cause."""
        key = f"{cause}/{task}"
        self.counts[key] += 1
        if key not in self.logged:
            self.logged.add(key)
            self.log.warning(
                "task %s: %s; the sample scores 0 (counted as faults/%s; logged once per task and cause)",
                task,
                message[:300],
                key,
            )

    def state_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.counts = Counter({key: int(count) for key, count in state.items()})
