"""The task weights of a run, in one named Ray actor that every other actor can reach.

    actor = TaskWeightActor.spawn(tasks, algo, snapshot_path)   # named, get-if-exists; 0.1 CPU, no GPU
    z = ray.get(actor.weights.remote())

Who talks to it:
  - the samples generator (the trainer actor, or the async generator actor) reads the weights before
    building each batch, `weights_after(step)`; it writes nothing. Batch b is built with the weights after
    training step b - 1 - lag, where lag is the async queue size (0 in sync mode): in async mode the
    generator runs `lag` batches ahead of the trainer, and this makes which weights it uses a fixed rule
    instead of a race, so a resumed async run builds its batches with the same weights as an
    uninterrupted one (the actor keeps the last lag + 1 weight vectors, in its checkpoint state too);
  - the trainer, and only the trainer, changes its state: `apply_step(step, accuracy_per_round, windows)`
    once per training step, with the trained batch's per-round accuracies (J_k's EMA steps, as the
    released code, once per generation round) and the policy actor's per-optimizer-step signals (IWU's
    I_k, SEC's sums of |A| and sample counts, summed over the data-parallel ranks);
    `observe_eval(accuracy)` after each evaluation; `state_dict()` / `load_state_dict()` for OpenRLHF's
    checkpoints;
  - anyone may ask the run to stop cleanly (`request_stop()`: the driver on SIGTERM, `openrlhf-mt stop`):
    the trainer checkpoints after the step it is in and the generator produces no further batch.
Because J_k steps when a batch is trained (not when it is generated), the state saved with checkpoint N
holds exactly batches 1..N also in async mode, where the generator runs a batch ahead.

When the weighter steps and on what is the core's `algo.updates.WeightUpdates`, as in the local engine.
The signal source (`algo.signal_source`) decides what J_k is (MTGRPO_SPEC.md §2):
  batch: the EMA (decay j_ema_decay) of the task's pre-filter batch accuracy, one EMA step per
         generation round (released code);
  eval:  the task's latest eval accuracy (0 until its first eval).
I_k is the summed surrogate improvement from the policy actor either way.

Fault tolerance: Ray restarts the actor if its process dies (max_restarts=-1) and retries the calls that
were in flight (max_task_retries=-1). After every change the actor writes its state to `snapshot_path`
(JSON, replaced atomically); a restarted actor reloads it, counts the restart (`mt/weights_actor_restarts`)
and logs it. `apply_step` is idempotent per step, so a retried call never applies a step twice.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ray

from openrlhf_mt.algo.signals import RewardEMA
from openrlhf_mt.algo.updates import WeightUpdates
from openrlhf_mt.algo.weights import make_weighter
from openrlhf_mt.config import AlgoConfig

ACTOR_NAME = "openrlhf_mt_task_weights"
SNAPSHOT_NAME = "openrlhf_mt_task_weights.json"

logger = logging.getLogger(__name__)

# One PPO optimizer step's signals, summed over the data-parallel ranks:
# (I_k per task, sum of |A| per task, sample count per task).
Window = tuple[Mapping[str, float], Mapping[str, float], Mapping[str, int]]


class TaskWeightActor:
    def __init__(
        self, tasks: Sequence[str], algo: AlgoConfig, snapshot_path: str | None = None, lag: int = 0
    ) -> None:
        self.tasks = list(tasks)
        self.lag = lag
        self.algo = algo
        self.snapshot_path = snapshot_path
        self.weighter = make_weighter(algo.weighter, self.tasks, **algo.weighter_kwargs())
        self.reward_ema = RewardEMA(self.tasks, decay=algo.j_ema_decay)
        self.eval_accuracy: dict[str, float] = {}
        self.updates = WeightUpdates(self.weighter, self.reward_signal, algo.update_every)
        self.stop_requested = False  # not part of the state: a resumed run trains on
        self.applied_step = 0  # the last training step whose signals were applied
        self.weights_by_step = {0: self.weighter.weights()}  # after steps applied_step - lag .. applied_step
        self.restarts = 0
        if self.was_restarted():
            self.restarts = self.restore_snapshot() + 1
            logger.warning(
                f"TaskWeightActor was restarted by Ray (restart {self.restarts}); state after step "
                f"{self.applied_step} restored from {snapshot_path}"
            )
        self.save_snapshot()  # a fresh run overwrites a stale snapshot before anything could reload it

    @staticmethod
    def was_restarted() -> bool:
        if not ray.is_initialized() or ray.get_runtime_context().get_actor_id() is None:
            return False  # a plain object (tests, the driver), not a Ray actor
        return ray.get_runtime_context().was_current_actor_reconstructed

    @classmethod
    def spawn(
        cls,
        tasks: Sequence[str],
        algo: AlgoConfig,
        snapshot_path: str | None = None,
        lag: int = 0,
        name: str = ACTOR_NAME,
    ) -> Any:
        """The run's weights actor: created by the first caller, looked up by the others."""
        remote_cls = ray.remote(num_cpus=0.1, num_gpus=0, max_restarts=-1, max_task_retries=-1)(cls)
        actor = remote_cls.options(name=name, get_if_exists=True).remote(
            list(tasks), algo, snapshot_path, lag
        )
        found = ray.get(actor.get_tasks.remote())
        if found != list(tasks):
            raise RuntimeError(
                f"Ray actor {name!r} already holds tasks {found}, this process has {list(tasks)}"
            )
        return actor

    # -- what the generator reads ------------------------------------------------------------------

    def get_tasks(self) -> list[str]:
        return self.tasks

    def weights(self) -> dict[str, float]:
        return self.weighter.weights()

    def weights_after(self, step: int) -> dict[str, float] | None:
        """The weights after training step `step` (0: the initial ones); None while it is not applied."""
        if step > self.applied_step:
            return None
        if step not in self.weights_by_step:
            raise RuntimeError(
                f"weights after step {step} were asked for, but only steps {sorted(self.weights_by_step)} "
                f"are kept (lag {self.lag}): the generator is further behind the trainer than its queue "
                "allows"
            )
        return self.weights_by_step[step]

    # -- what the trainer sends --------------------------------------------------------------------

    def apply_step(
        self, step: int, accuracy_per_round: Sequence[Mapping[str, float]], windows: Sequence[Window]
    ) -> dict[str, float]:
        """Training step `step`: J_k's EMA over its batch's rounds, then one observation per optimizer step.

        Returns the step's metrics. A step that was already applied (a call Ray retried after a restart)
        changes nothing."""
        if step > self.applied_step:
            for accuracy in accuracy_per_round:  # the released code: one EMA step per generation round
                self.reward_ema.update(accuracy)
            for improvement, abs_advantage_sum, sample_count in windows:
                self.updates.observe_minibatch(improvement, abs_advantage_sum, sample_count)
            self.updates.end_step()
            self.applied_step = step
            self.weights_by_step[step] = self.weighter.weights()
            self.weights_by_step = {s: w for s, w in self.weights_by_step.items() if s >= step - self.lag}
            self.save_snapshot()
        return self.metrics()

    def observe_eval(self, accuracy: Mapping[str, float]) -> None:
        """Per-task eval accuracy (upstream's eval_<datasource>_pass1): J_k when signal_source is eval."""
        self.eval_accuracy.update(accuracy)
        self.save_snapshot()

    def request_stop(self) -> int:
        """Ask the run to checkpoint after its current step and end; returns the last applied step."""
        self.stop_requested = True
        return self.applied_step

    def is_stop_requested(self) -> bool:
        return self.stop_requested

    def reward_signal(self) -> dict[str, float]:
        """J_k: the EMA of batch accuracy, or the latest eval accuracy (0 for a task not evaluated yet)."""
        if self.algo.signal_source == "eval":
            return {t: self.eval_accuracy.get(t, 0.0) for t in self.tasks}
        return self.reward_ema.values()

    # -- logging, checkpoints, snapshots ---------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """Weights after the last step's updates, J_k, and the weighter's diagnostics, as mt/<task>/<name>."""
        out = {
            "mt/weight_updates": float(self.updates.num_updates),
            "mt/weights_actor_restarts": float(self.restarts),
        }
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
            "applied_step": self.applied_step,
            "weights_by_step": [[s, w] for s, w in sorted(self.weights_by_step.items())],
            "restarts": self.restarts,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["tasks"]) != self.tasks:
            raise ValueError(
                f"checkpoint holds task weights for {state['tasks']}, this run has tasks {self.tasks}"
            )
        self.weighter.load_state_dict(state["weighter"])
        self.reward_ema.load_state_dict(state["reward_ema"])
        self.eval_accuracy = dict(state["eval_accuracy"])
        self.updates.num_updates = int(state["num_updates"])
        self.applied_step = int(state["applied_step"])
        self.weights_by_step = {int(s): dict(w) for s, w in state["weights_by_step"]}
        self.restarts = int(state["restarts"])
        self.save_snapshot()

    def restore_snapshot(self) -> int:
        """Load the last snapshot, if there is one; the number of restarts it had counted."""
        if not (self.snapshot_path and os.path.exists(self.snapshot_path)):
            return 0
        with open(self.snapshot_path) as file:
            self.load_state_dict(json.load(file))
        return self.restarts

    def save_snapshot(self) -> None:
        """The state as JSON at `snapshot_path`, written whole or not at all (what a restart reloads)."""
        if not self.snapshot_path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.snapshot_path)), exist_ok=True)
        temporary = f"{self.snapshot_path}.tmp"
        with open(temporary, "w") as file:
            json.dump(self.state_dict(), file)
        os.replace(temporary, self.snapshot_path)
