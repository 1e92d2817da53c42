"""IWU's I_k from the policy actor's training step (ImprovementRecorder), against a float64 hand computation.

The recorder sits on an object shaped like upstream's ActorPPOTrainer whose training step runs upstream's
real PolicyLoss, accumulates gradients over 2 micro-batches per optimizer step (DeepSpeed's window), and
steps plain SGD; the policy is a table of token logits, so its log-probs are known in closed form.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("openrlhf")

from openrlhf_mt.engines.openrlhf import cpu  # noqa: E402

cpu.install()  # openrlhf.models imports flash_attn, which only the bridge provides without CUDA

from openrlhf.models.loss import PolicyLoss  # noqa: E402

from openrlhf_mt.algo.signals import improvement_sample  # noqa: E402
from openrlhf_mt.engines.openrlhf.improvement import ImprovementRecorder, OptimizerWindows  # noqa: E402

VOCAB, CLIP = 6, (0.2, 0.28)
TASKS = ["add", "arc"]


class TablePolicy(torch.nn.Module):
    """log pi(token) = log_softmax(theta)[token] at every position; called like upstream's Actor."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.linspace(-1.0, 1.0, VOCAB, dtype=torch.float64))

    def forward(
        self, sequences: Any, action_mask: Any, attention_mask: Any = None, ring_attn_group: Any = None
    ):
        return torch.log_softmax(self.theta, -1)[sequences[:, 1:]]


class FakeEngine:
    """DeepSpeed's step boundary: its own micro-step counter unless the caller set the boundary."""

    def __init__(self, accumulated_gradient: int) -> None:
        self.accumulated_gradient = accumulated_gradient
        self.micro_steps = 0
        self.boundary: bool | None = None

    def set_gradient_accumulation_boundary(self, is_boundary: bool) -> None:
        self.boundary = is_boundary

    def step_now(self) -> bool:
        if self.boundary is None:
            at_boundary = (self.micro_steps + 1) % self.accumulated_gradient == 0
        else:
            at_boundary = self.boundary
        self.micro_steps += 1
        return at_boundary


class ActorTrainer:
    """The attributes of upstream's ActorPPOTrainer the windows and the recorder use, with a training
    step and an epoch loop like upstream's (one SGD step where the engine says the boundary is)."""

    def __init__(self, accumulated_gradient: int = 2) -> None:
        self.actor = TablePolicy()
        self.actor.model = FakeEngine(accumulated_gradient)
        self.strategy = SimpleNamespace(
            accumulated_gradient=accumulated_gradient,
            world_size=1,
            ring_attn_group=None,
            is_rank_0=lambda: True,
        )
        self.args = SimpleNamespace(
            actor=SimpleNamespace(eps_clip_low_high=CLIP), train=SimpleNamespace(dynamic_batch_enable=False)
        )
        self.actor_loss_fn = PolicyLoss(clip_eps_low=CLIP[0], clip_eps_high=CLIP[1])
        self.optimizer = torch.optim.SGD(self.actor.parameters(), lr=2.0)
        self.replay_buffer: list[SimpleNamespace] = []
        self.replay_buffer_size = 0
        self.optimizer_steps = 0

    def ppo_train(self, kl_ctl: float) -> dict:
        for step, experience in enumerate(self.replay_buffer):
            self.training_step(experience, kl_ctl, step)
        return {}

    def training_step(self, experience: Any, kl_ctl: float, step: int, loss_batch_info: Any = None) -> dict:
        log_probs = self.actor(experience.sequences, experience.action_mask)
        loss = self.actor_loss_fn(
            log_probs, experience.action_log_probs, experience.advantages, action_mask=experience.action_mask
        )[0]
        loss.backward()
        if self.actor.model.step_now():
            self.optimizer.step()
            self.optimizer.zero_grad()
            self.optimizer_steps += 1
        return {}


class Buffer(list):
    """A replay buffer of micro-batches: one sample per micro-batch as far as the windows count."""

    sample_batch_size = 1


def train(trainer: ActorTrainer, batches: list[SimpleNamespace]) -> dict:
    trainer.replay_buffer = Buffer(batches)
    return trainer.ppo_train(0.0)


