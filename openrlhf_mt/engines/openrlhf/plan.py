"""The resolved plan of a train-ray run: tasks, weights, batch sizes, rounds, GPU split (--mt.dry_run),
and the batch layout over the data-parallel ranks (checked before anything starts)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from openrlhf_mt.config import ConfigError


class DryRunFinished(Exception):
    """Raised at the first batch under --mt.dry_run, carrying the plan; the command prints it, exits 0."""


@dataclass
class GpuSplit:
    actor: int
    reference: int
    critic: int
    reward: int
    vllm: int
    colocated: bool

    @property
    def total(self) -> int:
        """GPUs the Ray placement asks for (colocated models share the actor's)."""
        if self.colocated:
            return max(self.actor, self.vllm)
        return self.actor + self.reference + self.critic + self.reward + self.vllm

    def describe(self) -> str:
        parts = [f"actor {self.actor}", f"reference {self.reference}", f"vLLM {self.vllm}"]
        if self.critic:
            parts.append(f"critic {self.critic}")
        if self.reward:
            parts.append(f"reward model {self.reward}")
        return ", ".join(parts) + (" (colocated)" if self.colocated else "") + f" = {self.total} GPUs"


def gpu_split(args: Any) -> GpuSplit:
    """The GPUs each model takes under upstream's placement rules (OpenRLHF's hierarchical args)."""

    def ranks(section: Any) -> int:
        return section.num_nodes * section.num_gpus_per_node

    return GpuSplit(
        actor=ranks(args.actor),
        reference=ranks(args.ref) if args.algo.kl.init_coef > 0 else 0,
        critic=ranks(args.critic) if args.critic.model_name_or_path else 0,
        reward=ranks(args.reward) if args.reward.model_name_or_path and not args.reward.remote_url else 0,
        vllm=(args.vllm.num_engines or 0) * args.vllm.tensor_parallel_size,
        colocated=bool(args.train.colocate_all),
    )


@dataclass(frozen=True)
class BatchLayout:
    """How a batch splits over the DeepSpeed ranks that hold different samples.

    Each of the `data_parallel` ranks must get the same number of samples, in whole training
    micro-batches, or the ranks disagree on how many collectives a step runs (a hang). So a batch's
    sample count must be a multiple of `samples_multiple`, and a batch of groups of N samples a
    multiple of `group_multiple` groups (short batches are trimmed to one, generator.py).
    """

    data_parallel: int
    train_micro_batch: int
    samples_per_group: int

    @property
    def samples_multiple(self) -> int:
        return self.data_parallel * self.train_micro_batch

    @property
    def group_multiple(self) -> int:
        return self.samples_multiple // math.gcd(self.samples_multiple, self.samples_per_group)


def batch_layout(args: Any) -> BatchLayout:
    """The layout of this run's batches (OpenRLHF's hierarchical args)."""
    replicas = args.ds.ring_attn_size * args.ds.tensor_parallel_size  # ranks that share their samples
    return BatchLayout(
        data_parallel=args.actor.num_nodes * args.actor.num_gpus_per_node // replicas,
        train_micro_batch=args.train.micro_batch_size,
        samples_per_group=args.rollout.n_samples_per_prompt,
    )


# upstream's size flags and their smallest values
MINIMUM_SIZES = {
    "actor.num_nodes": 1,
    "actor.num_gpus_per_node": 1,
    "ds.ring_attn_size": 1,
    "ds.tensor_parallel_size": 1,
    "rollout.batch_size": 1,
    "rollout.n_samples_per_prompt": 1,  # upstream requires 2 for group_norm, with its own message
    "rollout.micro_batch_size": 1,
    "train.batch_size": 1,
    "train.micro_batch_size": 1,
    "train.num_episodes": 1,
    "train.max_epochs": 1,
}


def check_upstream_values(args: Any) -> None:
    """Refuse, before anything starts, upstream settings MT-GRPO cannot train with: sizes below their
    minimum, a learning rate, clip range, temperature or top-p out of range, a NaN anywhere among them."""
    for flag, minimum in MINIMUM_SIZES.items():
        section, name = flag.split(".")
        value = getattr(getattr(args, section), name)
        if value < minimum:
            raise ConfigError(f"{flag}: {value} is below the minimum {minimum}")
    checks = [
        ("actor.adam.lr", args.actor.adam.lr, lambda v: v > 0, "must be a number > 0"),
        ("rollout.temperature", args.rollout.temperature, lambda v: v > 0, "must be a number > 0"),
        ("rollout.top_p", args.rollout.top_p, lambda v: 0 < v <= 1, "must be in (0, 1]"),
    ]
    low_high = list(args.actor.eps_clip_low_high)
    if len(low_high) != 2:
        raise ConfigError(f"actor.eps_clip_low_high: expected two numbers (low high), got {low_high}")
    checks.append(("actor.eps_clip_low_high (low)", low_high[0], lambda v: 0 <= v < 1, "must be in [0, 1)"))
    checks.append(("actor.eps_clip_low_high (high)", low_high[1], lambda v: v >= 0, "must be a number >= 0"))
    for flag, value, ok, allowed in checks:
        if not (math.isfinite(value) and ok(value)):
            raise ConfigError(f"{flag}: {value!r} {allowed}")


def check_batch_layout(args: Any) -> None:
    """Refuse, before anything starts, a configuration whose full batch cannot split evenly over the ranks."""
    layout = batch_layout(args)
    ranks = (
        f"{layout.data_parallel} data-parallel rank(s) (--actor.num_nodes {args.actor.num_nodes} x "
        f"--actor.num_gpus_per_node {args.actor.num_gpus_per_node}"
        + (
            f" / (--ds.ring_attn_size {args.ds.ring_attn_size} x --ds.tensor_parallel_size "
            f"{args.ds.tensor_parallel_size}))"
            if args.ds.ring_attn_size * args.ds.tensor_parallel_size > 1
            else ")"
        )
    )
    if layout.data_parallel < 1:
        raise ConfigError(f"actor.num_gpus_per_node: {ranks} is less than one")
    if args.train.batch_size % layout.samples_multiple:
        raise ConfigError(
            f"train.batch_size: {args.train.batch_size} samples per optimizer step do not split over {ranks} "
            f"in micro-batches of --train.micro_batch_size {layout.train_micro_batch}: use a multiple of "
            f"{layout.samples_multiple}"
        )
    batch, n = args.rollout.batch_size, layout.samples_per_group
    if (batch * n) % layout.samples_multiple:
        valid = batch + (-batch) % layout.group_multiple
        raise ConfigError(
            f"rollout.batch_size: --rollout.batch_size {batch} x --rollout.n_samples_per_prompt {n} = "
            f"{batch * n} samples do not split evenly over {ranks} in micro-batches of "
            f"--train.micro_batch_size {layout.train_micro_batch} (a multiple of {layout.samples_multiple} "
            f"samples is needed): use --rollout.batch_size {valid} (any multiple of "
            f"{layout.group_multiple}), or a smaller --train.micro_batch_size"
        )


def describe_plan(
    args: Any,
    prompts_per_task: dict[str, int],
    weights: dict[str, float],
    episode_length: int,
    scheduler_steps: int,
) -> str:
    algo, mt = args.mt.algo, args.mt
    batch, n = args.rollout.batch_size, args.rollout.n_samples_per_prompt
    refill = (
        "none (GRPO: one round)"
        if algo.filter_mode == "none"
        else ("ratio-preserving (RPS+AAS)" if algo.preserve_ratio else "task-blind (DAPO)")
    )
    lines = [
        f"method {mt.method}: weighter {algo.weighter}, filter {algo.filter_mode}, refill {refill}, "
        f"signal {algo.signal_source}, weight update per {algo.update_every}, clip ({algo.clip_low}, "
        f"{algo.clip_high}) -> --actor.eps_clip_low_high {tuple(args.actor.eps_clip_low_high)}",
        "tasks (prompts, initial weight): "
        + ", ".join(f"{t} ({prompts_per_task[t]}, {weights[t]:.3f})" for t in prompts_per_task),
        f"batch: {batch} prompts x {n} rollouts = {batch * n} samples after filtering; a round generates "
        f"{round(algo.oversample * batch)} prompts (oversample {algo.oversample}), "
        f"at most {algo.max_rounds} rounds",
        f"PPO: mini-batches of {args.train.batch_size} samples, "
        f"micro-batches of {args.train.micro_batch_size}, {args.train.max_epochs} epoch(s) per batch",
        f"ranks: {batch_layout(args).data_parallel} data-parallel; a short batch is trimmed to a multiple "
        f"of {batch_layout(args).group_multiple} group(s)",
        f"steps: {episode_length} per episode x {args.train.num_episodes} episode(s); "
        f"LR scheduler steps {scheduler_steps}",
        f"GPU split: {gpu_split(args).describe()}",
        f"checkpoints: {args.ckpt.path} every {args.ckpt.save_steps} steps; resume: {args.ckpt.load_enable}",
    ]
    return "openrlhf-mt train-ray plan (dry run: stopped before the first rollout)\n  " + "\n  ".join(lines)
