"""TaskWeightActor: what the weights do with each signal source, an exact state round trip, idempotent
steps, and a restart by Ray that restores the last state from the snapshot."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

pytest.importorskip("ray")

from openrlhf_mt.algo.signals import task_stats
from openrlhf_mt.algo.updates import learns
from openrlhf_mt.algo.weights import make_weighter
from openrlhf_mt.config import METHOD_PRESETS, apply_method
from openrlhf_mt.engines.openrlhf.weights_actor import TaskWeightActor

TASKS = ["add", "countdown", "arc"]


def step_signals(step: int) -> tuple[list, list]:
    """Training step `step`'s signals: its batch's 2 rounds of accuracy, and 4 PPO optimizer steps of
    8 samples per task with mean |A| 0.5."""
    rng = np.random.default_rng(step)
    rounds = [{t: float(rng.random()) for t in TASKS} for _ in range(2)]
    windows = [
        ({t: float(rng.normal(0, 0.05)) for t in TASKS}, dict.fromkeys(TASKS, 4.0), dict.fromkeys(TASKS, 8))
        for _ in range(4)
    ]
    return rounds, windows


def feed(actor: TaskWeightActor, step: int) -> dict[str, float]:
    """Training step `step` (0-based), as the trainer sends it."""
    return actor.apply_step(step + 1, *step_signals(step))


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
    window = (no_improvement, dict.fromkeys(TASKS, 1.0), dict.fromkeys(TASKS, 2))
    actor.apply_step(1, [], [window])
    assert actor.weights() == pytest.approx(dict.fromkeys(TASKS, 1 / 3))  # J = 0 before any eval, I = 0
    accuracy = {"add": 0.9, "countdown": 0.5, "arc": 0.1}
    actor.observe_eval(accuracy)
    actor.apply_step(2, [], [window] * 3)
    for stats in [task_stats(dict.fromkeys(TASKS, 0.0), no_improvement)] + [
        task_stats(accuracy, no_improvement)
    ] * 3:
        reference.update(stats)
    assert actor.weights() == pytest.approx(reference.weights(), abs=1e-15)
    weights = actor.weights()
    assert weights["arc"] > weights["countdown"] > weights["add"]  # the worst task on eval gains


def test_state_round_trip_is_exact() -> None:
    algo = apply_method("mt-grpo")
    original = TaskWeightActor(TASKS, algo)
    for step in range(2):
        feed(original, step)
    original.observe_eval({"add": 0.7, "countdown": 0.4, "arc": 0.2})
    restored = TaskWeightActor(TASKS, algo)
    restored.load_state_dict(original.state_dict())
    assert restored.state_dict() == original.state_dict()
    for step in range(2, 4):  # the same future signals give the same weights
        feed(original, step)
        feed(restored, step)
    assert restored.weights() == original.weights()
    assert restored.metrics() == original.metrics()


def test_a_step_applied_twice_changes_nothing() -> None:
    """Ray retries a call that was in flight when the actor died: the retried step must not count twice."""
    actor = TaskWeightActor(TASKS, apply_method("mt-grpo"))
    first = feed(actor, 0)
    state = actor.state_dict()
    assert feed(actor, 0) == first and actor.state_dict() == state


def test_state_for_other_tasks_is_refused() -> None:
    algo = apply_method("mt-grpo")
    state = TaskWeightActor(TASKS, algo).state_dict()
    with pytest.raises(ValueError, match="this run has tasks"):
        TaskWeightActor(["add", "arc"], algo).load_state_dict(state)


@pytest.mark.parametrize("method", sorted(METHOD_PRESETS))
def test_every_learning_weighter_gets_the_training_signals_and_moves(method: str) -> None:
    """The policy actor reports each optimizer step exactly when the weights learn from it (a reg run once
    stayed uniform because only iwu and sec runs reported)."""
    algo = apply_method(method)
    actor = TaskWeightActor(TASKS, algo)
    before = actor.weights()
    signal = dict(zip(TASKS, (0.1, 0.5, 0.9), strict=True))  # different per task, so every weighter can move
    actor.apply_step(1, [signal], [(signal, signal, dict.fromkeys(TASKS, 1))])
    moved = any(abs(actor.weights()[t] - before[t]) > 1e-9 for t in TASKS)
    assert learns(algo.weighter) == moved == (algo.weighter not in ("uniform", "static"))


def test_a_killed_actor_comes_back_with_its_last_state(local_ray, tmp_path) -> None:
    import ray

    algo = apply_method("mt-grpo")
    snapshot = str(tmp_path / "ckpt" / "weights.json")
    actor = TaskWeightActor.spawn(TASKS, algo, snapshot, name="weights_restart_test")
    reference = TaskWeightActor(TASKS, algo)
    try:
        for step in range(2):
            ray.get(actor.apply_step.remote(step + 1, *step_signals(step)))
            feed(reference, step)
        ray.kill(actor, no_restart=False)  # the process dies; Ray restarts the actor
        deadline = time.monotonic() + 60  # (calls made before the kill lands reach the old process)
        while ray.get(actor.metrics.remote())["mt/weights_actor_restarts"] == 0:
            assert time.monotonic() < deadline, "the weights actor did not come back"
            time.sleep(0.1)
        assert ray.get(actor.weights.remote()) == reference.weights()
        metrics = ray.get(actor.apply_step.remote(3, *step_signals(2)))  # training goes on
        feed(reference, 2)
        assert metrics["mt/weights_actor_restarts"] == 1.0
        assert {k: v for k, v in metrics.items() if k != "mt/weights_actor_restarts"} == {
            k: v for k, v in reference.metrics().items() if k != "mt/weights_actor_restarts"
        }
    finally:
        ray.kill(actor, no_restart=True)


def test_a_fresh_run_never_reloads_a_stale_snapshot(tmp_path) -> None:
    snapshot = tmp_path / "weights.json"
    old = TaskWeightActor(TASKS, apply_method("mt-grpo"), str(snapshot))
    feed(old, 0)
    fresh = TaskWeightActor(TASKS, apply_method("mt-grpo"), str(snapshot))
    assert fresh.weights() == pytest.approx(dict.fromkeys(TASKS, 1 / 3))
    assert json.loads(snapshot.read_text()) == fresh.state_dict()  # overwritten at start


def test_the_generator_reads_the_weights_after_the_step_its_lag_allows() -> None:
    """Async (lag 1): batch b is built with the weights after step b - 2, kept through checkpoints."""
    actor = TaskWeightActor(TASKS, apply_method("mt-grpo"), lag=1)
    initial = actor.weights_after(0)
    assert initial == pytest.approx(dict.fromkeys(TASKS, 1 / 3)) and actor.weights_after(1) is None
    feed(actor, 0)
    after_1 = actor.weights()
    assert actor.weights_after(0) == initial and actor.weights_after(1) == after_1
    feed(actor, 1)
    assert actor.weights_after(1) == after_1 and actor.weights_after(2) == actor.weights()
    with pytest.raises(RuntimeError, match=r"only steps \[1, 2\] are kept \(lag 1\)"):
        actor.weights_after(0)
    restored = TaskWeightActor(TASKS, apply_method("mt-grpo"), lag=1)
    restored.load_state_dict(json.loads(json.dumps(actor.state_dict())))  # as the snapshot file holds it
    assert restored.weights_after(1) == after_1 and restored.state_dict() == actor.state_dict()
