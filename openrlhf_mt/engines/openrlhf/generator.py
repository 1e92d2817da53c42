"""MultiTaskSamplesGenerator: OpenRLHF's SamplesGenerator with per-task prompt streams and RPS batches.

Upstream's generator pulls prompts from one shuffled loader, drops a prompt's group when its *mean*
score falls outside a range, refills from whatever comes next, and reports a pass rate of samples
per prompt. This one keeps upstream's vLLM dispatch and response -> Experience conversion and
replaces the batch building:

  - a seeded stream per task (the task is the label's "task" field, which travels with the prompt);
  - the core's `RatioPreservingSampler.build_batch(weights, generate)` decides how many prompts of
    each task to generate per round, drops zero-gradient groups with the core's filter (reward spread,
    MTGRPO_SPEC.md §3) and refills from the same task (or task-blind, DAPO; or not at all, GRPO);
  - the batch is the accepted groups' N experiences each, consecutive, in the sampler's order: what
    upstream's group advantage (a reshape to (-1, N)) needs;
  - the pass rate counts groups (accepted / generated), and the per-task metrics of the batch go to
    the weights actor together with the generator's state, for the trainer that trains the batch.

One episode is `len(prompts) // rollout.batch_size` batches (upstream's count without filtering),
or `--mt.max_steps` spread over the episodes; the run stops after `--mt.max_steps` batches in all.
"""

from __future__ import annotations

import math
from typing import Any

import ray
import torch
from tqdm import tqdm

from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator
from openrlhf.utils.logging_utils import init_logger
from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.algo.signals import batch_accuracy
from openrlhf_mt.algo.types import Group
from openrlhf_mt.config import AlgoConfig
from openrlhf_mt.engines.openrlhf.plan import DryRunFinished, describe_plan
from openrlhf_mt.engines.openrlhf.weights_actor import TaskWeightActor
from openrlhf_mt.tasks.base import decode_label
from openrlhf_mt.tasks.streams import PromptStream

logger = init_logger(__name__)


def prompt_tasks(dataset: Any) -> list[str]:
    """The task of every prompt of an OpenRLHF PromptDataset (from its label's "task" field)."""
    return [decode_label(label, where=f"prompt row {i}")["task"] for i, label in enumerate(dataset.labels)]


def task_order(tasks_of_prompts: list[str]) -> list[str]:
    """The distinct tasks in order of first appearance."""
    return list(dict.fromkeys(tasks_of_prompts))


