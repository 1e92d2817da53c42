"""TaskWeightActor: what the weights do with each signal source, and an exact state round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("ray")

from openrlhf_mt.algo.signals import task_stats
from openrlhf_mt.algo.updates import learns
from openrlhf_mt.algo.weights import make_weighter
from openrlhf_mt.config import METHOD_PRESETS, apply_method
from openrlhf_mt.engines.openrlhf.weights_actor import TaskWeightActor

TASKS = ["add", "countdown", "arc"]


def feed(actor: TaskWeightActor, step: int) -> None:
    """One training step's signals, as the generator and the policy actor send them."""
    rng = np.random.default_rng(step)
    rounds = [{t: float(rng.random()) for t in TASKS} for _ in range(2)]
    actor.record_batch({"mt/rounds": 2.0}, {"batches": step}, rounds)
    for _ in range(4):  # four PPO mini-batches of 8 samples per task, mean |A| 0.5
        improvement = {t: float(rng.normal(0, 0.05)) for t in TASKS}
        actor.observe_training(improvement, dict.fromkeys(TASKS, 4.0), dict.fromkeys(TASKS, 8))
    actor.end_step()
    actor.pop_batch()


def test_batch_source_matches_the_core_weighter_step_for_step() -> None:
    algo = apply_method("mt-grpo")
    actor = TaskWeightActor(TASKS, algo)
    reference = make_weighter("iwu", TASKS, **algo.weighter_kwargs())
    reward = dict.fromkeys(TASKS, 0.0)
    for step in range(3):
        feed(actor, step)
        rng = np.random.default_rng(step)  # replay the same signals into the core objects by hand
        for accuracy in [{t: float(rng.random()) for t in TASKS} for _ in range(2)]:
            reward = {t: 0.5 * reward[t] + 0.5 * accuracy[t] for t in TASKS}  # J_k: EMA, decay 0.5
        from openrlhf_mt.algo.types import TaskStats

        for _ in range(4):
            improvement = {t: float(rng.normal(0, 0.05)) for t in TASKS}
            reference.update({t: TaskStats(reward[t], improvement[t], 0.5) for t in TASKS})
    assert actor.weights() == pytest.approx(reference.weights(), abs=1e-12)
    assert actor.updates.num_updates == 12  # update_every=minibatch: one per mini-batch
    assert actor.weights() != pytest.approx(dict.fromkeys(TASKS, 1 / 3))


def test_update_every_step_sums_the_mini_batches() -> None:
    algo = dataclasses.replace(apply_method("mt-grpo"), update_every="step")
    actor = TaskWeightActor(TASKS, algo)
    feed(actor, 0)
    assert actor.updates.num_updates == 1


def test_eval_source_reads_j_from_the_latest_eval_and_i_from_training() -> None:
    algo = dataclasses.replace(apply_method("mt-grpo"), signal_source="eval")
    actor = TaskWeightActor(TASKS, algo)
    reference = make_weighter("iwu", TASKS, **algo.weighter_kwargs())
    no_improvement = dict.fromkeys(TASKS, 0.0)
    actor.observe_training(no_improvement, dict.fromkeys(TASKS, 1.0), dict.fromkeys(TASKS, 2))
    assert actor.weights() == pytest.approx(dict.fromkeys(TASKS, 1 / 3))  # J = 0 before any eval, I = 0
    accuracy = {"add": 0.9, "countdown": 0.5, "arc": 0.1}
    actor.observe_eval(accuracy)
    for _ in range(3):
        actor.observe_training(no_improvement, dict.fromkeys(TASKS, 1.0), dict.fromkeys(TASKS, 2))
    for stats in [task_stats(dict.fromkeys(TASKS, 0.0), no_improvement)] + [
        task_stats(accuracy, no_improvement)
    ] * 3:
        reference.update(stats)
    assert actor.weights() == pytest.approx(reference.weights(), abs=1e-15)
    weights = actor.weights()
    assert weights["arc"] > weights["countdown"] > weights["add"]  # the worst task on eval gains


def test_state_round_trip_is_exact_and_hands_the_generator_state_over_once() -> None:
    algo = apply_method("mt-grpo")
    original = TaskWeightActor(TASKS, algo)
    for step in range(2):
        feed(original, step)
    original.observe_eval({"add": 0.7, "countdown": 0.4, "arc": 0.2})
    restored = TaskWeightActor(TASKS, algo)
    restored.load_state_dict(original.state_dict(), {"batches": 2})
    assert restored.state_dict() == original.state_dict()
    assert restored.take_generator_state() == {"batches": 2}
    assert restored.take_generator_state() is None
    for step in range(2, 4):  # the same future signals give the same weights
        feed(original, step)
        feed(restored, step)
    assert restored.weights() == original.weights()
    assert restored.metrics() == original.metrics()


def test_state_for_other_tasks_is_refused() -> None:
    algo = apply_method("mt-grpo")
    state = TaskWeightActor(TASKS, algo).state_dict()
    with pytest.raises(ValueError, match="this run has tasks"):
        TaskWeightActor(["add", "arc"], algo).load_state_dict(state)


def test_pop_without_a_recorded_batch_says_so() -> None:
    with pytest.raises(RuntimeError, match="no batch was recorded"):
        TaskWeightActor(TASKS, apply_method("grpo")).pop_batch()


@pytest.mark.parametrize("method", sorted(METHOD_PRESETS))
def test_every_learning_weighter_gets_the_training_signals_and_moves(method: str) -> None:
    """The policy actor reports each optimizer step exactly when the weights learn from it (a reg run once
    stayed uniform because only iwu and sec runs reported)."""
    algo = apply_method(method)
    actor = TaskWeightActor(TASKS, algo)
    before = actor.weights()
    signal = dict(zip(TASKS, (0.1, 0.5, 0.9), strict=True))  # different per task, so every weighter can move
    actor.record_batch({"mt/rounds": 1.0}, {"batches": 0}, [signal])
    actor.observe_training(signal, signal, dict.fromkeys(TASKS, 1))
    actor.end_step()
    moved = any(abs(actor.weights()[t] - before[t]) > 1e-9 for t in TASKS)
    assert learns(algo.weighter) == moved == (algo.weighter not in ("uniform", "static"))