def micro_batch(rng: np.random.Generator, tasks: list[str]) -> SimpleNamespace:
    sequences = torch.as_tensor(rng.integers(0, VOCAB, size=(len(tasks), 5)))
    mask = torch.ones(len(tasks), 4, dtype=torch.long)
    mask[0, 3] = 0  # a shorter response
    return SimpleNamespace(
        sequences=sequences,
        attention_mask=torch.ones_like(sequences),
        action_mask=mask,
        action_log_probs=torch.as_tensor(rng.normal(-1.8, 0.3, size=(len(tasks), 4))),
        advantages=torch.as_tensor(rng.normal(0, 1, size=(len(tasks), 1))).expand(-1, 4),
        labels=[json.dumps({"task": t}) for t in tasks],
    )


def objective(theta: np.ndarray, batch: SimpleNamespace) -> np.ndarray:
    """Per-sample token-mean of min(r A, clip(r, 1 - 0.2, 1 + 0.28) A), float64, from theta alone."""
    log_pi = theta - np.log(np.exp(theta).sum())
    ratio = np.exp(log_pi[batch.sequences.numpy()[:, 1:]] - batch.action_log_probs.numpy())
    advantages = batch.advantages.numpy()
    per_token = np.minimum(ratio * advantages, np.clip(ratio, 1 - CLIP[0], 1 + CLIP[1]) * advantages)
    mask = batch.action_mask.numpy()
    return (per_token * mask).sum(1) / mask.sum(1)


def expected_windows(trainer: ActorTrainer, windows: list[list[SimpleNamespace]]) -> list:
    """I_k and |A| per window, by hand: each window's micro-batches, then its optimizer step."""
    expected = []
    for window in windows:
        theta_before = trainer.actor.theta.detach().numpy().copy()
        for step, batch in enumerate(window):  # the window's micro-batches, then one optimizer step
            trainer.actor.model.set_gradient_accumulation_boundary(step == len(window) - 1)
            trainer.training_step(batch, 0.0, step)
        theta_after = trainer.actor.theta.detach().numpy()
        assert not np.allclose(theta_before, theta_after)  # the window's optimizer step moved the policy
        improvement, abs_advantage = dict.fromkeys(TASKS, 0.0), {t: [] for t in TASKS}
        for batch in window:
            change = objective(theta_after, batch) - objective(theta_before, batch)
            for task, value, a in zip(
                batch.labels, change, batch.advantages[:, 0].abs().tolist(), strict=True
            ):
                improvement[json.loads(task)["task"]] += value
                abs_advantage[json.loads(task)["task"]].append(a)
        expected.append((improvement, abs_advantage))
    return expected


def batches(seed: int) -> list[SimpleNamespace]:
    rng = np.random.default_rng(seed)
    return [
        micro_batch(rng, tasks)
        for tasks in (["add", "arc", "add"], ["arc", "arc"], ["add"], ["add", "arc"], ["arc"])
    ]


def test_improvement_per_task_is_the_summed_change_of_the_surrogate_over_each_optimizer_step() -> None:
    """5 micro-batches with 2 per optimizer step: windows [0, 1], [2, 3] and a short last one, [4]."""
    trainer = ActorTrainer(accumulated_gradient=2)
    windows = OptimizerWindows(trainer)
    recorder = ImprovementRecorder(windows, TASKS, measure_improvement=True)
    status = train(trainer, batches(0))
    received = recorder.take_windows()
    assert status["mt/optimizer_steps"] == 3 == trainer.optimizer_steps  # the short window stepped too
    reference = ActorTrainer(accumulated_gradient=2)
    micro = batches(0)
    expected = expected_windows(reference, [micro[:2], micro[2:4], micro[4:]])
    assert len(received) == 3  # one report per optimizer step (PPO mini-batch), none per micro-batch
    for (improvement, abs_sum, count), (want_improvement, want_abs) in zip(received, expected, strict=True):
        assert improvement == pytest.approx(
            {t: v for t, v in want_improvement.items() if want_abs[t]}, rel=1e-9, abs=1e-12
        )
        assert abs_sum == pytest.approx(
            {t: sum(v) for t, v in want_abs.items() if v}, rel=1e-6
        )  # |A| in float32
        assert count == {t: len(v) for t, v in want_abs.items() if v}
        assert any(abs(v) > 1e-4 for v in improvement.values())
    assert trainer.actor.theta.detach().numpy() == pytest.approx(reference.actor.theta.detach().numpy())


