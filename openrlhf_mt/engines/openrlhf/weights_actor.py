"""The task weights of a run, in one named Ray actor that every other actor can reach.

    actor = TaskWeightActor.spawn(tasks, algo)     # named, get-if-exists; 0.1 CPU, no GPU
    z = ray.get(actor.weights.remote())

Who talks to it:
  - the samples generator (trainer actor, or the async generator actor): reads the weights before each
    batch, then `record_batch(metrics, generator_state, accuracy_per_round)` once the batch is built;
  - the policy actor's rank 0: `observe_training(improvement, abs_advantage_sum, sample_count)` after
    each PPO mini-batch's optimizer step (IWU's I_k; SEC's |A| sums and counts), summed over the ranks;
  - the trainer: `pop_batch()` for the batch it trains (same order as recorded, so in the async
    path the metrics and generator state stay with their batch), `end_step()`, `observe_eval(...)`,
    and `state_dict()` / `load_state_dict()` for OpenRLHF's checkpoints.

When the weighter steps and on what is the core's `algo.updates.WeightUpdates`, as in the local engine.
The signal source (`algo.signal_source`) decides what J_k is (MTGRPO_SPEC.md §2):
  batch: the EMA (decay j_ema_decay) of the task's pre-filter batch accuracy, one EMA step per
         generation round (released code);
  eval:  the task's latest eval accuracy (0 until its first eval).
I_k is the summed surrogate improvement from the policy actor either way.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import ray

from openrlhf_mt.algo.signals import RewardEMA
from openrlhf_mt.algo.updates import WeightUpdates
from openrlhf_mt.algo.weights import make_weighter
from openrlhf_mt.config import AlgoConfig

ACTOR_NAME = "openrlhf_mt_task_weights"


class TaskWeightActor:
    def __init__(self, tasks: Sequence[str], algo: AlgoConfig) -> None:
        self.tasks = list(tasks)
        self.algo = algo
        self.weighter = make_weighter(algo.weighter, self.tasks, **algo.weighter_kwargs())
        self.reward_ema = RewardEMA(self.tasks, decay=algo.j_ema_decay)
        self.eval_accuracy: dict[str, float] = {}
        self.updates = WeightUpdates(self.weighter, self.reward_signal, algo.update_every)
        self.batches: collections.deque[dict[str, Any]] = collections.deque()
        self.generator_state: dict[str, Any] | None = None

    @classmethod
    def spawn(cls, tasks: Sequence[str], algo: AlgoConfig, name: str = ACTOR_NAME) -> Any:
        """The run's weights actor: created by the first caller, looked up by the others."""
        remote_cls = ray.remote(num_cpus=0.1, num_gpus=0)(cls)
        actor = remote_cls.options(name=name, get_if_exists=True).remote(list(tasks), algo)
        found = ray.get(actor.get_tasks.remote())
        if found != list(tasks):
            raise RuntimeError(
                f"Ray actor {name!r} already holds tasks {found}, this process has {list(tasks)}"
            )
        return actor

    # -- what the generator reads and writes --------------------------------------------------------

    def get_tasks(self) -> list[str]:
        return self.tasks

    def weights(self) -> dict[str, float]:
        return self.weighter.weights()

    def record_batch(
        self,
        metrics: Mapping[str, float],
        generator_state: Mapping[str, Any],
        accuracy_per_round: Sequence[Mapping[str, float]],
    ) -> None:
        """A batch was built: queue its metrics and the generator state after it; step J_k's EMA."""
        for accuracy in accuracy_per_round:  # the released code: one EMA step per generation round
            self.reward_ema.update(accuracy)
        self.batches.append({"metrics": dict(metrics), "generator_state": dict(generator_state)})

    def take_generator_state(self) -> dict[str, Any] | None:
        """The generator state restored from a checkpoint (once), or None for a fresh run."""
        state, self.generator_state = self.generator_state, None
        return state

    # -- what the trainer and the policy actor send -------------------------------------------------

    def pop_batch(self) -> dict[str, Any]:
        if not self.batches:
            raise RuntimeError("TaskWeightActor.pop_batch: no batch was recorded by the samples generator")
        return self.batches.popleft()

    def observe_training(
        self,
        improvement: Mapping[str, float],
        abs_advantage_sum: Mapping[str, float],
        sample_count: Mapping[str, int],
    ) -> None:
        """One PPO mini-batch's per-task I_k, sum of |A| and sample count (summed over the ranks)."""
        self.updates.observe_minibatch(improvement, abs_advantage_sum, sample_count)

    def end_step(self) -> None:
        self.updates.end_step()

    def observe_eval(self, accuracy: Mapping[str, float]) -> None:
        """Per-task eval accuracy (upstream's eval_<datasource>_pass1): J_k when signal_source is eval."""
        self.eval_accuracy.update(accuracy)

    def reward_signal(self) -> dict[str, float]:
        """J_k: the EMA of batch accuracy, or the latest eval accuracy (0 for a task not evaluated yet)."""
        if self.algo.signal_source == "eval":
            return {t: self.eval_accuracy.get(t, 0.0) for t in self.tasks}
        return self.reward_ema.values()

    # -- logging and checkpoints ----------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """Weights after this step's updates, J_k, and the weighter's diagnostics, as mt/<task>/<name>."""
        out = {"mt/weight_updates": float(self.updates.num_updates)}
        for task, value in self.weighter.weights().items():
            out[f"mt/{task}/next_weight"] = value
        for task, value in self.reward_ema.values().items():
            out[f"mt/{task}/reward_ema"] = value
        for task, value in self.eval_accuracy.items():
            out[f"mt/{task}/eval_accuracy"] = value
        for key, value in self.weighter.diagnostics.items():
            name, _, task = key.partition("/")
            out[f"mt/{task}/{name}" if task else f"mt/{name}"] = float(value)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "weighter": self.weighter.state_dict(),
            "reward_ema": self.reward_ema.state_dict(),
            "eval_accuracy": dict(self.eval_accuracy),
            "num_updates": self.updates.num_updates,
        }

    def load_state_dict(
        self, state: Mapping[str, Any], generator_state: Mapping[str, Any] | None = None
    ) -> None:
        if list(state["tasks"]) != self.tasks:
            raise ValueError(
                f"checkpoint holds task weights for {state['tasks']}, this run has tasks {self.tasks}"
            )
        self.weighter.load_state_dict(state["weighter"])
        self.reward_ema.load_state_dict(state["reward_ema"])
        self.eval_accuracy = dict(state["eval_accuracy"])
        self.updates.num_updates = int(state["num_updates"])
        self.generator_state = dict(generator_state) if generator_state is not None else None