def steps_per_episode(num_prompts: int, rollout_batch_size: int, max_steps: int, num_episodes: int) -> int:
    """Batches per episode: `max_steps` over the episodes if set, else one pass over the prompts."""
    if max_steps > 0:
        return math.ceil(max_steps / num_episodes)
    return max(num_prompts // rollout_batch_size, 1)


def scheduler_steps(args: Any, episode_length: int) -> int:
    """Optimizer steps of the whole run, for the LR scheduler (upstream's formula, our episode length)."""
    samples_per_episode = episode_length * args.rollout.batch_size * args.rollout.n_samples_per_prompt
    return samples_per_episode // args.train.batch_size * args.train.num_episodes * args.train.max_epochs


class MultiTaskSamplesGenerator(SamplesGenerator):
    def __init__(
        self, strategy: Any, prompts_dataloader: Any, eval_dataloader: Any, tokenizer: Any, vllm_engines: list
    ):
        super().__init__(strategy, prompts_dataloader, eval_dataloader, tokenizer, vllm_engines)
        self.mt: Any = self.args.mt  # the --mt.* namespace: method/algo fields, max_steps, ...
        self.algo: AlgoConfig = self.mt.algo
        self.dataset = prompts_dataloader.dataset
        tasks_of_prompts = prompt_tasks(self.dataset)
        self.tasks = task_order(tasks_of_prompts)
        self.prompts_of_task = {t: [i for i, p in enumerate(tasks_of_prompts) if p == t] for t in self.tasks}
        seed = self.args.train.seed
        self.streams = {
            t: PromptStream(len(self.prompts_of_task[t]), seed, k) for k, t in enumerate(self.tasks)
        }
        self.sampler = RatioPreservingSampler(
            self.tasks, self.args.rollout.batch_size, seed=seed, **self.algo.sampler_kwargs()
        )
        self.episode_length = steps_per_episode(
            len(self.dataset), self.args.rollout.batch_size, self.mt.max_steps, self.args.train.num_episodes
        )
        self.total_batches = self.mt.max_steps or self.episode_length * self.args.train.num_episodes
        self.batches = 0  # produced so far in the run (restored on resume)
        self.weights_actor = TaskWeightActor.spawn(self.tasks, self.algo)
        self.restored = False

    # -- state (goes into OpenRLHF's checkpoint through the weights actor) --------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "streams": {t: s.state_dict() for t, s in self.streams.items()},
            "sampler": self.sampler.state_dict(),
            "batches": self.batches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["streams"]) != self.tasks:
            raise ValueError(
                f"checkpoint holds prompt streams for {list(state['streams'])}, this run has {self.tasks}"
            )
        for task, stream_state in state["streams"].items():
            self.streams[task].load_state_dict(stream_state)
        self.sampler.load_state_dict(state["sampler"])
        self.batches = int(state["batches"])

    # -- one training batch -----------------------------------------------------------------------------

    @torch.no_grad()
    def generate_samples(self, **generate_kwargs: Any) -> tuple[list, float | None, int, bool]:
        """(rollout_samples, pass rate in % of groups, prompts consumed, episode done), as upstream's."""
        if not self.restored:  # a resumed run: the trainer has handed the checkpoint to the weights actor
            state = ray.get(self.weights_actor.take_generator_state.remote())
            if state is not None:
                self.load_state_dict(state)
            self.restored = True
        if self.batches >= self.total_batches:  # e.g. resumed at the end: upstream's loop then stops
            return [], None, 0, True
        weights = ray.get(self.weights_actor.weights.remote())
        if self.mt.dry_run:
            prompts = {t: len(p) for t, p in self.prompts_of_task.items()}
            steps = scheduler_steps(self.args, self.episode_length)
            raise DryRunFinished(describe_plan(self.args, prompts, weights, self.episode_length, steps))
        generated: list[Group] = []

        def generate(counts: dict[str, int]) -> list[Group]:
            groups = self.generate_groups(counts, **generate_kwargs)
            generated.extend(groups)
            return groups

        if self.args.vllm.enable_sleep:
            self.call_engines("wake_up")
        try:
            groups, info = self.sampler.build_batch(weights, generate)
        finally:
            if self.args.vllm.enable_sleep:
                self.call_engines("sleep")

        rollout_samples = [experience for group in groups for experience in group.payload]
        self.batches += 1
        episode_done = self.batches % self.episode_length == 0 or self.batches >= self.total_batches
        pass_rate = 100.0 * sum(info.accepted.values()) / max(len(generated), 1)  # groups, not samples
        metrics = self.batch_metrics(weights, generated, info, pass_rate)
        logger.info(
            f"MT batch: {len(groups)} groups after {info.rounds} round(s); generated {info.generated}, "
            f"accepted {info.accepted}, selected {info.selected}"
        )
        # waited for: the trainer (maybe another actor) pops this record before training the batch
        ray.get(self.weights_actor.record_batch.remote(metrics, self.state_dict(), info.accuracy_per_round))
        return rollout_samples, pass_rate, len(generated), episode_done

    def generate_groups(self, counts: dict[str, int], **generate_kwargs: Any) -> list[Group]:
        """counts[task] fresh prompts per task through vLLM; one Group (N experiences) per prompt."""
        prompts, labels, images, tasks = [], [], [], []
        for task, count in counts.items():
            for index in self.streams[task].take(count):
                row = self.prompts_of_task[task][index]
                prompts.append(self.dataset.prompts[row])
                labels.append(self.dataset.labels[row])
                images.append(self.dataset.images[row])
                tasks.append(task)
        refs = self._dispatch_prompts_to_vllm(prompts, labels, images=images, **generate_kwargs)
        groups = []
        for task, ref in zip(
            tasks, tqdm(refs, desc=f"Generate {len(refs)} groups", leave=False), strict=True
        ):
            experiences = [self._process_response_into_experience(r, **generate_kwargs) for r in ray.get(ref)]
            groups.append(Group(task, [reward_of(e) for e in experiences], payload=experiences))
        return groups

    @torch.no_grad()
    def generate_eval_samples(self, **generate_kwargs: Any) -> list:
        """Upstream's eval, scored 1 / 0: eval_<datasource>_pass1 is then the spec's eval accuracy.

        Upstream averages `rewards`, which carry the 0.1 format credit; the task library's reward
        function puts the 1 / 0 correctness in `scores`."""
        experiences = super().generate_eval_samples(**generate_kwargs)
        for experience in experiences:
            if experience.scores is not None:
                experience.rewards = experience.scores
        return experiences

    def call_engines(self, method: str) -> None:
        from openrlhf.trainer.ray.vllm_engine import batch_vllm_engine_call

        batch_vllm_engine_call(self.vllm_engines, method)

    def batch_metrics(
        self, weights: dict[str, float], generated: list[Group], info: Any, pass_rate: float
    ) -> dict:
        """The step's mt/* metrics: what the batch was built from and what it holds, per task."""
        accuracy = batch_accuracy(generated) if generated else {}
        metrics = {
            "mt/rounds": float(info.rounds),
            "mt/pass_rate": pass_rate,
            "mt/shortfall": float(info.shortfall),
        }
        for task in self.tasks:
            metrics |= {
                f"mt/{task}/weight": weights[task],
                f"mt/{task}/batch_share": info.realised_share[task],
                f"mt/{task}/generated_groups": float(info.generated[task]),
                f"mt/{task}/selected_groups": float(info.selected[task]),
                f"mt/{task}/rho": info.rho[task],
            }
            if task in accuracy:
                metrics[f"mt/{task}/accuracy"] = accuracy[task]
            if task in info.zero_gradient_rate:
                metrics[f"mt/{task}/zero_gradient_rate"] = info.zero_gradient_rate[task]
        return metrics


def reward_of(experience: Any) -> float:
    """The training reward (1 / 0.1 / 0): what upstream's group advantage sees, so what the filter sees."""
    if experience.rewards is None:
        raise RuntimeError(
            "a rollout came back without a reward: set --reward.remote_url to a reward function "
            "(default: openrlhf_mt/tasks/openrlhf_reward.py)"
        )
    return float(experience.rewards.reshape(-1)[0])
