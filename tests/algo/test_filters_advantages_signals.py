"""Zero-gradient filters, GRPO advantages and the per-task signals, against hand numbers and references."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.algo.advantages import group_advantages
from openrlhf_mt.algo.filters import is_zero_gradient, summarize_rewards, zero_gradient_mask
from openrlhf_mt.algo.signals import (
    ImprovementSample,
    RewardEMA,
    batch_accuracy,
    improvement_sample,
    per_task_improvement,
    per_task_mean_abs_advantage,
    task_stats,
)
from openrlhf_mt.algo.types import Group, TaskStats


@pytest.mark.parametrize(
    ("rewards", "strict", "lenient", "zero_spread"),
    [
        ([1.0, 1.0, 1.0], True, True, True),  # all correct
        ([0.0, 0.0], True, True, True),  # none correct
        # format credit only: the released lenient filter keeps it (its test is "all 0 or all 1")
        ([0.1, 0.1, 0.1], True, False, True),
        ([0.0, 0.1, 0.1], True, False, False),  # 0 / 0.1 mix: strict drops it, the others keep it
        ([1.0, 0.1, 0.0], False, False, False),
        ([1.0, 0.0], False, False, False),
        ([0.5], True, False, True),
    ],
)
def test_filter_modes_match_the_spec(rewards, strict, lenient, zero_spread):
    assert is_zero_gradient(rewards, "strict") is strict
    assert is_zero_gradient(rewards, "lenient") is lenient
    assert is_zero_gradient(rewards, "zero_spread") is zero_spread
    assert is_zero_gradient(rewards, "none") is False


def test_strict_uses_the_correct_threshold():
    assert is_zero_gradient([0.5, 0.5], "strict", correct=0.5)  # all "correct" at 0.5
    assert not is_zero_gradient([0.5, 0.2], "strict", correct=0.5)


def test_bad_filter_input_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match="unknown zero-gradient filter mode 'loose'; allowed: strict, lenient, zero_spread, none",
    ):
        is_zero_gradient([1.0, 0.0], "loose")
    with pytest.raises(ValueError, match="group 1 has no rewards"):
        zero_gradient_mask([[1.0], []], "strict")
    with pytest.raises(ValueError, match="group 1: rewards must be real numbers, got '1\\.0'"):
        zero_gradient_mask([[1.0], [0.0, "1.0"]], "strict")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]), min_size=1, max_size=9), max_size=20),
    st.sampled_from(["strict", "lenient", "zero_spread"]),
)
def test_batched_mask_equals_a_per_group_reference(groups, mode):
    def reference(rewards):
        if mode == "lenient":
            return all(r == 0 for r in rewards) or all(r >= 1.0 for r in rewards)
        if mode == "zero_spread":
            return len(set(rewards)) == 1
        return all(r >= 1.0 for r in rewards) or all(r < 1.0 for r in rewards)

    assert zero_gradient_mask(groups, mode).tolist() == [reference(g) for g in groups]


REWARD_VALUES = st.sampled_from([0.0, -0.0, 1e-300, 0.1, 0.5, 1.0, 2.0, -1e300, 1e300])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 9).flatmap(  # equal sizes (summarize's matrix path), then ragged (its reduceat path)
        lambda n: st.lists(st.lists(REWARD_VALUES, min_size=n, max_size=n), min_size=1, max_size=20)
    )
    | st.lists(st.lists(REWARD_VALUES, min_size=1, max_size=9), min_size=1, max_size=20),
    st.sampled_from([1.0, 0.1, 1e-300]),
)
def test_reward_summary_equals_a_per_group_reference(groups, correct):
    summary = summarize_rewards(groups, correct)
    assert summary.sizes.tolist() == [len(g) for g in groups]
    assert summary.num_correct.tolist() == [sum(r >= correct for r in g) for g in groups]
    assert summary.num_zero.tolist() == [sum(r == 0 for r in g) for g in groups]
    assert summary.no_spread.tolist() == [len(set(g)) == 1 for g in groups]


def test_group_advantages_by_hand_numpy_and_torch():
    # one group [1, 0, 0, 0]: mean 0.25, unbiased std sqrt(0.75 / 3) = 0.5
    expected = np.array([0.75, -0.25, -0.25, -0.25]) / (0.5 + 1e-6)
    np.testing.assert_allclose(group_advantages([1.0, 0.0, 0.0, 0.0]), expected, rtol=1e-12)
    batch = torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]], dtype=torch.float64)
    out = group_advantages(batch)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-12)
    assert out[1].abs().max() == 0  # no spread: all zero, not NaN
    np.testing.assert_allclose(group_advantages([1.0, 0.0], normalize=False), [0.5, -0.5])


def test_group_of_one_rollout_has_zero_advantage():
    assert group_advantages([0.7]).tolist() == [0.0]
    assert group_advantages(torch.tensor([[0.7], [0.1]])).tolist() == [[0.0], [0.0]]
    with pytest.raises(ValueError, match="N >= 1"):
        group_advantages(np.zeros((2, 0)))


def test_batch_accuracy_counts_rollouts_over_all_groups():
    groups = [Group("a", [1.0, 0.0, 0.1, 1.0]), Group("a", [0.0, 0.0, 0.0, 0.0]), Group("b", [1.0, 1.0])]
    assert batch_accuracy(groups) == {"a": 2 / 8, "b": 1.0}
    assert batch_accuracy(groups, correct=0.1) == {"a": 3 / 8, "b": 1.0}


def test_reward_ema_starts_at_zero_and_moves_only_present_tasks():
    ema = RewardEMA(["a", "b"], decay=0.5)
    assert ema.update({"a": 0.8}) == {"a": 0.4, "b": 0.0}
    assert ema.update({"a": 0.0, "b": 1.0}) == {"a": 0.2, "b": 0.5}
    resumed = RewardEMA(["a", "b"])
    resumed.load_state_dict(ema.state_dict())
    assert resumed.update({"b": 0.5}) == ema.update({"b": 0.5})
    with pytest.raises(ValueError, match="unknown task 'c'"):
        ema.update({"c": 0.5})
    with pytest.raises(ValueError, match="accuracy of task 'a' is nan"):
        ema.update({"a": float("nan")})
    with pytest.raises(
        ValueError, match=r"RewardEMA: state_dict is for tasks \['a', 'b'\], this run has \['b', 'a'\]"
    ):
        RewardEMA(["b", "a"]).load_state_dict(ema.state_dict())


def test_per_task_improvement_and_mean_abs_advantage():
    tasks = ["a", "b", "a", "c", "b"]
    before = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    after = np.array([0.2, 0.1, 0.6, 0.4, 0.5])
    improvement = per_task_improvement(tasks, before, after)
    assert improvement.keys() == {"a", "b", "c"}
    assert improvement["a"] == pytest.approx(0.1 + 0.3) and improvement["b"] == pytest.approx(-0.1)
    assert improvement["c"] == pytest.approx(0.0, abs=1e-7)
    assert per_task_mean_abs_advantage(tasks, [1.0, -2.0, -3.0, 0.5, 0.0]) == {"a": 2.0, "b": 1.0, "c": 0.5}
    with pytest.raises(ValueError, match="5 task names for 4 per-sample values"):
        per_task_mean_abs_advantage(tasks, [1.0, 2.0, 3.0, 4.0])


def test_task_stats_fills_missing_signals_with_zero():
    stats = task_stats({"a": 0.5, "b": 0.2}, improvement={"a": 0.01})
    assert stats == {"a": TaskStats(0.5, 0.01, 0.0), "b": TaskStats(0.2, 0.0, 0.0)}
    with pytest.raises(ValueError, match="improvement given for tasks \\['c'\\] that have no reward"):
        task_stats({"a": 0.5}, improvement={"c": 0.1})


def test_group_stores_rewards_as_floats_and_rejects_bad_ones():
    group = Group("a", np.array([1, 0]), payload={"ids": [1, 2]})
    assert group.rewards == (1.0, 0.0) and all(type(r) is float for r in group.rewards)
    with pytest.raises(ValueError, match="Group of task 'a' has no rewards"):
        Group("a", [])
    with pytest.raises(ValueError, match="Group of task 'a' has a non-finite reward"):
        Group("a", [1.0, float("nan")])


def test_improvement_sample_draws_a_share_of_each_task_and_weights_it_back():
    tasks = ["a"] * 8 + ["b"] * 3 + ["c"]
    sample = improvement_sample(tasks, 0.25, np.random.default_rng(0))
    drawn = [tasks[i] for i in sample.indices]
    # ceil(0.25 * 8) = 2 of a's, ceil(0.75) = 1 of b's, and c's only sample: no task is left without one
    assert sorted(drawn) == ["a", "a", "b", "c"]
    assert list(sample.indices) == sorted(sample.indices)
    assert dict(zip(drawn, sample.weights, strict=True)) == {"a": 4.0, "b": 3.0, "c": 1.0}
    # 0.3 * 10 is 3.0000000000000004 in floats: still 3 samples, not 4
    assert len(improvement_sample(["a"] * 10, 0.3, np.random.default_rng(0)).indices) == 3
    # split by micro-batches of 5, 4 and 3 rows, each part's rows counted from its own first row
    parts = sample.rows_per_part([5, 4, 3])
    assert [list(p + start) for p, start in zip(parts, (0, 5, 9), strict=True)] == [
        [i for i in sample.indices if a <= i < b] for a, b in ((0, 5), (5, 9), (9, 12))
    ]
    assert all(
        len(p) == 0 or (p.min() >= 0 and p.max() < size) for p, size in zip(parts, (5, 4, 3), strict=True)
    )
    everything = improvement_sample(tasks, 1.0, np.random.default_rng(0))
    assert list(everything.indices) == list(range(12)) and set(everything.weights) == {1.0}
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction must be in"):
            improvement_sample(tasks, fraction, np.random.default_rng(0))


def test_sampled_improvement_is_unbiased_over_every_subset():
    """Averaged over all equally likely draws, the weighted I_k is the full I_k (hand check of N_k / m_k)."""
    tasks = ["a"] * 5 + ["b"] * 2
    before = np.zeros(7)
    after = np.array([0.3, -0.1, 0.7, 0.2, -0.4, 0.5, 0.1])
    full = per_task_improvement(tasks, before, after)
    estimates = []
    for a_pick in itertools.combinations(range(5), 2):  # ceil(0.4 * 5) = 2 of a's, ceil(0.4 * 2) = 1 of b's
        for b_pick in (5, 6):
            keep = [*a_pick, b_pick]
            kept = ImprovementSample(np.array(keep), np.array([5 / 2, 5 / 2, 2 / 1]))
            estimates.append(per_task_improvement(tasks, before, after[keep], kept))
    for task in full:
        assert np.mean([e[task] for e in estimates]) == pytest.approx(full[task])
    # and the sampler draws those subsets uniformly: every sample is kept m_k / N_k of the time
    rng = np.random.default_rng(1)
    kept = np.zeros(7)
    for _ in range(4000):
        kept[improvement_sample(tasks, 0.4, rng).indices] += 1
    np.testing.assert_allclose(kept / 4000, [0.4] * 5 + [0.5] * 2, atol=0.03)
    with pytest.raises(ValueError, match="objective_before has 3 samples, objective_after 2"):  # 3 kept
        per_task_improvement(["a"] * 3, before[:3], after[:2], ImprovementSample(np.arange(3), np.ones(3)))
