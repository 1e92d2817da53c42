"""The single-machine MT-GRPO trainer (MTGRPO_SPEC.md §4, Algorithm 1), driving the engine-free core.

One step:
  1. z = weighter.weights(); the sampler builds a batch through `generate(counts)`, which draws counts[k]
     prompts from task k's stream, samples N rollouts each (KV cache) and scores them with the task.
     Every generation round also feeds J_k (EMA of the pre-filter batch accuracy) and SEC's mean |Â|.
  2. Group-normalised advantages (algo.advantages); the batch is split into PPO mini-batches, their old
     log-probs computed once, before any update.
  3. Per mini-batch: clipped surrogate (token-mean) -> AdamW step; with IWU the per-sample objective is
     recomputed after the step and I_k = Σ (after − before) per task (algo.signals); the weighter steps
     once per mini-batch or once per step (`algo.update_every`).
  4. Every `eval.every` steps: mean@k accuracy on held-out prompts per task (a paper task's are the
     paper's test rows when `eval.paper_test` is set, else generated ones); metrics; checkpoints.

What a run survives (docs/reliability.md): an output directory that is not writable or has no room for its
checkpoints, and an unknown task or a paper task missing from the test files, stop it before any model
loads; SIGTERM / SIGINT finish the step, write a checkpoint and stop (`stopped_by`); a SIGKILL loses at most
the steps since the last checkpoint, which `--resume` redoes exactly. A reward function that raises or
returns NaN/inf, a mini-batch whose loss or gradient is not finite (skipped, never applied), a task whose
groups are all zero-gradient step after step, a task whose prompts run out (a reshuffled pass), an eval set
that cannot be read (generated prompts instead): the run goes on, each is counted in the metrics
(faults/*, train/<task>/zero_gradient_streak, data/<task>/passes) and logged once with its cause.

Everything algorithmic (weights, batch building and filtering, advantages, J/I/|Â| signals) comes from
openrlhf_mt.algo; prompts and rewards from openrlhf_mt.tasks. This file only adapts them to torch.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from openrlhf_mt.algo.advantages import group_advantages
from openrlhf_mt.algo.filters import is_zero_gradient
from openrlhf_mt.algo.health import ZeroGradientStreaks
from openrlhf_mt.algo.loss import sample_objective
from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.algo.signals import (
    RewardEMA,
    improvement_sample,
    per_task_improvement,
    per_task_sum_and_count,
)
from openrlhf_mt.algo.types import Group
from openrlhf_mt.algo.updates import WeightUpdates
from openrlhf_mt.algo.weights import make_weighter
from openrlhf_mt.config import RunConfig, to_dict
from openrlhf_mt.engines.local.checkpoint import (
    check_free_space,
    check_writable,
    checkpoint_candidates,
    checkpoint_step,
    load_state,
    save_checkpoint,
)
from openrlhf_mt.engines.local.faults import FaultLog, StopSignals
from openrlhf_mt.engines.local.logger import MetricsLogger
from openrlhf_mt.engines.local.loss import LossOutput, policy_loss
from openrlhf_mt.engines.local.model import BUILTIN_TINY, load_policy, parameter_count, resolve_device
from openrlhf_mt.engines.local.rollout import TokenBatch, pack, response_logprobs, sample, score_responses
from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.base import MissingTaskData, Row, TaskDataError
from openrlhf_mt.tasks.guard import ScoreGuard
from openrlhf_mt.tasks.streams import PromptStream, paper_test_rows, split_rows


@dataclass
class Rollouts:
    """The payload of one Group: a prompt's token ids and its N sampled responses."""

    prompt: list[int]
    responses: list[list[int]]


@dataclass
class Sample:
    task: str
    prompt: list[int]
    response: list[int]
    advantage: float


