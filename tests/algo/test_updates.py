"""WeightUpdates: the schedule and the signals each weighter gets, against core weighters driven by hand."""

from __future__ import annotations

import pytest

from openrlhf_mt.algo.signals import task_stats
from openrlhf_mt.algo.types import TaskStats
from openrlhf_mt.algo.updates import WeightUpdates
from openrlhf_mt.algo.weights import WEIGHTERS, make_weighter

TASKS = ("a", "b", "c")
REWARD = {"a": 0.9, "b": 0.5, "c": 0.1}
# two mini-batches: (I_k, sum |A|, sample count); task c has no sample in the first one
MINIBATCHES = [
    ({"a": 0.05, "b": -0.02}, {"a": 3.0, "b": 1.0}, {"a": 4, "b": 2}),
    ({"a": 0.01, "c": 0.2}, {"a": 1.0, "c": 6.0}, {"a": 4, "c": 4}),
]


class Reward:
    """J_k, counting how often it is read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> dict[str, float]:
        self.reads += 1
        return REWARD


def run(name: str, every: str, **kwargs) -> tuple[WeightUpdates, Reward]:
    reward = Reward()
    updates = WeightUpdates(make_weighter(name, TASKS, **kwargs), reward, every)
    for improvement, abs_sum, count in MINIBATCHES:
        updates.observe_minibatch(improvement, abs_sum, count)
    updates.end_step()
    return updates, reward


def test_iwu_per_minibatch_steps_once_per_minibatch_with_every_task():
    updates, reward = run("iwu", "minibatch", optimizer="adam")
    reference = make_weighter("iwu", TASKS, optimizer="adam")
    for improvement, _, _ in MINIBATCHES:  # absent tasks get I_k = 0, as the released code passes them
        reference.update({t: TaskStats(REWARD[t], improvement.get(t, 0.0)) for t in TASKS})
    assert updates.weighter.weights() == reference.weights()
    assert updates.num_updates == reward.reads == 2


def test_iwu_per_step_sums_the_minibatches_improvement():
    updates, reward = run("iwu", "step")
    reference = make_weighter("iwu", TASKS)
    reference.update(task_stats(REWARD, {"a": 0.06, "b": -0.02, "c": 0.2}))
    assert updates.weighter.weights() == pytest.approx(reference.weights(), abs=1e-15)
    assert updates.num_updates == reward.reads == 1


@pytest.mark.parametrize("every", ["minibatch", "step"])
def test_sec_steps_once_per_step_on_the_sample_weighted_mean_abs_advantage(every):
    updates, _ = run("sec", every)
    # a: (3 + 1) / 8 = 0.5, b: 1 / 2, c: 6 / 4; Q = 0.5 * mean|A| from Q = 0
    assert updates.weighter.values == pytest.approx([0.25, 0.25, 0.75])
    assert updates.num_updates == 1


@pytest.mark.parametrize(("absent_arms", "c_after"), [("decay", 0.125), ("keep", 0.25)])
def test_sec_arms_without_samples_decay_as_released_or_keep(absent_arms, c_after):
    reward = Reward()
    updates = WeightUpdates(make_weighter("sec", TASKS, absent_arms=absent_arms), reward)
    updates.observe_minibatch({}, {"a": 2.0, "c": 1.0}, {"a": 2, "c": 2})
    updates.end_step()
    updates.observe_minibatch({}, {"a": 0.0}, {"a": 2})  # a's groups now all have zero advantage
    updates.end_step()
    # a: 0.5 -> 0.25 (|Â| 0); b: never sampled, stays 0; c: 0.25, then halved (decay) or kept (keep)
    assert updates.weighter.values == pytest.approx([0.25, 0.0, c_after])


@pytest.mark.parametrize("name", ["uniform", "static"])
def test_fixed_weights_never_update_nor_read_the_reward(name):
    kwargs = {"weights": {"a": 1, "b": 2, "c": 1}} if name == "static" else {}
    updates, reward = run(name, "minibatch", **kwargs)
    assert not updates.learns and updates.num_updates == reward.reads == 0


def test_what_each_weighter_needs_from_the_engine():
    needs = {
        name: (WeightUpdates(make_weighter(name, TASKS, **kw), dict).needs_improvement)
        for name, kw in [("iwu", {}), ("strict", {}), ("reg", {}), ("sec", {})]
    }
    assert needs == {"iwu": True, "strict": False, "reg": False, "sec": False}
    assert {name for name, cls in WEIGHTERS.items() if cls.reads} == {"iwu", "strict", "reg", "sec"}


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="every must be one of minibatch, step"):
        WeightUpdates(make_weighter("iwu", TASKS), dict, "epoch")
    updates = WeightUpdates(make_weighter("iwu", TASKS), lambda: REWARD)
    with pytest.raises(ValueError, match="signal for unknown task 'd'"):
        updates.observe_minibatch({"d": 0.1}, {}, {})