def test_a_short_window_does_not_shift_the_next_steps_boundaries() -> None:
    """DeepSpeed's own counter would step after micro-batches 2, 4, ... of the run: after a batch of 3,
    the next batch's first step would mix both batches' gradients. The explicit boundary keeps every
    batch's windows its own."""
    trainer = ActorTrainer(accumulated_gradient=2)
    recorder = ImprovementRecorder(OptimizerWindows(trainer), TASKS, measure_improvement=False)
    steps_per_batch = []
    for size in (3, 4, 1):
        before = trainer.optimizer_steps
        train(trainer, batches(size)[:size])
        steps_per_batch.append(trainer.optimizer_steps - before)
        assert len(recorder.take_windows()) == steps_per_batch[-1]
    assert steps_per_batch == [2, 2, 1]


def test_a_step_that_ends_inside_a_window_is_an_error() -> None:
    trainer = ActorTrainer(accumulated_gradient=2)
    windows = OptimizerWindows(trainer)
    recorder = ImprovementRecorder(windows, TASKS, measure_improvement=False)
    trainer.replay_buffer = Buffer(batches(0)[:3])
    windows.micro_batches_per_epoch = 3
    trainer.training_step(trainer.replay_buffer[0], 0.0, 0)  # a step cut short after one micro-batch
    with pytest.raises(RuntimeError, match="ended inside an optimizer window"):
        recorder.take_windows()


def test_sec_needs_no_extra_forward() -> None:
    trainer = ActorTrainer()
    recorder = ImprovementRecorder(OptimizerWindows(trainer), TASKS, measure_improvement=False)
    calls = []
    forward = trainer.actor.forward
    trainer.actor.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    rng = np.random.default_rng(1)
    train(trainer, [micro_batch(rng, ["add", "arc"]) for _ in range(2)])
    ((improvement, abs_sum, count),) = recorder.take_windows()
    assert improvement == {} and set(abs_sum) == set(TASKS) and count == {"add": 2, "arc": 2}
    assert len(calls) == 2  # the training forwards only


def test_a_fraction_of_the_rows_is_re_forwarded_and_weighted_back_to_i_k() -> None:
    """--mt.improvement_fraction 0.5: I_k is the sum over the drawn rows of N_k / m_k times their change
    (the rows the core's improvement_sample draws from the recorder's seeded generator); every
    micro-batch is still forwarded once after its window, a row-less one on a single row (ZeRO-3)."""
    seed = 4
    trainer = ActorTrainer(accumulated_gradient=2)
    recorder = ImprovementRecorder(
        OptimizerWindows(trainer), TASKS, measure_improvement=True, improvement_fraction=0.5, seed=seed
    )
    after_rows = []
    forward = trainer.actor.forward

    def counting_forward(*args: Any, **kwargs: Any) -> torch.Tensor:
        if not trainer.actor.training:  # the recorder's no-grad forward runs in eval mode
            after_rows.append(len(args[0]))
        return forward(*args, **kwargs)

    trainer.actor.forward = counting_forward
    train(trainer, batches(0))
    received = recorder.take_windows()

    reference = ActorTrainer(accumulated_gradient=2)
    micro = batches(0)
    draws = np.random.default_rng((seed, 0))  # the recorder's generator on a single process
    expected_rows, row_less = [], 0
    for (improvement, _, _), window in zip(received, [micro[:2], micro[2:4], micro[4:]], strict=True):
        theta_before = reference.actor.theta.detach().numpy().copy()
        for step, batch in enumerate(window):
            reference.actor.model.set_gradient_accumulation_boundary(step == len(window) - 1)
            reference.training_step(batch, 0.0, step)
        theta_after = reference.actor.theta.detach().numpy()
        tasks = [json.loads(label)["task"] for batch in window for label in batch.labels]
        change = np.concatenate([objective(theta_after, b) - objective(theta_before, b) for b in window])
        kept = improvement_sample(tasks, 0.5, draws)
        want = dict.fromkeys(tasks, 0.0)
        for i, weight in zip(kept.indices, kept.weights, strict=True):
            want[tasks[i]] += weight * change[i]
        assert improvement == pytest.approx(want, rel=1e-9, abs=1e-12)
        start = 0
        for batch in window:
            mine = int(((kept.indices >= start) & (kept.indices < start + len(batch.labels))).sum())
            expected_rows.append(max(mine, 1))
            row_less += mine == 0
            start += len(batch.labels)
    assert after_rows == expected_rows
    assert row_less > 0  # this seed draws no row of some micro-batch: the single-row forward is exercised
    assert sum(after_rows) < sum(len(b.labels) for b in micro)  # fewer rows than the full re-forward
    assert len(after_rows) == len(micro)  # every micro-batch forwarded once after its window
