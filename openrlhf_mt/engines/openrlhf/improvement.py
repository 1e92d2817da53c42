"""Optimizer-step windows and IWU's improvement signal I_k in OpenRLHF's policy actor (MTGRPO_SPEC.md §2).

OptimizerWindows (installed on every run) makes each optimizer step of upstream's `ActorPPOTrainer` an
explicit window: the micro-batches of one step are the next `accumulated_gradient` ones, and the last
window of an epoch may be shorter (a short batch). Upstream leaves the step boundary to DeepSpeed's own
micro-step counter, which a short window moves off the windows for the rest of the run (and whose
gradients then leak into the next batch's first step); here the boundary is set explicitly before each
micro-batch (`set_gradient_accumulation_boundary`), so DeepSpeed steps exactly at the window ends that
upstream's loss normalisation (`iter_grad_accum_global_norm`) already assumes. Every data-parallel rank
holds the same number of micro-batches (the generator's batches split evenly, generator.py), so all
ranks cross the same boundaries.

ImprovementRecorder (weighters that learn) listens to the windows. The released code records each
sample's clipped surrogate objective before a PPO mini-batch's optimizer step and recomputes it (no
grad) after the step; I_k sums (after - before) over task k's samples. Here, per window:

  before: taken from the very tensors upstream's loss sees (a wrapper around `actor_loss_fn`), so
          it costs nothing extra;
  after:  one extra no-grad forward per micro-batch of the window, once the window's step is done;
          with `--mt.improvement_fraction` f < 1, only on ceil(f N_k) of each task's N_k samples of the
          window on this rank (drawn by the core's `improvement_sample`, weighted back to an unbiased
          I_k). Every micro-batch is still forwarded, on at least one row: under ZeRO-3 a forward
          gathers parameters collectively, so every rank must make the same number of them.

The per-sample objective is the token-mean of min(r·A, clip(r, 1-ε_low, 1+ε_high)·A) over the
response, with upstream's own ε_low/ε_high (`--actor.eps_clip_low_high`) and its old log-probs.
Per-task sums (I_k, SEC's |A| and sample counts) are summed over the data-parallel group only, in
float64, in one all-reduce: with ring attention or tensor parallelism several ranks hold the same
samples, and a sum over the whole world would count them ring x tp times. The windows' signals leave
the actor with its `fit` status; the trainer hands them to the TaskWeightActor. The objective is the
core's `algo.loss.sample_objective` (float64: I_k sums differences of nearly equal numbers), as in the
local engine. Differences from the loss upstream optimises: its KL and entropy terms are not part of the
objective (the paper's KL weight is 0), nor is `--actor.dual_clip` or its clamp of the log-ratio to ±20.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist

from openrlhf_mt.algo.loss import per_sample_mean, sample_objective
from openrlhf_mt.algo.signals import improvement_sample, per_task_improvement, per_task_sum_and_count
from openrlhf_mt.tasks.base import decode_label

# The key under which the policy actor's fit status carries the step's windows to the trainer.
SIGNALS_KEY = "openrlhf_mt/windows"


class WindowListener(Protocol):
    def micro_batch_done(self, experience: Any, closes_window: bool) -> None: ...


class OptimizerWindows:
    """Installed on an upstream ActorPPOTrainer: explicit optimizer-step windows (see the module doc)."""

    def __init__(self, actor_trainer: Any) -> None:
        self.trainer = actor_trainer
        self.dynamic = bool(actor_trainer.args.train.dynamic_batch_enable)
        self.listeners: list[WindowListener] = []
        self.micro_batches_per_epoch = 0
        self.optimizer_steps = 0
        self.upstream_train = actor_trainer.ppo_train
        self.upstream_step = actor_trainer.training_step
        actor_trainer.ppo_train = self.ppo_train
        actor_trainer.training_step = self.training_step

    def ppo_train(self, kl_ctl: float) -> dict:
        if not self.dynamic:
            buffer = self.trainer.replay_buffer
            micro, remainder = divmod(len(buffer), buffer.sample_batch_size)
            if remainder:  # upstream's loader would drop them; the generator's batch split rules it out
                raise RuntimeError(
                    f"this rank holds {len(buffer)} samples, not a multiple of the training micro-batch "
                    f"{buffer.sample_batch_size}: {remainder} would be dropped"
                )
            self.micro_batches_per_epoch = micro
        self.optimizer_steps = 0
        status = self.upstream_train(kl_ctl)
        status["mt/optimizer_steps"] = float(self.optimizer_steps)
        return status

    def closes_window(self, step: int) -> bool:
        """Whether micro-batch `step` (counted per epoch) ends an optimizer step."""
        if self.dynamic:
            return bool(self.trainer.replay_buffer.dynamic_optimizer_step[step])
        gas = self.trainer.strategy.accumulated_gradient
        return (step + 1) % gas == 0 or step + 1 == self.micro_batches_per_epoch

    def training_step(self, experience: Any, kl_ctl: float, step: int, loss_batch_info: Any = None) -> dict:
        closes = self.closes_window(step)
        if not self.dynamic:  # dynamic batches: upstream steps by its own schedule, which we read above
            self.trainer.actor.model.set_gradient_accumulation_boundary(closes)
        status = self.upstream_step(experience, kl_ctl, step, loss_batch_info)
        self.optimizer_steps += closes
        for listener in self.listeners:
            listener.micro_batch_done(experience, closes)
        return status


class ImprovementRecorder:
    """Listens to the optimizer windows: per window, I_k (if measured), and each task's |A| sum and count."""

    def __init__(
        self,
        windows: OptimizerWindows,
        tasks: Sequence[str],
        measure_improvement: bool,
        improvement_fraction: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.windows = windows
        self.trainer = windows.trainer
        self.strategy = self.trainer.strategy
        self.tasks = list(tasks)
        self.measure_improvement = measure_improvement  # False: |A| only (SEC), no extra forward
        self.improvement_fraction = improvement_fraction
        # Which rows are re-forwarded: drawn per data-parallel rank, so that the ranks holding the same
        # samples (ring attention, tensor parallelism) forward the same rows.
        group = data_parallel_group(self.strategy)
        self.rng = np.random.default_rng((seed, dist.get_rank(group) if group is not None else 0))
        self.clip_low, self.clip_high = self.trainer.args.actor.eps_clip_low_high
        self.open_window: list[tuple[Any, torch.Tensor | None]] = []  # (experience, objective before)
        self.closed_windows: list[tuple[dict, dict, dict]] = []
        self.last_before: torch.Tensor | None = None
        self.upstream_loss = self.trainer.actor_loss_fn
        self.trainer.actor_loss_fn = self.loss_fn
        windows.listeners.append(self)

    def loss_fn(
        self, log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, **kwargs: Any
    ):
        if self.measure_improvement:
            self.last_before = sample_objective(
                log_probs, old_log_probs, advantages, kwargs["action_mask"], self.clip_low, self.clip_high
            )
        return self.upstream_loss(log_probs, old_log_probs, advantages, **kwargs)

    def micro_batch_done(self, experience: Any, closes_window: bool) -> None:
        self.open_window.append((experience, self.last_before))
        if closes_window:
            self.closed_windows.append(self.close_window())

    def take_windows(self) -> list[tuple[dict, dict, dict]]:
        """The signals of the windows closed since the last call (the training step's)."""
        if self.open_window:
            raise RuntimeError(
                f"a training step ended inside an optimizer window ({len(self.open_window)} micro-batches "
                "not stepped): the windows and DeepSpeed's optimizer steps disagree"
            )
        windows, self.closed_windows = self.closed_windows, []
        return windows

    @torch.no_grad()
    def close_window(self) -> tuple[dict, dict, dict]:
        experiences = [experience for experience, _ in self.open_window]
        tasks = [
            decode_label(label, where="experience label")["task"]
            for experience in experiences
            for label in experience.labels
        ]
        magnitudes = [per_sample_mean(e.advantages.abs().float(), e.action_mask) for e in experiences]
        improvement = {}
        if self.measure_improvement:
            before = torch.cat([objective_before for _, objective_before in self.open_window])
            kept = improvement_sample(tasks, self.improvement_fraction, self.rng)
            rows_per_part = kept.rows_per_part([len(e.labels) for e in experiences])
            after = [
                self.objective_after(e, rows) for e, rows in zip(experiences, rows_per_part, strict=True)
            ]
            improvement = per_task_improvement(tasks, before, torch.cat(after), kept)
        self.open_window = []
        abs_advantage = per_task_sum_and_count(tasks, torch.cat(magnitudes).double().cpu().numpy())
        return self.sum_over_data_parallel(improvement, abs_advantage)

    def objective_after(self, experience: Any, rows: np.ndarray) -> torch.Tensor:
        """The per-sample objective under the stepped policy of the micro-batch's `rows` (ascending). With
        no row kept, row 0 is still forwarded (every rank must forward, see the module doc), then dropped."""
        if len(rows) < len(experience.labels):  # a share of the micro-batch (fraction < 1)
            index = torch.from_numpy(rows if len(rows) else np.zeros(1, dtype=np.int64))
            index = index.to(experience.sequences.device)
            fields = ("sequences", "action_mask", "attention_mask", "action_log_probs", "advantages")
            experience = SimpleNamespace(**{name: getattr(experience, name)[index] for name in fields})
        actor = self.trainer.actor
        actor.eval()
        log_probs = actor(
            experience.sequences,
            experience.action_mask,
            attention_mask=experience.attention_mask,
            ring_attn_group=self.strategy.ring_attn_group,
        )
        actor.train()
        objective = sample_objective(
            log_probs,
            experience.action_log_probs,
            experience.advantages,
            experience.action_mask,
            self.clip_low,
            self.clip_high,
        )
        return objective[: len(rows)]

    def sum_over_data_parallel(
        self, improvement: dict[str, float], abs_advantage: dict[str, tuple[float, int]]
    ) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
        """Per task, summed over the data-parallel ranks: I_k, the sum of |A| and the number of samples."""
        local = torch.zeros(3, len(self.tasks), dtype=torch.float64)
        for k, task in enumerate(self.tasks):  # every rank sends every task, so the vectors line up
            total, count = abs_advantage.get(task, (0.0, 0))
            local[:, k] = torch.tensor([improvement.get(task, 0.0), total, count], dtype=torch.float64)
        group = data_parallel_group(self.strategy)
        if group is not None:  # NCCL reduces device tensors only
            local = local.to(torch.cuda.current_device() if torch.cuda.is_available() else "cpu")
            dist.all_reduce(local, op=dist.ReduceOp.SUM, group=group)
        summed_improvement, summed_abs, summed_count = local.cpu().tolist()
        present = [k for k, task in enumerate(self.tasks) if summed_count[k] > 0]
        return (
            {self.tasks[k]: summed_improvement[k] for k in present} if self.measure_improvement else {},
            {self.tasks[k]: summed_abs[k] for k in present},
            {self.tasks[k]: round(summed_count[k]) for k in present},
        )


def data_parallel_group(strategy: Any) -> Any:
    """The ranks that hold different samples (upstream's "dp" mesh dimension); None on a single process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return strategy.ds_device_mesh["dp"].get_group()