def mean_standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of independent values: sample std (ddof 1) / sqrt(n); 0 for one value."""
    if len(values) < 2:
        return 0.0
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


class PhaseClock:
    """Wall seconds per phase of a step, exclusive: entering a phase pauses the enclosing one, so the phases
    of a step add up (time/<phase>_s: generate, score, core, train, improvement)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._mark = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._mark
        self._stack.append(name)
        self._mark = now
        try:
            yield
        finally:
            now = time.perf_counter()
            self.seconds[self._stack.pop()] += now - self._mark
            self._mark = now


class LocalTrainer:
    def __init__(self, cfg: RunConfig, resume: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        # everything that can be wrong with the setup fails here, before any model loads or warms up
        check_writable(self.out, "out")
        check_writable(self.out / "checkpoints", "out")
        if cfg.model.threads:
            torch.set_num_threads(cfg.model.threads)
        torch.manual_seed(cfg.seed)
        self.task_names = list(cfg.data.tasks)
        if len(set(self.task_names)) != len(self.task_names):
            raise ValueError(f"data.tasks: a task is listed twice: {self.task_names}")
        self.tasks = {name: get_task(name) for name in self.task_names}
        if cfg.algo.request == "streaming":
            raise ValueError(
                "algo.request=streaming needs an engine that generates asynchronously (train-ray, vLLM); "
                "the local engine generates in rounds: use algo.request=adaptive"
            )
        self.faults = FaultLog()
        self.score_guard = ScoreGuard()
        self.device, dtype = resolve_device(cfg.model.device, cfg.model.dtype)
        self._check_free_space(dtype)
        paper_rows = self._paper_test_rows()
        self.train_rows, self.eval_rows, self.eval_sources = {}, {}, {}
        for name, task in self.tasks.items():
            train, held_out = split_rows(
                task, cfg.data.train_size, cfg.data.eval_size, cfg.data_seed, paper_rows.get(name)
            )
            self.train_rows[name], self.eval_rows[name] = train, held_out
            self.eval_sources[name] = {
                "source": cfg.eval.paper_test if name in paper_rows else "generated",
                "eval_prompts": len(held_out),
                "train_prompts_removed_as_eval": cfg.data.train_size - len(train),
            }

        self.init_path = self._model_path(paper_rows)
        self.policy = load_policy(self.init_path, self.device, dtype)
        self.model, self.tokenizer = self.policy.model, self.policy.tokenizer
        self.reference = None
        if cfg.train.kl_coef > 0:
            self.reference = load_policy(self.init_path, self.device, dtype).model.eval()
        self.prompt_ids = {
            name: self.tokenizer([row["prompt"] for row in rows])["input_ids"]
            for name, rows in self.train_rows.items()
        }
        self.eval_prompt_ids = {
            name: self.tokenizer([row["prompt"] for row in rows])["input_ids"]
            for name, rows in self.eval_rows.items()
        }
        self.streams = {
            name: PromptStream(len(self.train_rows[name]), cfg.seed, i)
            for i, name in enumerate(self.task_names)
        }

        algo = cfg.algo
        self.weighter = make_weighter(algo.weighter, self.task_names, **algo.weighter_kwargs())
        self.weight_updates = WeightUpdates(self.weighter, self._reward_signal, algo.update_every)
        self.sampler = RatioPreservingSampler(
            self.task_names, cfg.rollout.prompts_per_step, seed=cfg.seed, **algo.sampler_kwargs()
        )
        self.reward_ema = RewardEMA(self.task_names, decay=algo.j_ema_decay)
        self.zero_gradient_streaks = ZeroGradientStreaks(self.task_names)
        self.eval_accuracy: dict[str, float] = {}

        beta1, beta2 = cfg.train.adam_betas  # two numbers in [0, 1): checked by the config
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=cfg.train.lr,
            betas=(beta1, beta2),
            weight_decay=cfg.train.weight_decay,
        )
        total_updates = max(1, cfg.train.steps * cfg.train.mini_batches)
        cosine = cfg.train.lr_schedule == "cosine"
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda i: (
                0.5 * (1 + math.cos(math.pi * min(i, total_updates) / total_updates)) if cosine else 1.0
            ),
        )
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.step = 0
        self.initial_eval_done = False
        self.best_worst_accuracy = -1.0
        self.stopped_by: str | None = None  # the signal that stopped the run before train.steps

        resume_step = None
        if resume:
            self._resume(self.out / "checkpoints" / "last")
            resume_step = self.step
        (self.out / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        (self.out / "eval_sources.json").write_text(json.dumps(self.eval_sources, indent=2) + "\n")
        self.logger = MetricsLogger(self.out, cfg, resume_step)

    def _model_path(self, paper_rows: dict[str, list[Row]]) -> Path:
        if self.cfg.model.path == BUILTIN_TINY:
            from openrlhf_mt.engines.local.warmup import warmed_up_tiny

            return warmed_up_tiny(self.cfg, paper_rows)
        return Path(self.cfg.model.path).expanduser()

    def _check_free_space(self, dtype: torch.dtype) -> None:
        """Refuse to start where the checkpoints will not fit: last, best and the one being written."""
        path = self.cfg.model.path
        parameters = parameter_count(path if path == BUILTIN_TINY else Path(path).expanduser())
        checkpoint_bytes = 3 * parameters * dtype.itemsize + (1 << 20)  # tokenizer, RNG and core states
        kept = "last, best" if self.cfg.checkpoint.keep_best else "last"
        why = (
            f"{kept} and the one being written; {parameters:,} parameters x {dtype.itemsize} bytes x 3 for "
            "the weights and AdamW's two moments"
        )
        check_free_space(self.out / "checkpoints", checkpoint_bytes, 2 + self.cfg.checkpoint.keep_best, why)

    def _paper_test_rows(self) -> dict[str, list[Row]]:
        """The paper's test rows of the paper tasks (`eval.paper_test`). A paper task the files lack is an
        error (MissingTaskData); files that cannot be read (or hold a bad row): the run evaluates on generated
        prompts instead, counted and logged; with `data.skip_bad_rows`, bad rows are left out, counted."""
        skipped: list[TaskDataError] = []
        try:
            rows = paper_test_rows(
                self.cfg.eval.paper_test,
                self.task_names,
                skipped.append if self.cfg.data.skip_bad_rows else None,
            )
        except MissingTaskData:
            raise
        except TaskDataError as error:
            self.faults.count("eval_load_failed")
            self.faults.warn_once(
                "eval_load_failed",
                f"eval.paper_test: {error}; evaluating on generated prompts instead (faults/eval_load_"
                "failed)",
            )
            return {}
        if skipped:
            self.faults.count("eval_rows_skipped", len(skipped))
            self.faults.warn_once(
                "eval_rows_skipped",
                f"eval.paper_test: skipped {len(skipped)} bad row(s) (data.skip_bad_rows; faults/eval_rows_"
                f"skipped); the first: {skipped[0]}",
            )
        return rows

    # -- rollouts ----------------------------------------------------------------------------------------

    def _sample(
        self, prompts: list[list[int]], n: int, temperature: float, generator: torch.Generator
    ) -> list[list[int]]:
        """n responses per prompt (prompt-major), at most `rollout.chunk_size` sequences at a time."""
        chunk = max(1, self.cfg.rollout.chunk_size // n)
        responses = []
        for start in range(0, len(prompts), chunk):
            responses += sample(
                self.model,
                prompts[start : start + chunk],
                n=n,
                eos_id=self.tokenizer.eos_token_id,
                pad_id=self.tokenizer.pad_token_id,
                max_new_tokens=self.cfg.rollout.max_new_tokens,
                temperature=temperature,
                top_p=self.cfg.rollout.top_p,
                generator=generator,
            )
        return responses

    def generate(self, counts: dict[str, int]) -> list[Group]:
        """The sampler's callback: counts[task] fresh prompts per task, N scored rollouts each."""
        n = self.cfg.rollout.rollouts_per_prompt
        self.model.eval()
        groups = []
        for task, count in counts.items():
            indices = self.streams[task].take(count)
            if self.streams[task].epoch:
                self.faults.warn_once(
                    f"prompts_reused/{task}",
                    f"task {task}: all {len(self.train_rows[task])} training prompts used; continuing with "
                    f"reshuffled passes over them (data/{task}/passes counts them; data.train_size sets how "
                    "many there are)",
                )
            prompts = [self.prompt_ids[task][i] for i in indices]
            labels = [self.train_rows[task][i]["label"] for i in indices]
            with self.clock.phase("generate"):
                responses = self._sample(prompts, n, self.cfg.rollout.temperature, self.generator)
            labels = [label for label in labels for _ in range(n)]
            with self.clock.phase("score"):
                rewards = score_responses(
                    self.tokenizer, self.tasks[task], responses, labels, train=True, guard=self.score_guard
                )
            for j, prompt in enumerate(prompts):
                rollouts = Rollouts(prompt, responses[j * n : (j + 1) * n])
                groups.append(Group(task, rewards[j * n : (j + 1) * n], payload=rollouts))
        self.step_groups += groups
        return groups

    # -- policy update -----------------------------------------------------------------------------------

    def _micro_batches(self, samples: list[Sample]) -> list[tuple[list[Sample], TokenBatch]]:
        """A mini-batch as packed micro-batches: one task at a time (tasks' prompt lengths differ a lot,
        so mixing them mostly adds padding), at most `train.micro_batch_size` sequences each."""
        size = self.cfg.train.micro_batch_size or len(samples)
        pad = self.tokenizer.pad_token_id
        parts = []
        for task in self.task_names:
            mine = [s for s in samples if s.task == task]
            parts += [mine[i : i + size] for i in range(0, len(mine), size)]
        return [
            (part, pack([s.prompt for s in part], [s.response for s in part], pad, self.device))
            for part in parts
        ]

    def _objective(
        self,
        micro: list[tuple[list[Sample], TokenBatch]],
        old: list[torch.Tensor],
        rows_per_part: list[np.ndarray],
    ) -> torch.Tensor:
        """I_k's "after": the clipped-surrogate objective of each micro-batch's kept rows under the stepped
        policy (no grad; eval mode, as the OpenRLHF engine measures it)."""
        self.model.eval()
        after = []
        with torch.no_grad():
            for (samples, batch), o, rows in zip(micro, old, rows_per_part, strict=True):
                if len(rows) == 0:
                    continue
                if len(rows) < len(samples):
                    index = torch.from_numpy(rows)
                    samples, batch, o = [samples[i] for i in rows], batch.select(index), o[index]
                after.append(
                    sample_objective(
                        response_logprobs(self.model, batch, self.cfg.rollout.temperature),
                        o,
                        self._advantages(samples),
                        batch.response_mask,
                        self.cfg.algo.clip_low,
                        self.cfg.algo.clip_high,
                    )
                )
        self.model.train()
        return torch.cat(after)

    def _advantages(self, samples: list[Sample]) -> torch.Tensor:
        return torch.tensor([s.advantage for s in samples], dtype=torch.float32, device=self.device)

    def _loss(
        self,
        samples: list[Sample],
        batch: TokenBatch,
        old: torch.Tensor,
        tokens: float | None,
        ref: torch.Tensor | None = None,
    ) -> LossOutput:
        return policy_loss(
            response_logprobs(self.model, batch, self.cfg.rollout.temperature),
            old,
            self._advantages(samples),
            batch.response_mask,
            clip_low=self.cfg.algo.clip_low,
            clip_high=self.cfg.algo.clip_high,
            token_count=tokens,
            ref_logprobs=ref,
            kl_coef=self.cfg.train.kl_coef,
        )

    def update_policy(self, groups: list[Group]) -> dict[str, float]:
        """PPO mini-batch updates on the batch; IWU signals per mini-batch. Returns train metrics."""
        cfg = self.cfg
        if not groups:
            return {}
        with self.clock.phase("core"):
            advantages = group_advantages(np.array([group.rewards for group in groups], dtype=np.float64))
        samples = [
            Sample(group.task, group.payload.prompt, response, float(a))
            for group, group_advantage in zip(groups, advantages.tolist(), strict=True)
            for response, a in zip(group.payload.responses, group_advantage, strict=True)
        ]
        # groups arrive in the sampler's seeded random order, so consecutive mini-batches mix tasks
        count = min(cfg.train.mini_batches, len(samples))
        bounds = np.linspace(0, len(samples), count + 1).astype(int)
        mini_batches = [self._micro_batches(samples[a:b]) for a, b in itertools.pairwise(bounds)]
        self.model.eval()
        with torch.no_grad():  # old (and reference) log-probs: once per step, before any update
            old = [
                [response_logprobs(self.model, b, cfg.rollout.temperature) for _, b in mb]
                for mb in mini_batches
            ]
            ref = [
                [
                    response_logprobs(self.reference, b, cfg.rollout.temperature) if self.reference else None
                    for _, b in mb
                ]
                for mb in mini_batches
            ]
        updates = self.weight_updates
        step_improvement: dict[str, float] = {}
        sums = {"loss/policy": 0.0, "loss/clip_fraction": 0.0, "loss/kl": 0.0, "loss/grad_norm": 0.0}
        applied = 0
        self.model.train()
        for index, (micro, old_mb, ref_mb) in enumerate(zip(mini_batches, old, ref, strict=True)):
            token_counts = [batch.response_mask.sum().item() for _, batch in micro]
            tokens = float(sum(token_counts))
            before = []
            minibatch = dict.fromkeys(sums, 0.0)
            self.optimizer.zero_grad(set_to_none=True)
            for (part, batch), o, r, count in zip(micro, old_mb, ref_mb, token_counts, strict=True):
                out = self._loss(part, batch, o, tokens, r)
                out.loss.backward()
                before.append(out.sample_objective)
                share = count / tokens
                minibatch["loss/policy"] += out.loss.item()
                minibatch["loss/clip_fraction"] += out.clip_fraction.item() * share
                minibatch["loss/kl"] += out.kl.item()
            max_norm = cfg.train.grad_clip if cfg.train.grad_clip > 0 else float("inf")
            minibatch["loss/grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
            )
            # the norm is not finite if any gradient is not
            if not all(map(math.isfinite, minibatch.values())):
                self.optimizer.zero_grad(set_to_none=True)
                self.faults.count("nonfinite_minibatches")
                self.faults.warn_once(
                    "nonfinite_minibatches",
                    f"step {self.step}: a mini-batch's loss or gradient is not finite ({minibatch}); its "
                    "update is skipped, never applied to the weights (counted: faults/nonfinite_minibatches)",
                )
                continue
            for key, value in minibatch.items():
                sums[key] += value
            applied += 1
            self.optimizer.step()
            self.schedule.step()
            if not updates.learns:
                continue
            task_of_sample = [s.task for part, _ in micro for s in part]
            improvement = {}
            if updates.needs_improvement:
                with self.clock.phase("core"):  # seeded per mini-batch, so a resumed run draws the same
                    rng = np.random.default_rng((cfg.seed, self.step, index))
                    kept = improvement_sample(task_of_sample, cfg.algo.improvement_fraction, rng)
                with self.clock.phase("improvement"):  # IWU's extra no-grad forward: the engine's cost
                    after = self._objective(
                        micro, old_mb, kept.rows_per_part([len(part) for part, _ in micro])
                    )
                with self.clock.phase("core"):
                    improvement = per_task_improvement(task_of_sample, torch.cat(before), after, kept)
                for task, value in improvement.items():
                    step_improvement[task] = step_improvement.get(task, 0.0) + value
            magnitudes = [abs(s.advantage) for part, _ in micro for s in part]
            with self.clock.phase("core"):
                abs_advantage = per_task_sum_and_count(task_of_sample, magnitudes)
                updates.observe_minibatch(
                    improvement,
                    {task: total for task, (total, _) in abs_advantage.items()},
                    {task: count for task, (_, count) in abs_advantage.items()},
                )
        with self.clock.phase("core"):
            updates.end_step()
        metrics = {key: value / applied for key, value in sums.items()} if applied else {}
        metrics["train/lr"] = self.schedule.get_last_lr()[0]
        metrics["train/response_tokens"] = float(np.mean([len(s.response) for s in samples]))
        for task, value in step_improvement.items():
            metrics[f"train/{task}/improvement"] = value
        return metrics

    def _reward_signal(self) -> dict[str, float]:
        """J_k: the EMA of batch accuracy, or the latest eval accuracy (`algo.signal_source: eval`)."""
        if self.cfg.algo.signal_source == "eval":
            if not self.eval_accuracy:
                raise ValueError("algo.signal_source: eval needs eval.every > 0 (an eval before step 1)")
            return dict(self.eval_accuracy)
        return self.reward_ema.values()

    # -- one step, evaluation, the loop ------------------------------------------------------------------

    def train_step(self) -> dict[str, Any]:
        self.step += 1
        self.step_groups: list[Group] = []
        self.clock = PhaseClock()
        with self.clock.phase("core"):  # the sampler's own work; generate() times its phases inside
            weights = self.weighter.weights()
            groups, info = self.sampler.build_batch(weights, self.generate)
            for accuracy in info.accuracy_per_round:  # J_k: one EMA step per generation round (released)
                self.reward_ema.update(accuracy)
        with self.clock.phase("train"):
            metrics = self.update_policy(groups)

        row: dict[str, Any] = {"step": self.step}
        # signal share: of the training batch's groups with a right-vs-wrong contrast, the task's fraction;
        # without a filter (GRPO) this, not batch_share, says which task the gradient comes from
        with_signal = [g.task for g in groups if not is_zero_gradient(g.rewards, "strict")]
        for task in self.task_names:
            row[f"weights/{task}"] = weights[task]
            row[f"batch_share/{task}"] = info.realised_share[task]
            row[f"signal_share/{task}"] = with_signal.count(task) / len(with_signal) if with_signal else 0.0
        mode = self.cfg.algo.filter_mode
        for task in self.task_names:
            mine = [g for g in self.step_groups if g.task == task]
            if not mine:
                continue
            row[f"train/{task}/accuracy"] = info.accuracy[task]
            row[f"train/{task}/reward"] = float(np.mean([r for g in mine for r in g.rewards]))
            # "zero gradient": no correct-vs-incorrect contrast in the group (the strict filter's test),
            # logged for every method so GRPO and MT-GRPO are measured alike; zero_advantage_rate: all
            # rewards equal, so the group's GRPO advantage is exactly 0
            row[f"train/{task}/zero_gradient_rate"] = float(
                np.mean([is_zero_gradient(g.rewards, "strict") for g in mine])
            )
            row[f"train/{task}/zero_advantage_rate"] = float(
                np.mean([is_zero_gradient(g.rewards, "lenient") for g in mine])
            )
            row[f"train/{task}/J"] = self.reward_ema.values()[task]
        self._count_zero_gradient_streaks(row)
        row.update({f"rollout/{key}": value for key, value in info.to_metrics().items()})
        row["rollout/generated_groups"] = len(self.step_groups)
        row["rollout/signal_groups"] = len(with_signal)
        row["rollout/filter"] = mode
        row.update(metrics)
        row.update({f"weighter/{key}": value for key, value in self.weighter.diagnostics.items()})
        # generate: sampling; score: rewards; core: openrlhf_mt.algo (sampler, J/I/|Â| signals, weighter);
        # train: old log-probs and the PPO mini-batches; improvement: IWU's re-forward for I_k
        for phase in ("generate", "score", "core", "train", "improvement"):
            row[f"time/{phase}_s"] = self.clock.seconds[phase]
        return row

    def _count_zero_gradient_streaks(self, row: dict[str, Any]) -> None:
        """Extend each drawn task's streak of steps without a right-vs-wrong contrast in any of its groups;
        log a task once when its streak reaches the warning length."""
        rates = {
            task: row[f"train/{task}/zero_gradient_rate"]
            for task in self.task_names
            if f"train/{task}/zero_gradient_rate" in row
        }
        for task in self.zero_gradient_streaks.observe(rates):
            accuracy = row[f"train/{task}/accuracy"]
            cause = (
                "no rollout right" if accuracy == 0 else "every rollout right" if accuracy == 1 else "mixed"
            )
            self.faults.warn_once(
                f"zero_gradient_streak/{task}",
                f"task {task}: every group had zero gradient for {self.zero_gradient_streaks.warn_after} "
                f"steps in a row (this step: {cause}, accuracy {accuracy:.2f}); it trains on nothing "
                f"meanwhile, the run goes on (train/{task}/zero_gradient_streak counts the steps)",
            )
        streaks = self.zero_gradient_streaks.values()
        row.update({f"train/{task}/zero_gradient_streak": streaks[task] for task in rates})

    def _fault_metrics(self) -> dict[str, Any]:
        """The run's cumulative fault counters and prompt passes, for every metrics row."""
        metrics: dict[str, Any] = {f"data/{t}/passes": s.epoch for t, s in self.streams.items() if s.epoch}
        metrics.update(self.faults.metrics())
        metrics.update({f"faults/{key}": n for key, n in sorted(self.score_guard.counts.items())})
        return metrics

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """mean@k accuracy (reward 1/0) on each task's held-out prompts; worst-task and mean; each with its
        standard error over prompts (a prompt's k samples are not independent: the prompt is the unit)."""
        start = time.perf_counter()
        self.model.eval()
        # its own generator, seeded by the step: evaluation never shifts the training rollouts' randomness
        generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 1_000_003 + self.step)
        k = self.cfg.eval.samples
        row = {}
        standard_error = {}
        for task in self.task_names:
            responses = self._sample(self.eval_prompt_ids[task], k, self.cfg.eval.temperature, generator)
            labels = [row["label"] for row in self.eval_rows[task] for _ in range(k)]
            scores = score_responses(
                self.tokenizer, self.tasks[task], responses, labels, train=False, guard=self.score_guard
            )
            per_prompt = np.asarray(scores).reshape(-1, k).mean(axis=1)
            standard_error[task] = mean_standard_error(per_prompt)
            row[f"eval/{task}/accuracy"] = float(np.mean(scores))
            row[f"eval/{task}/accuracy_se"] = standard_error[task]
        self.eval_accuracy = {t: row[f"eval/{t}/accuracy"] for t in self.task_names}
        worst = min(self.task_names, key=self.eval_accuracy.__getitem__)
        row["eval/worst_accuracy"] = self.eval_accuracy[worst]
        row["eval/worst_accuracy_se"] = standard_error[worst]  # the worst task's; ignores which task it is
        row["eval/mean_accuracy"] = float(np.mean(list(self.eval_accuracy.values())))
        # tasks are evaluated on independent prompts: the variances of their means add
        mean_variance = sum(se**2 for se in standard_error.values()) / len(self.task_names) ** 2
        row["eval/mean_accuracy_se"] = float(np.sqrt(mean_variance))
        row["time/eval_s"] = time.perf_counter() - start
        return row

    def _eval_due(self) -> bool:
        every = self.cfg.eval.every
        return every > 0 and (self.step % every == 0 or self.step == self.cfg.train.steps)

    def train(self) -> list[dict[str, Any]]:
        """Run to `train.steps`, or until SIGTERM / SIGINT (then `stopped_by` names it, after the step in
        progress and a checkpoint); returns the metric rows written by this call."""
        cfg = self.cfg
        last = self.out / "checkpoints" / "last"
        rows = []
        with StopSignals() as stop:
            if not self.initial_eval_done and cfg.eval.every > 0:
                rows.append({"step": 0, **self.evaluate(), **self._fault_metrics()})
                self.logger.log(rows[-1])
                self._maybe_save_best(rows[-1])
            self.initial_eval_done = True
            bar = tqdm(
                total=cfg.train.steps,
                initial=self.step,
                desc=f"{cfg.method}",
                unit="step",
                disable=not cfg.logging.progress,
            )
            while self.step < cfg.train.steps and stop.requested is None:
                step_start, cpu_start = time.perf_counter(), time.process_time()
                row = self.train_step()
                if self._eval_due():
                    row.update(self.evaluate())
                row.update(self._fault_metrics())
                row["time/step_s"] = time.perf_counter() - step_start
                # the process's CPU seconds: the step's work whatever else the machine runs (one thread)
                row["time/step_cpu_s"] = time.process_time() - cpu_start
                self.logger.log(row)
                rows.append(row)
                self._maybe_save_best(row)
                if (
                    cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0
                ) or self.step == cfg.train.steps:
                    self.save(last)
                bar.update(1)
                if self.eval_accuracy:
                    bar.set_postfix(
                        worst=f"{min(self.eval_accuracy.values()):.2f}",
                        mean=f"{np.mean(list(self.eval_accuracy.values())):.2f}",
                    )
            bar.close()
            if stop.requested is not None and self.step < cfg.train.steps:
                self.stopped_by = stop.requested
                if checkpoint_step(last) != self.step:
                    self.save(last)
        self.logger.close()
        return rows

    # -- checkpoints -------------------------------------------------------------------------------------

    def _maybe_save_best(self, row: dict[str, Any]) -> None:
        worst = row.get("eval/worst_accuracy")
        if worst is None or worst <= self.best_worst_accuracy:
            return
        self.best_worst_accuracy = worst
        if self.cfg.checkpoint.keep_best:
            self.save(self.out / "checkpoints" / "best")

    def save(self, directory: Path) -> None:
        state = {
            "step": self.step,
            "initial_eval_done": self.initial_eval_done,
            "best_worst_accuracy": self.best_worst_accuracy,
            "eval_accuracy": self.eval_accuracy,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "weighter": self.weighter.state_dict(),
            "sampler": self.sampler.state_dict(),
            "reward_ema": self.reward_ema.state_dict(),
            "zero_gradient_streaks": self.zero_gradient_streaks.state_dict(),
            "faults": self.faults.state_dict(),
            "score_guard": self.score_guard.state_dict(),
            "streams": {task: stream.state_dict() for task, stream in self.streams.items()},
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "config": to_dict(self.cfg),
        }
        save_checkpoint(directory, self.model, self.tokenizer, state)

    def _resume(self, directory: Path) -> None:
        """Continue from the newest complete checkpoint at `directory` (or its previous version); one whose
        files cannot be read after all (a disk error) is skipped for the next older one, with a warning."""
        for candidate in checkpoint_candidates(directory):
            try:  # read everything first: a failure leaves this trainer untouched
                state = load_state(candidate)
                weights = load_policy(candidate, self.device, self.model.dtype).model.state_dict()
            except Exception as error:
                self.faults.warn_once(
                    f"unreadable_checkpoint/{candidate}",
                    f"--resume: {candidate} cannot be read ({error}); trying an older checkpoint",
                )
                continue
            self._load(state, weights)
            return
        raise FileNotFoundError(
            f"--resume: no checkpoint under {directory} (none complete); start the run again without --resume"
        )

    def _load(self, state: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(weights)
        self.step = state["step"]
        self.initial_eval_done = state.get("initial_eval_done", True)  # checkpoints of older versions: True
        self.best_worst_accuracy = state["best_worst_accuracy"]
        self.eval_accuracy = state["eval_accuracy"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.weighter.load_state_dict(state["weighter"])
        self.sampler.load_state_dict(state["sampler"])
        self.reward_ema.load_state_dict(state["reward_ema"])
        if "faults" in state:  # checkpoints of older versions have no fault counters
            self.zero_gradient_streaks.load_state_dict(state["zero_gradient_streaks"])
            self.faults.load_state_dict(state["faults"])
            self.score_guard.load_state_dict(state["score_guard"])
        for task, stream_state in state["streams"].items():
            self.streams[task].load_state_dict(stream_state)
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
