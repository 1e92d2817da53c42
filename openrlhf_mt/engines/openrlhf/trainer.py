"""OpenRLHF 0.11.2's Ray actors, extended for MT-GRPO by subclassing (ARCHITECTURE.md).

    MultiTaskPPOTrainer          sync path: PPOTrainer with the MultiTaskSamplesGenerator
    MultiTaskPPOTrainerAsync     async path: PPOTrainerAsync whose generator and training actors are
      MultiTaskGenerateSamplesActor / MultiTaskTrainingActor
    MultiTaskPolicyActor         PolicyModelActor that reports IWU's I_k (and SEC's mean |A|)

What the trainers add (MultiTaskTrainerMixin, on upstream's BasePPOTrainer hooks):
  train_step                 the batch's mt/* metrics (from the weights actor, in batch order) and the
                             weights actor's state after the step's updates go into the step status;
  save_logs_and_checkpoints  the weights actor's and the generator's state ride in OpenRLHF's
                             checkpoint client_states under "openrlhf_mt";
  init_checkpoint_states     ... and come back on --ckpt.load_enable;
  save_best_checkpoint       runs after every eval (sync and async): upstream's eval_<datasource>_pass1
                             goes to the weights actor as per-task eval accuracy.

`launch_classes()` gives the Ray actor classes that `openrlhf.cli.train_ppo_ray.train` must use.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import ray

from openrlhf.trainer import ppo_trainer_async
from openrlhf.trainer.ppo_trainer import PPOTrainer
from openrlhf.trainer.ray.ppo_actor import PolicyModelActor
from openrlhf_mt.algo.updates import learns, needs_improvement
from openrlhf_mt.engines.openrlhf.generator import MultiTaskSamplesGenerator, scheduler_steps
from openrlhf_mt.engines.openrlhf.improvement import ImprovementRecorder
from openrlhf_mt.engines.openrlhf.weights_actor import ACTOR_NAME

CHECKPOINT_KEY = "openrlhf_mt"
EVAL_SUFFIXES = ("-test", "_test", "-eval", "_eval")


def eval_accuracy_by_task(eval_logs: dict[str, float], tasks: list[str]) -> dict[str, float]:
    """eval_<datasource>_pass1 -> task accuracy; a datasource is a task name, optionally + -test/_test."""
    accuracy = {}
    for key, value in eval_logs.items():
        if not (key.startswith("eval_") and key.endswith("_pass1")):
            continue
        source = key[len("eval_") : -len("_pass1")]
        for suffix in ("", *EVAL_SUFFIXES):
            if source.endswith(suffix) and source[: len(source) - len(suffix)] in tasks:
                accuracy[source[: len(source) - len(suffix)]] = float(value)
                break
    return accuracy


class MultiTaskTrainerMixin:
    """Overrides of BasePPOTrainer hooks shared by the sync trainer and the async training actor."""

    _weights_actor: Any = None
    mt_generator_state: dict[str, Any] | None = None

    @property
    def weights_actor(self) -> Any:
        if self._weights_actor is None:  # created by the samples generator (this actor or the async one)
            self._weights_actor = ray.get_actor(ACTOR_NAME)
        return self._weights_actor

    def train_step(self, rollout_samples: list, global_step: int) -> tuple[dict, int]:
        batch = ray.get(self.weights_actor.pop_batch.remote())
        status, global_step = super().train_step(rollout_samples, global_step)
        ray.get(self.weights_actor.end_step.remote())
        status.update(batch["metrics"])
        status.update(ray.get(self.weights_actor.metrics.remote()))
        self.mt_generator_state = batch["generator_state"]
        return status, global_step

    def save_logs_and_checkpoints(
        self, global_step: int, logs_dict: dict | None = None, client_states=None
    ) -> None:
        if client_states is not None:  # the same dict later reaches save_best_checkpoint: fill it in place
            client_states[CHECKPOINT_KEY] = {
                "weights": ray.get(self.weights_actor.state_dict.remote()),
                "generator": self.mt_generator_state,
            }
        super().save_logs_and_checkpoints(global_step, logs_dict, client_states)

    def init_checkpoint_states(self) -> dict:
        states = super().init_checkpoint_states()
        saved = states.get(CHECKPOINT_KEY)
        if saved is not None:
            ray.get(self.weights_actor.load_state_dict.remote(saved["weights"], saved["generator"]))
        return states

    def save_best_checkpoint(self, eval_metrics: dict, global_step: int, client_states=None) -> None:
        tasks = ray.get(self.weights_actor.get_tasks.remote())
        accuracy = eval_accuracy_by_task(eval_metrics or {}, tasks)
        if accuracy:
            ray.get(self.weights_actor.observe_eval.remote(accuracy))
            # A best checkpoint is written after the eval: its weights state must include it.
            if client_states is not None and CHECKPOINT_KEY in client_states:
                client_states[CHECKPOINT_KEY]["weights"] = ray.get(self.weights_actor.state_dict.remote())
        super().save_best_checkpoint(eval_metrics, global_step, client_states)


class MultiTaskPPOTrainer(MultiTaskTrainerMixin, PPOTrainer.__ray_actor_class__):
    def __init__(
        self, pretrain: str, strategy: Any, *model_groups_and_engines: Any, **generate_kwargs: Any
    ) -> None:
        super().__init__(pretrain, strategy, *model_groups_and_engines, **generate_kwargs)
        self.samples_generator = MultiTaskSamplesGenerator(
            strategy, self.prompts_dataloader, self.eval_dataloader, self.tokenizer, self.vllm_engines
        )
        self._weights_actor = self.samples_generator.weights_actor

    def get_max_steps(self) -> int:
        return scheduler_steps(self.args, self.samples_generator.episode_length)


class MultiTaskGenerateSamplesActor(ppo_trainer_async.GenerateSamplesActor.__ray_actor_class__):
    def __init__(self, pretrain: str, strategy: Any, vllm_engines: list, **kwargs: Any) -> None:
        super().__init__(pretrain, strategy, vllm_engines, **kwargs)
        upstream = self.samples_generator
        self.samples_generator = MultiTaskSamplesGenerator(
            strategy, self.prompts_dataloader, self.eval_dataloader, upstream.tokenizer, vllm_engines
        )

    def get_max_steps(self) -> int:
        return scheduler_steps(self.args, self.samples_generator.episode_length)


class MultiTaskTrainingActor(MultiTaskTrainerMixin, ppo_trainer_async.TrainingActor.__ray_actor_class__):
    # Re-declared because, inherited as they are, upstream's two methods that call super() with no
    # arguments fail in this Ray actor ("super(type, obj): obj must be an instance or subtype of type",
    # seen with Ray 2.55); called from a method defined here, they work.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def broadcast_to_vllm(self) -> None:
        super().broadcast_to_vllm()


class MultiTaskPPOTrainerAsync(ppo_trainer_async.PPOTrainerAsync.__ray_actor_class__):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Upstream's __init__ creates its generator and training actors from these module names.
        with mock.patch.multiple(
            ppo_trainer_async,
            GenerateSamplesActor=ray.remote(MultiTaskGenerateSamplesActor),
            TrainingActor=ray.remote(MultiTaskTrainingActor),
        ):
            super().__init__(*args, **kwargs)


class MultiTaskPolicyActor(PolicyModelActor.__ray_actor_class__):
    def init_model_from_pretrained(
        self, strategy: Any, pretrain: str, max_steps=None, vllm_engines=None
    ) -> None:
        super().init_model_from_pretrained(strategy, pretrain, max_steps, vllm_engines)
        algo = strategy.args.mt.algo
        if learns(algo.weighter):  # the policy actor reports every optimizer step
            weights_actor = ray.get_actor(ACTOR_NAME)
            tasks = ray.get(weights_actor.get_tasks.remote())
            measure = needs_improvement(algo.weighter)
            ImprovementRecorder(self.trainer, weights_actor, tasks, measure_improvement=measure)


def launch_classes() -> dict[str, Any]:
    """module path -> {name: Ray actor class}: what upstream's `train()` must find under those names."""
    return {
        "openrlhf.trainer.ppo_trainer": {"PPOTrainer": ray.remote(MultiTaskPPOTrainer)},
        "openrlhf.trainer.ppo_trainer_async": {"PPOTrainerAsync": ray.remote(MultiTaskPPOTrainerAsync)},
        "openrlhf.trainer.ray.ppo_actor": {"PolicyModelActor": ray.remote(num_gpus=1)(MultiTaskPolicyActor)},
    }
