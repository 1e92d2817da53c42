"""IWU's improvement signal I_k, measured inside OpenRLHF's policy actor (MTGRPO_SPEC.md §2).

The released code records each sample's clipped surrogate objective before a PPO mini-batch's
optimizer step and recomputes it (no grad) after the step; I_k sums (after - before) over task k's
samples. Here, per optimizer-step window of upstream's `ActorPPOTrainer` (the micro-batches whose
gradients DeepSpeed accumulates into one step):

  before: taken from the very tensors upstream's loss sees (a wrapper around `actor_loss_fn`), so
          it costs nothing extra;
  after:  one extra no-grad forward per micro-batch of the window, once the window's step is done.

The per-sample objective is the token-mean of min(r·A, clip(r, 1-ε_low, 1+ε_high)·A) over the
response, with upstream's own ε_low/ε_high (`--actor.eps_clip_low_high`) and its old log-probs.
Per-task sums are all-reduced over the data-parallel ranks, then rank 0 sends them, with each task's mean
|A| (SEC's signal), to the TaskWeightActor. The objective is the core's `algo.loss.sample_objective`
(float64: I_k sums differences of nearly equal numbers), as in the local engine. Differences from the loss
upstream optimises: its KL and entropy terms are not part of the objective (the paper's KL weight is 0), nor
is `--actor.dual_clip` or its clamp of the log-ratio to ±20; with `--train.dynamic_batch_enable` the windows
are upstream's dynamic ones. The released code measures the same quantity per mini-batch; this is not an
approximation of it.
"""

from __future__ import annotations

from typing import Any

import ray
import torch

from openrlhf_mt.algo.loss import per_sample_mean, sample_objective
from openrlhf_mt.algo.signals import per_task_improvement, per_task_sum_and_count
from openrlhf_mt.tasks.base import decode_label


class ImprovementRecorder:
    """Installed on an upstream ActorPPOTrainer: wraps its loss function and training step."""

    def __init__(
        self, actor_trainer: Any, weights_actor: Any, tasks: list[str], measure_improvement: bool
    ) -> None:
        self.trainer = actor_trainer
        self.tasks = tasks
        self.measure_improvement = measure_improvement  # False: mean |A| only (SEC), no extra forward
        self.strategy = actor_trainer.strategy
        self.weights_actor = weights_actor
        self.clip_low, self.clip_high = actor_trainer.args.actor.eps_clip_low_high
        self.window: list[tuple[Any, torch.Tensor]] = []  # (experience, objective before) per micro-batch
        self.last_before: torch.Tensor | None = None
        self.upstream_loss = actor_trainer.actor_loss_fn
        self.upstream_step = actor_trainer.training_step
        actor_trainer.actor_loss_fn = self.loss_fn
        actor_trainer.training_step = self.training_step

    def loss_fn(
        self, log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, **kwargs: Any
    ):
        self.last_before = sample_objective(
            log_probs, old_log_probs, advantages, kwargs["action_mask"], self.clip_low, self.clip_high
        )
        return self.upstream_loss(log_probs, old_log_probs, advantages, **kwargs)

    def training_step(self, experience: Any, kl_ctl: float, step: int, loss_batch_info: Any = None) -> dict:
        status = self.upstream_step(experience, kl_ctl, step, loss_batch_info)
        self.window.append((experience, self.last_before))
        if self.closes_window(step):
            self.report_window()
        return status

    def closes_window(self, step: int) -> bool:
        """Whether micro-batch `step` was the last of an optimizer step (DeepSpeed's accumulation)."""
        if self.trainer.args.train.dynamic_batch_enable:
            return bool(self.trainer.replay_buffer.dynamic_optimizer_step[step])
        return (step + 1) % self.strategy.accumulated_gradient == 0

    @torch.no_grad()
    def report_window(self) -> None:
        tasks, before, after, magnitudes = [], [], [], []
        for experience, objective_before in self.window:
            if self.measure_improvement:
                before.append(objective_before)
                after.append(self.objective_after(experience))
            magnitudes.append(per_sample_mean(experience.advantages.abs().float(), experience.action_mask))
            tasks += [decode_label(label, where="experience label")["task"] for label in experience.labels]
        self.window = []
        improvement = per_task_improvement(tasks, torch.cat(before), torch.cat(after)) if before else {}
        abs_advantage = per_task_sum_and_count(tasks, torch.cat(magnitudes).double().cpu().numpy())
        signals = self.sum_over_ranks(improvement, abs_advantage)
        if self.strategy.is_rank_0():  # waited for, so the trainer's end_step() comes after it
            ray.get(self.weights_actor.observe_training.remote(*signals))

    def objective_after(self, experience: Any) -> torch.Tensor:
        actor = self.trainer.actor
        actor.eval()
        log_probs = actor(
            experience.sequences,
            experience.action_mask,
            attention_mask=experience.attention_mask,
            ring_attn_group=self.strategy.ring_attn_group,
        )
        actor.train()
        return sample_objective(
            log_probs,
            experience.action_log_probs,
            experience.advantages,
            experience.action_mask,
            self.clip_low,
            self.clip_high,
        )

    def sum_over_ranks(
        self, improvement: dict[str, float], abs_advantage: dict[str, tuple[float, int]]
    ) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
        """Per task, summed over the data-parallel ranks: I_k, the sum of |A| and the number of samples."""
        local = {}
        for t in self.tasks:  # every rank sends every task, so the all-reduce keys match
            total, count = abs_advantage.get(t, (0.0, 0))
            local[f"improvement/{t}"] = improvement.get(t, 0.0)
            local[f"abs_advantage_sum/{t}"] = total
            local[f"count/{t}"] = float(count)
        summed = self.strategy.all_reduce(local, op="sum") if self.strategy.world_size > 1 else local
        present = [t for t in self.tasks if summed[f"count/{t}"] > 0]
        return (
            {t: summed[f"improvement/{t}"] for t in present} if self.measure_improvement else {},
            {t: summed[f"abs_advantage_sum/{t}"] for t in present},
            {t: round(summed[f"count/{t}"]) for t in present},
        )
