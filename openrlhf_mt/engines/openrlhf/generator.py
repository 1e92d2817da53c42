"""MultiTaskSamplesGenerator: OpenRLHF's SamplesGenerator with per-task prompt streams and RPS batches.

Upstream's generator pulls prompts from one shuffled loader, drops a prompt's group when its *mean*
score falls outside a range, refills from whatever comes next, and reports a pass rate of samples
per prompt. This one keeps upstream's vLLM dispatch and response -> Experience conversion and
replaces the batch building:

  - a seeded stream per task (the task is the label's "task" field, which travels with the prompt);
  - the core's `RatioPreservingSampler.build_batch(weights, generate)` decides how many prompts of
    each task to generate per round, drops zero-gradient groups with the core's filter and refills
    from the same task (or task-blind, DAPO; or not at all, GRPO);
  - or, with `--mt.request streaming`, `algo.stream.StreamingBuild`: each task's prompts go to the
    vLLM engines as the build asks and come back in any order (`ray.wait`); a task's groups are
    accepted in submission order, so which ones are trained on does not depend on response lengths;
  - a short batch (the rounds ran out before B groups were accepted) is trimmed to a multiple of
    `batch_layout(args).group_multiple` groups, keeping its task shares (`algo.trim`), so that it
    splits evenly over the data-parallel ranks; a batch trimmed to nothing is not trained on: the
    generator counts it, carries its J_k rounds into the next batch, and builds another;
  - the batch is the accepted groups' N experiences each, consecutive, in the sampler's order: what
    upstream's group advantage (a reshape to (-1, N)) needs. It is a `MultiTaskBatch`: a list, as
    upstream expects, carrying its `BatchRecord` (the step's mt/* metrics and the per-round
    accuracies of J_k) with it, through upstream's async queue too, to the trainer that trains it;
  - the pass rate counts groups (accepted / generated).

The generator's own state (task streams, sampler, counters) rides in upstream's checkpoint as part of the
prompt loader's state (`LoaderWithGeneratorState`), which upstream saves right after each batch is
generated and restores on resume, in the sync and the async trainer alike.

One episode is `len(prompts) // rollout.batch_size` batches (upstream's count without filtering),
or `--mt.max_steps` spread over the episodes; the run stops after `--mt.max_steps` batches in all.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from tqdm import tqdm

from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator
from openrlhf.utils.logging_utils import init_logger
from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.algo.signals import batch_accuracy
from openrlhf_mt.algo.stream import StreamingBuild
from openrlhf_mt.algo.trim import trim_to_multiple
from openrlhf_mt.algo.types import Group
from openrlhf_mt.config import AlgoConfig
from openrlhf_mt.engines.openrlhf.plan import DryRunFinished, batch_layout, describe_plan
from openrlhf_mt.engines.openrlhf.weights_actor import SNAPSHOT_NAME, TaskWeightActor
from openrlhf_mt.tasks.base import decode_label
from openrlhf_mt.tasks.streams import PromptStream

logger = init_logger(__name__)

CHECKPOINT_KEY = "openrlhf_mt"
# A run that cannot get one group accepted in this many batches in a row stops with an error.
MAX_CONSECUTIVE_EMPTY_BATCHES = 20
WAIT_FOR_WEIGHTS_SECONDS = 600
WAIT_FOR_CANCELLED_SECONDS = 60  # aborting a vLLM request takes one engine step


@dataclass
class BatchRecord:
    """What the trainer needs of a batch besides its experiences."""

    metrics: dict[str, float]
    accuracy_per_round: list[dict[str, float]] = field(default_factory=list)


class MultiTaskBatch(list):
    """A batch's experiences, in upstream's list form, with its `record` attached (pickles with it)."""

    def __init__(self, experiences: list, record: BatchRecord) -> None:
        super().__init__(experiences)
        self.record = record


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


def snapshot_path(args: Any) -> str | None:
    """Where the TaskWeightActor keeps the snapshot a restart reloads: next to the run's checkpoints."""
    return os.path.join(args.ckpt.path, SNAPSHOT_NAME) if args.ckpt.path else None


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
        self.group_multiple = batch_layout(self.args).group_multiple
        self.episode_length = steps_per_episode(
            len(self.dataset), self.args.rollout.batch_size, self.mt.max_steps, self.args.train.num_episodes
        )
        self.total_batches = self.mt.max_steps or self.episode_length * self.args.train.num_episodes
        self.batches = 0  # trained-on batches produced so far in the run (restored on resume)
        self.empty_batches = 0  # batches trimmed to nothing, over the run
        self.skipped_since_last = 0  # ... since the last batch that was handed out
        self.pending_rounds: list[dict[str, float]] = []  # J_k rounds of those skipped batches
        # async: the generator runs this many batches ahead of the trainer (upstream's queue of batches)
        self.lag = getattr(self.args.train, "async_queue_size", 1) if self.args.train.async_enable else 0
        self.weights_actor = TaskWeightActor.spawn(self.tasks, self.algo, snapshot_path(self.args), self.lag)

    # -- state (rides in upstream's checkpoint with the prompt loader's, see LoaderWithGeneratorState) ----

    def state_dict(self) -> dict[str, Any]:
        return {
            "streams": {t: s.state_dict() for t, s in self.streams.items()},
            "sampler": self.sampler.state_dict(),
            "batches": self.batches,
            "empty_batches": self.empty_batches,
            "skipped_since_last": self.skipped_since_last,
            "pending_rounds": list(self.pending_rounds),
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
        self.empty_batches = int(state["empty_batches"])
        self.skipped_since_last = int(state["skipped_since_last"])
        self.pending_rounds = [dict(r) for r in state["pending_rounds"]]

    # -- one training batch -----------------------------------------------------------------------------

    @torch.no_grad()
    def generate_samples(self, **generate_kwargs: Any) -> tuple[list, float | None, int, bool]:
        """(rollout_samples, pass rate in % of groups, prompts consumed, episode done), as upstream's.

        An empty list means "nothing to train on, call again" (upstream's loops skip it)."""
        if self.batches >= self.total_batches:  # e.g. resumed at the end: upstream's loop then stops
            return [], None, 0, True
        if ray.get(self.weights_actor.is_stop_requested.remote()):  # a clean stop: no further batch
            self.total_batches = self.batches
            return [], None, 0, True
        weights = self.weights_for_next_batch()
        if self.mt.dry_run:
            prompts = {t: len(p) for t, p in self.prompts_of_task.items()}
            steps = scheduler_steps(self.args, self.episode_length)
            raise DryRunFinished(describe_plan(self.args, prompts, weights, self.episode_length, steps))
        generated: list[Group] = []
        cancelled = 0  # streaming: prompts still in flight when the quotas were met

        def generate(counts: dict[str, int]) -> list[Group]:
            groups = self.generate_groups(counts, **generate_kwargs)
            generated.extend(groups)
            return groups

        if self.args.vllm.enable_sleep:
            self.call_engines("wake_up")
        started = time.perf_counter()
        try:
            if self.algo.request == "streaming" and self.sampler.ratio_preserving_next():
                groups, info, cancelled = self.stream_batch(weights, generated, **generate_kwargs)
            else:
                groups, info = self.sampler.build_batch(weights, generate)
        finally:
            if self.args.vllm.enable_sleep:
                self.call_engines("sleep")
        generation_seconds = time.perf_counter() - started  # generation and scoring; the core's share is tiny

        groups, trimmed = trim_to_multiple(groups, self.group_multiple)
        self.pending_rounds += info.accuracy_per_round
        pass_rate = 100.0 * sum(info.accepted.values()) / max(len(generated), 1)  # groups, not samples
        if not groups:
            self.skip_empty_batch(info, len(trimmed))
            return [], pass_rate, len(generated), False

        self.batches += 1
        episode_done = self.batches % self.episode_length == 0 or self.batches >= self.total_batches
        metrics = self.batch_metrics(weights, generated, info, pass_rate, groups, len(trimmed))
        metrics["mt/generation_seconds"] = generation_seconds
        metrics["mt/cancelled_groups"] = float(cancelled)
        logger.info(
            f"MT batch: {len(groups)} groups after {info.rounds} round(s) ({len(trimmed)} trimmed); "
            f"generated {info.generated}, accepted {info.accepted}, selected {info.selected}"
        )
        record = BatchRecord(metrics, self.pending_rounds)
        self.pending_rounds, self.skipped_since_last = [], 0
        experiences = [experience for group in groups for experience in group.payload]
        return MultiTaskBatch(experiences, record), pass_rate, len(generated), episode_done

    def weights_for_next_batch(self) -> dict[str, float]:
        """The weights after training step (batches so far - lag): the trainer has always applied that step
        by the time upstream lets the generator start this batch; the wait is a safeguard."""
        step = max(self.batches - self.lag, 0)
        for _ in range(WAIT_FOR_WEIGHTS_SECONDS * 10):
            weights = ray.get(self.weights_actor.weights_after.remote(step))
            if weights is not None:
                return weights
            time.sleep(0.1)
        raise RuntimeError(f"the trainer did not apply training step {step} in {WAIT_FOR_WEIGHTS_SECONDS} s")

    def skip_empty_batch(self, info: Any, trimmed: int) -> None:
        self.empty_batches += 1
        self.skipped_since_last += 1
        logger.warning(
            f"MT batch skipped (empty batch {self.empty_batches} of the run): {info.rounds} round(s) "
            f"accepted {sum(info.accepted.values())} group(s), {trimmed} of them trimmed to split over the "
            f"ranks (a multiple of {self.group_multiple}); generated {info.generated}"
        )
        if self.skipped_since_last >= MAX_CONSECUTIVE_EMPTY_BATCHES:
            raise RuntimeError(
                f"no batch to train on in {self.skipped_since_last} attempts in a row (each up to "
                f"--mt.max_rounds {self.algo.max_rounds} rounds): every generated group was zero-gradient "
                f"or too few were accepted to fill a multiple of {self.group_multiple} groups. Check the "
                "rewards (mt/<task>/accuracy), or raise --mt.max_rounds / --mt.oversample"
            )

    def generate_groups(self, counts: dict[str, int], **generate_kwargs: Any) -> list[Group]:
        """counts[task] fresh prompts per task through vLLM; one Group (N experiences) per prompt."""
        sent = self.dispatch(counts, **generate_kwargs)
        progress = tqdm(sent, desc=f"Generate {len(sent)} groups", leave=False)
        return [self.to_group(task, ray.get(ref), **generate_kwargs) for task, ref in progress]

    def dispatch(self, counts: dict[str, int], **generate_kwargs: Any) -> list[tuple[str, Any]]:
        """Send counts[task] fresh prompts per task to the vLLM engines: (task, object ref) per prompt."""
        tasks, rows = [], []
        for task, count in counts.items():
            for index in self.streams[task].take(count):
                tasks.append(task)
                rows.append(self.prompts_of_task[task][index])
        if not rows:
            return []
        refs = self._dispatch_prompts_to_vllm(
            [self.dataset.prompts[row] for row in rows],
            [self.dataset.labels[row] for row in rows],
            images=[self.dataset.images[row] for row in rows],
            **generate_kwargs,
        )
        return list(zip(tasks, refs, strict=True))

    def to_group(self, task: str, responses: list[dict], **generate_kwargs: Any) -> Group:
        experiences = [self._process_response_into_experience(r, **generate_kwargs) for r in responses]
        return Group(task, [reward_of(e) for e in experiences], payload=experiences)

    def stream_batch(
        self, weights: dict[str, float], generated: list[Group], **generate_kwargs: Any
    ) -> tuple[list[Group], Any, int]:
        """request=streaming (algo/stream.py): each task's prompts go out as the build asks for them and
        come back in any order; what is still in flight when the quotas are met is cancelled (vLLM aborts
        a request whose Ray task is cancelled): the batch, its BatchInfo and how many were cancelled."""
        build = StreamingBuild(self.sampler, weights)
        task_of: dict[Any, str] = {}  # object ref -> task, in flight

        def complete(refs: list[Any]) -> None:
            for ref in refs:
                group = self.to_group(task_of.pop(ref), ray.get(ref), **generate_kwargs)
                generated.append(group)
                build.completed(ref, group)

        while not build.done():
            for task, ref in self.dispatch(build.requests(), **generate_kwargs):
                build.submitted(task, ref)
                task_of[ref] = task
            if not task_of:
                raise RuntimeError(f"streaming build: nothing in flight and quotas open: {build.deficit()}")
            ready, rest = ray.wait(list(task_of), num_returns=1)
            if rest:  # and whatever else is in already
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            complete(ready)
        unfinished = build.abandon()
        for ref in unfinished:
            ray.cancel(ref)
        # settled (aborted or finished) before the engines are put to sleep or their weights change
        ray.wait(unfinished, num_returns=len(unfinished), timeout=WAIT_FOR_CANCELLED_SECONDS)
        groups, info = build.finish()
        return groups, info, len(unfinished)

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
        self,
        weights: dict[str, float],
        generated: list[Group],
        info: Any,
        pass_rate: float,
        groups: list[Group],
        trimmed: int,
    ) -> dict[str, float]:
        """The step's mt/* metrics: what the batch was built from and what it holds, per task."""
        accuracy = batch_accuracy(generated) if generated else {}
        metrics = {
            "mt/rounds": float(info.rounds),
            "mt/generated_groups": float(len(generated)),
            "mt/ideal_groups": info.ideal_generated,  # sum_k n_k / a_k, from the run's own acceptance rates
            "mt/overgeneration": len(generated) / info.ideal_generated if info.ideal_generated else 0.0,
            "mt/reused_groups": float(info.reused),
            "mt/reused_mean_age": info.reused_mean_age,
            "mt/pass_rate": pass_rate,
            "mt/shortfall": float(info.shortfall),
            "mt/trimmed_groups": float(trimmed),
            "mt/batch_groups": float(len(groups)),
            "mt/skipped_batches": float(self.skipped_since_last),
            "mt/empty_batches": float(self.empty_batches),
        }
        trained = {t: 0 for t in self.tasks}
        for group in groups:
            trained[group.task] += 1
        for task in self.tasks:
            metrics |= {
                f"mt/{task}/weight": weights[task],
                f"mt/{task}/batch_share": trained[task] / len(groups),
                f"mt/{task}/generated_groups": float(info.generated[task]),
                f"mt/{task}/accepted_groups": float(info.accepted[task]),
                f"mt/{task}/selected_groups": float(trained[task]),
                f"mt/{task}/rho": info.rho[task],
            }
            if task in accuracy:
                metrics[f"mt/{task}/accuracy"] = accuracy[task]
            if task in info.zero_gradient_rate:
                metrics[f"mt/{task}/zero_gradient_rate"] = info.zero_gradient_rate[task]
        return metrics


