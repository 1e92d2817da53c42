"""OpenRLHF 0.11.2's Ray actors, extended for MT-GRPO by subclassing (ARCHITECTURE.md).

    MultiTaskPPOTrainer          sync path: PPOTrainer with the MultiTaskSamplesGenerator
    MultiTaskPPOTrainerAsync     async path: PPOTrainerAsync whose generator and training actors are
      MultiTaskGenerateSamplesActor / MultiTaskTrainingActor
    MultiTaskPolicyActor         PolicyModelActor with explicit optimizer-step windows, reporting IWU's
                                 I_k (and SEC's |A|) per window in its fit status

What the trainers add (MultiTaskTrainerMixin, on upstream's BasePPOTrainer hooks):
  experience_maker           splits each batch evenly over the data-parallel ranks (EvenSplitExperienceMaker);
  train_step                 after upstream's step, the batch's record (mt/* metrics, J_k's rounds) and the
                             policy actor's windows go to the TaskWeightActor in one idempotent call, whose
                             metrics join the step status;
  save_logs_and_checkpoints  the weights actor's state rides in OpenRLHF's checkpoint client_states under
                             "openrlhf_mt" (the generator's rides in the prompt loader's state, generator.py);
                             after a requested stop (SIGTERM, `openrlhf-mt stop`) this step is checkpointed
                             whatever --ckpt.save_steps says, and the generator makes no further batch;
  init_checkpoint_states     ... and comes back on --ckpt.load_enable;
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
from openrlhf.trainer.ppo_utils.experience import Experience
from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker
from openrlhf.trainer.ray.ppo_actor import PolicyModelActor
from openrlhf.utils.logging_utils import init_logger
from openrlhf_mt.algo.updates import learns, needs_improvement
from openrlhf_mt.engines.openrlhf.generator import (
    CHECKPOINT_KEY,
    LoaderWithGeneratorState,
    MultiTaskSamplesGenerator,
    scheduler_steps,
)
from openrlhf_mt.engines.openrlhf.improvement import SIGNALS_KEY, ImprovementRecorder, OptimizerWindows
from openrlhf_mt.engines.openrlhf.plan import batch_layout
from openrlhf_mt.engines.openrlhf.weights_actor import ACTOR_NAME

EVAL_SUFFIXES = ("-test", "_test", "-eval", "_eval")
logger = init_logger(__name__)


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


def even_rank_chunks(num_samples: int, data_parallel: int, micro_batch: int) -> list[tuple[int, int]]:
    """(start, end) of each rollout micro-batch so that every rank gets num_samples / data_parallel samples.

    Upstream hands the micro-batch list to the ranks in equal-length runs (ceiling division), so rank r
    gets chunks [r k, (r + 1) k): here every rank's samples are cut into the same number k of chunks of
    at most `micro_batch` samples."""
    if num_samples % data_parallel:
        raise ValueError(f"{num_samples} samples do not split over {data_parallel} data-parallel ranks")
    per_rank = num_samples // data_parallel
    chunks_per_rank = -(-per_rank // micro_batch)
    bounds = []
    for rank in range(data_parallel):
        for chunk in range(chunks_per_rank):
            start = rank * per_rank + chunk * per_rank // chunks_per_rank
            bounds.append((start, rank * per_rank + (chunk + 1) * per_rank // chunks_per_rank))
    return bounds


class EvenSplitExperienceMaker(RemoteExperienceMaker):
    """Upstream's experience maker with the batch cut so that each data-parallel rank trains on as many
    samples as the others (upstream cuts fixed-size micro-batches, so a batch of 3 micro-batches gives
    two ranks 2 and 1: they then run different numbers of collectives, and hang)."""

    def split_rollout_samples(self, rollout_samples: list) -> list:
        if self.args.train.dynamic_batch_enable:  # upstream balances these by length over the ranks itself
            return super().split_rollout_samples(rollout_samples)
        for i, sample in enumerate(rollout_samples):
            sample.index = [i]  # upstream's group advantage puts the rewards back in order by this index
        pad = self.tokenizer.pad_token_id
        data_parallel = batch_layout(self.args).data_parallel
        return [
            Experience.concat_experiences(rollout_samples[start:end], pad)
            for start, end in even_rank_chunks(
                len(rollout_samples), data_parallel, self.args.rollout.micro_batch_size
            )
        ]


class MultiTaskTrainerMixin:
    """Overrides of BasePPOTrainer hooks shared by the sync trainer and the async training actor."""

    _weights_actor: Any = None

    def use_even_split(self) -> None:
        maker = self.experience_maker
        self.experience_maker = EvenSplitExperienceMaker(
            maker.actor_model_group,
            maker.critic_model_group,
            maker.reward_model_group,
            maker.initial_model_group,
            maker.kl_ctl,
            maker.strategy,
            maker.tokenizer,
        )

    @property
    def weights_actor(self) -> Any:
        if self._weights_actor is None:  # created by the samples generator (this actor or the async one)
            self._weights_actor = ray.get_actor(ACTOR_NAME)
        return self._weights_actor

    def train_step(self, rollout_samples: list, global_step: int) -> tuple[dict, int]:
        record = rollout_samples.record  # a MultiTaskBatch, from the MultiTaskSamplesGenerator
        status, global_step = super().train_step(rollout_samples, global_step)
        windows = status.pop(SIGNALS_KEY, [])
        status.update(record.metrics)
        step_metrics = self.weights_actor.apply_step.remote(global_step, record.accuracy_per_round, windows)
        status.update(ray.get(step_metrics))
        return status, global_step

    def save_logs_and_checkpoints(
        self, global_step: int, logs_dict: dict | None = None, client_states=None
    ) -> None:
        if client_states is not None:  # the same dict later reaches save_best_checkpoint: fill it in place
            client_states[CHECKPOINT_KEY] = {"weights": ray.get(self.weights_actor.state_dict.remote())}
        if not ray.get(self.weights_actor.is_stop_requested.remote()):
            super().save_logs_and_checkpoints(global_step, logs_dict, client_states)
            return
        with mock.patch.object(
            self.args.ckpt, "save_steps", 1
        ):  # checkpoint this step, whatever the schedule
            super().save_logs_and_checkpoints(global_step, logs_dict, client_states)
        logger.warning(
            f"stop requested: checkpoint written after step {global_step} in {self.args.ckpt.path}"
        )

    def init_checkpoint_states(self) -> dict:
        states = super().init_checkpoint_states()
        saved = states.get(CHECKPOINT_KEY)
        if saved is not None:
            ray.get(self.weights_actor.load_state_dict.remote(saved["weights"]))
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
        self.prompts_dataloader = LoaderWithGeneratorState(self.prompts_dataloader, self.samples_generator)
        self._weights_actor = self.samples_generator.weights_actor
        self.use_even_split()

    def get_max_steps(self) -> int:
        return scheduler_steps(self.args, self.samples_generator.episode_length)


class MultiTaskGenerateSamplesActor(ppo_trainer_async.GenerateSamplesActor.__ray_actor_class__):
    def __init__(self, pretrain: str, strategy: Any, vllm_engines: list, **kwargs: Any) -> None:
        super().__init__(pretrain, strategy, vllm_engines, **kwargs)
        upstream = self.samples_generator
        self.samples_generator = MultiTaskSamplesGenerator(
            strategy, self.prompts_dataloader, self.eval_dataloader, upstream.tokenizer, vllm_engines
        )
        self.prompts_dataloader = LoaderWithGeneratorState(self.prompts_dataloader, self.samples_generator)

    def get_max_steps(self) -> int:
        return scheduler_steps(self.args, self.samples_generator.episode_length)


class MultiTaskTrainingActor(MultiTaskTrainerMixin, ppo_trainer_async.TrainingActor.__ray_actor_class__):
    # Re-declared because, inherited as they are, upstream's two methods that call super() with no
    # arguments fail in this Ray actor ("super(type, obj): obj must be an instance or subtype of type",
    # seen with Ray 2.55); called from a method defined here, they work.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.use_even_split()

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
        windows = OptimizerWindows(self.trainer)
        self.recorder = None
        algo = strategy.args.mt.algo
        if learns(algo.weighter):  # the weights learn from every optimizer step's signals
            tasks = ray.get(ray.get_actor(ACTOR_NAME).get_tasks.remote())
            self.recorder = ImprovementRecorder(
                windows,
                tasks,
                needs_improvement(algo.weighter),
                improvement_fraction=algo.improvement_fraction,
                seed=strategy.args.train.seed,
            )

    def fit(self, kl_ctl: float = 0) -> dict:
        status = super().fit(kl_ctl)
        status[SIGNALS_KEY] = self.recorder.take_windows() if self.recorder is not None else []
        return status


def launch_classes() -> dict[str, Any]:
    """module path -> {name: Ray actor class}: what upstream's `train()` must find under those names."""
    return {
        "openrlhf.trainer.ppo_trainer": {"PPOTrainer": ray.remote(MultiTaskPPOTrainer)},
        "openrlhf.trainer.ppo_trainer_async": {"PPOTrainerAsync": ray.remote(MultiTaskPPOTrainerAsync)},
        "openrlhf.trainer.ray.ppo_actor": {"PolicyModelActor": ray.remote(num_gpus=1)(MultiTaskPolicyActor)},
    }
