"""When a task weighter steps, and on which signals: the one schedule both engines follow (MTGRPO_SPEC.md §2).

    updates = WeightUpdates(weighter, reward, every="minibatch")  # or "step" (the paper's text)
    updates.learns              # False for uniform / static: the engine has nothing to report
    updates.needs_improvement   # True for IWU: the engine measures I_k (a no-grad re-forward per mini-batch)
    learns(name), needs_improvement(name)   # the same two answers by weighter name, before one exists
    # after each PPO mini-batch's optimizer step, per task over that mini-batch's samples:
    updates.observe_minibatch(improvement, abs_advantage_sum, sample_count)
    # after the training step's last mini-batch:
    updates.end_step()

`reward()` returns J_k for every task (RewardEMA values, or the latest eval accuracy); it is called when an
update happens, and only then.
The rules, whichever engine calls:
  iwu, strict, reg  one step per mini-batch (every="minibatch") or per training step (every="step"; I_k then
                    sums the step's mini-batches). Every task is passed; a task without samples gets I_k = 0,
                    as in the released code.
  sec               one bandit step per training step, whatever `every` says, on each task's mean |Â| over
                    the samples it trained on in that step (sample-weighted across mini-batches, and across
                    data-parallel ranks when the engine sums them first); only tasks that had samples are
                    passed, and the weighter's `absent_arms` says what the others do (released: decay).
  uniform, static   never.
Nothing is pending at a step boundary, so a checkpoint taken between steps needs no state from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from openrlhf_mt.algo.signals import task_stats
from openrlhf_mt.algo.weights import WEIGHTERS, TaskWeighter

SCHEDULES = ("minibatch", "step")


def learns(weighter: str) -> bool:
    """Whether the training signals can move the weights of weighter `weighter` (all but uniform, static)."""
    return bool(WEIGHTERS[weighter].reads)


def needs_improvement(weighter: str) -> bool:
    """Whether weighter `weighter` reads I_k, so the engine must measure it (IWU only)."""
    return "improvement" in WEIGHTERS[weighter].reads


class WeightUpdates:
    def __init__(
        self, weighter: TaskWeighter, reward: Callable[[], Mapping[str, float]], every: str = "minibatch"
    ) -> None:
        if every not in SCHEDULES:
            raise ValueError(f"WeightUpdates: every must be one of {', '.join(SCHEDULES)}, got {every!r}")
        self.weighter, self.reward = weighter, reward
        self.every = weighter.update_every or every
        self.learns = learns(weighter.name)
        self.needs_improvement = needs_improvement(weighter.name)
        self.num_updates = 0
        self.reset()

    def reset(self) -> None:
        self.improvement = dict.fromkeys(self.weighter.tasks, 0.0)
        self.abs_advantage_sum = dict.fromkeys(self.weighter.tasks, 0.0)
        self.sample_count = dict.fromkeys(self.weighter.tasks, 0)

    def observe_minibatch(
        self,
        improvement: Mapping[str, float],
        abs_advantage_sum: Mapping[str, float],
        sample_count: Mapping[str, int],
    ) -> None:
        """One PPO mini-batch's per-task signals (summed I_k, summed |Â| and sample counts)."""
        if not self.learns:
            return
        for signal, values in (
            (self.improvement, improvement),
            (self.abs_advantage_sum, abs_advantage_sum),
            (self.sample_count, sample_count),
        ):
            for task, value in values.items():
                if task not in signal:
                    raise ValueError(f"WeightUpdates: signal for unknown task {task!r}")
                signal[task] += value
        if self.every == "minibatch":
            self.update()

    def end_step(self) -> None:
        if self.learns and self.every == "step":
            self.update()
        self.reset()

    def update(self) -> None:
        """Subroutine 1 (or the baseline's rule) on the signals gathered since the last update."""
        reward = self.reward()
        if "mean_abs_advantage" in self.weighter.reads:  # the bandit: only pulled arms move
            trained = [t for t in self.weighter.tasks if self.sample_count[t] > 0]
            mean_abs_advantage = {t: self.abs_advantage_sum[t] / self.sample_count[t] for t in trained}
            stats = task_stats({t: reward[t] for t in trained}, mean_abs_advantage=mean_abs_advantage)
        else:
            stats = task_stats(reward, self.improvement if self.needs_improvement else None)
        self.weighter.update(stats)
        self.num_updates += 1
        self.reset()