class LoaderWithGeneratorState:
    """Upstream's prompt loader, whose checkpoint state also holds the multi-task generator's.

    Upstream saves `prompts_dataloader.state_dict()` right after each batch is generated (sync: with the
    step's checkpoint; async: in the queue payload that travels with the batch) and restores it on
    resume, so the generator's state always belongs to the last batch that was trained."""

    def __init__(self, loader: Any, generator: MultiTaskSamplesGenerator) -> None:
        self.loader, self.generator = loader, generator

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        return iter(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def state_dict(self) -> dict[str, Any]:
        return {"upstream": self.loader.state_dict(), CHECKPOINT_KEY: self.generator.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if CHECKPOINT_KEY not in state:
            raise ValueError(
                "the checkpoint's prompt-loader state has no multi-task generator state: it was not "
                "written by openrlhf-mt train-ray (or by an older version); start a fresh run"
            )
        self.loader.load_state_dict(state["upstream"])
        self.generator.load_state_dict(state[CHECKPOINT_KEY])


def reward_of(experience: Any) -> float:
    """The training reward (1 / 0.1 / 0): what upstream's group advantage sees, so what the filter sees."""
    if experience.rewards is None:
        raise RuntimeError(
            "a rollout came back without a reward: set --reward.remote_url to a reward function "
            "(default: openrlhf_mt/tasks/openrlhf_reward.py)"
        )
    return float(experience.rewards.reshape(-1)[0])
