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

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")
pytest.importorskip("openrlhf")

from openrlhf_mt.engines.openrlhf import cpu  # noqa: E402

cpu.install()  # openrlhf.models imports flash_attn, which only the bridge provides without CUDA

from openrlhf.models.loss import PolicyLoss  # noqa: E402

from openrlhf_mt.engines.openrlhf.improvement import ImprovementRecorder  # noqa: E402

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


class ActorTrainer:
    """The attributes of upstream's ActorPPOTrainer the recorder uses, and a training step like upstream's."""

    def __init__(self) -> None:
        self.actor = TablePolicy()
        self.strategy = SimpleNamespace(
            accumulated_gradient=2, world_size=1, ring_attn_group=None, is_rank_0=lambda: True
        )
        self.args = SimpleNamespace(
            actor=SimpleNamespace(eps_clip_low_high=CLIP), train=SimpleNamespace(dynamic_batch_enable=False)
        )
        self.actor_loss_fn = PolicyLoss(clip_eps_low=CLIP[0], clip_eps_high=CLIP[1])
        self.optimizer = torch.optim.SGD(self.actor.parameters(), lr=2.0)

    def training_step(self, experience: Any, kl_ctl: float, step: int, loss_batch_info: Any = None) -> dict:
        log_probs = self.actor(experience.sequences, experience.action_mask)
        loss = self.actor_loss_fn(
            log_probs, experience.action_log_probs, experience.advantages, action_mask=experience.action_mask
        )[0]
        loss.backward()
        if (step + 1) % self.strategy.accumulated_gradient == 0:
            self.optimizer.step()
            self.optimizer.zero_grad()
        return {}


@ray.remote(num_cpus=0)
class Inbox:
    def __init__(self) -> None:
        self.received: list = []

    def observe_training(self, improvement: dict, abs_advantage_sum: dict, sample_count: dict) -> None:
        self.received.append((improvement, abs_advantage_sum, sample_count))

    def get(self) -> list:
        return self.received


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


def test_improvement_per_task_is_the_summed_change_of_the_surrogate_over_each_optimizer_step(
    local_ray,
) -> None:
    trainer, inbox = ActorTrainer(), Inbox.remote()
    ImprovementRecorder(trainer, inbox, TASKS, measure_improvement=True)
    rng = np.random.default_rng(0)
    batches = [
        micro_batch(rng, tasks) for tasks in (["add", "arc", "add"], ["arc", "arc"], ["add"], ["add", "arc"])
    ]
    expected = []
    for window in (batches[:2], batches[2:]):
        theta_before = trainer.actor.theta.detach().numpy().copy()
        for step, batch in enumerate(window):
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
    received = ray.get(inbox.get.remote())
    assert len(received) == 2  # one report per optimizer step (PPO mini-batch), none per micro-batch
    for (improvement, abs_sum, count), (want_improvement, want_abs) in zip(received, expected, strict=True):
        assert improvement == pytest.approx(want_improvement, rel=1e-9, abs=1e-12)
        assert abs_sum == pytest.approx({t: sum(v) for t, v in want_abs.items()}, rel=1e-6)  # |A| in float32
        assert count == {t: len(v) for t, v in want_abs.items()}
        assert any(abs(v) > 1e-4 for v in improvement.values())


def test_sec_needs_no_extra_forward(local_ray) -> None:
    trainer, inbox = ActorTrainer(), Inbox.remote()
    ImprovementRecorder(trainer, inbox, TASKS, measure_improvement=False)
    calls = []
    forward = trainer.actor.forward
    trainer.actor.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    rng = np.random.default_rng(1)
    for step in range(2):
        trainer.training_step(micro_batch(rng, ["add", "arc"]), 0.0, step)
    ((improvement, abs_sum, count),) = ray.get(inbox.get.remote())
    assert improvement == {} and set(abs_sum) == set(TASKS) and count == {"add": 2, "arc": 2}
    assert len(calls) == 2  # the training forwards only
