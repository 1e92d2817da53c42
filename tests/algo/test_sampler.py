"""The ratio-preserving sampler on synthetic tasks with fixed, different zero-gradient probabilities."""

import copy
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.algo.filters import zero_gradient_mask
from openrlhf_mt.algo.request import apportion
from openrlhf_mt.algo.sampler import Pool, RatioPreservingSampler
from openrlhf_mt.algo.signals import RewardEMA, batch_accuracy, task_stats
from openrlhf_mt.algo.types import Group
from openrlhf_mt.algo.weights import make_weighter
from openrlhf_mt.simulate import SyntheticTasks

RATES = {"hard": 0.7, "medium": 0.4, "easy": 0.1}  # probability that a group is zero-gradient
WEIGHTS = {"hard": 0.5, "medium": 0.3, "easy": 0.2}


def mean_shares(preserve_ratio, rates=RATES, weights=WEIGHTS, steps=300, batch_size=64, seed=0, **kwargs):
    sampler = RatioPreservingSampler(
        list(rates), batch_size, filter_mode="lenient", preserve_ratio=preserve_ratio, seed=seed, **kwargs
    )
    generate = SyntheticTasks(rates, rollouts=8, seed=seed)
    infos = [sampler.build_batch(weights, generate)[1] for _ in range(steps)]
    shares = {t: np.mean([info.realised_share[t] for info in infos]) for t in rates}
    return shares, infos, sampler


def test_rps_shares_match_weights_and_dapo_drifts_toward_easy_tasks():
    rps, rps_infos, _ = mean_shares(preserve_ratio=True)
    dapo, dapo_infos, _ = mean_shares(preserve_ratio=False)
    assert all(info.shortfall == 0 for info in rps_infos + dapo_infos)  # the round cap never bound
    for task, weight in WEIGHTS.items():
        assert abs(rps[task] - weight) < 0.02, (task, rps[task], weight)
    # DAPO fills the batch with whatever survives the filter: acceptance 0.3 / 0.6 / 0.9 skews the shares
    # toward 0.5*0.3 : 0.3*0.6 : 0.2*0.9 = 0.29 : 0.35 : 0.35
    assert dapo["hard"] < WEIGHTS["hard"] - 0.15
    assert dapo["easy"] > WEIGHTS["easy"] + 0.10
    assert dapo["medium"] > WEIGHTS["medium"] + 0.02


@settings(max_examples=8, deadline=None)
@given(
    rates=st.lists(st.floats(0.0, 0.75), min_size=2, max_size=4),
    raw_weights=st.lists(st.floats(0.1, 1.0), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_rps_shares_match_weights_for_any_rates_and_weights(rates, raw_weights, seed):
    tasks = {f"t{k}": rate for k, rate in enumerate(rates)}
    weights = dict(zip(tasks, raw_weights, strict=False))
    total = sum(weights.values())
    shares, infos, _ = mean_shares(True, tasks, weights, steps=200, seed=seed)
    assert all(info.shortfall == 0 for info in infos)
    gaps = [abs(shares[t] - weights[t] / total) for t in tasks]
    assert np.mean(gaps) < 0.02, (shares, weights)


@settings(max_examples=30, deadline=None)
@given(
    rates=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
    raw_weights=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    batch_size=st.integers(1, 40),
    max_rounds=st.integers(1, 3),
    preserve_ratio=st.booleans(),
    filter_mode=st.sampled_from(["strict", "lenient", "none"]),
    reuse_max_age=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_rounds_batch_size_and_accounting_invariants(
    rates, raw_weights, batch_size, max_rounds, preserve_ratio, filter_mode, reuse_max_age, seed
):
    tasks = {f"t{k}": rate for k, rate in enumerate(rates)}
    weights = dict(zip(tasks, raw_weights, strict=False))
    if sum(weights.values()) == 0:
        weights["t0"] = 1.0
    if not (preserve_ratio and filter_mode != "none"):
        reuse_max_age = 0
    sampler = RatioPreservingSampler(
        list(tasks),
        batch_size,
        max_rounds=max_rounds,
        preserve_ratio=preserve_ratio,
        filter_mode=filter_mode,
        reuse_max_age=reuse_max_age,
        seed=seed,
    )
    synthetic = SyntheticTasks(tasks, rollouts=4, seed=seed)
    asked: list[dict[str, int]] = []

    def generate(counts):
        assert all(weights[t] > 0 for t in counts)  # a task with weight 0 is never generated
        asked.append(counts)
        return synthetic(counts)

    for _ in range(4):
        asked.clear()
        batch, info = sampler.build_batch(weights, generate)
        assert len(asked) == info.rounds <= max_rounds
        assert len(batch) <= batch_size and info.shortfall == batch_size - len(batch)
        assert not zero_gradient_mask([g.rewards for g in batch], filter_mode).any()
        assert info.generated == {t: sum(c.get(t, 0) for c in asked) for t in tasks}
        assert info.selected == {t: sum(g.task == t for g in batch) for t in tasks}
        assert all(info.selected[t] <= info.accepted[t] for t in tasks)
        assert sum(info.desired.values()) == batch_size
        assert info.reused_mean_age <= reuse_max_age
        if filter_mode == "none":
            assert info.rounds == 1 and info.generated == info.desired and len(batch) == batch_size


def test_rho_converges_to_the_true_zero_gradient_rates():
    _, _, sampler = mean_shares(True, steps=60)
    np.testing.assert_allclose(sampler.rho, list(RATES.values()), atol=0.04)


def test_first_round_is_inflated_by_the_tracked_acceptance():
    _, _, sampler = mean_shares(True, steps=60)
    rho, rounds = sampler.rho.copy(), []
    sampler.build_batch(WEIGHTS, lambda counts: rounds.append(counts) or SyntheticTasks(RATES)(counts))
    # round 1: 3 * 64 prompts with shares z_k m_k, m_k = 1 / (1 - rho_k), about 1/0.3, 1/0.6, 1/0.9 here
    expected = apportion(192, np.array(list(WEIGHTS.values())) / (1 - rho))
    assert list(rounds[0].values()) == expected.tolist()
    assert rounds[0]["hard"] > 5 * rounds[0]["easy"]


def test_a_task_that_runs_dry_stops_at_the_round_cap():
    rates = {"dry": 1.0, "ok": 0.0}
    sampler = RatioPreservingSampler(list(rates), 32, max_rounds=4, filter_mode="strict")
    batch, info = sampler.build_batch({"dry": 0.5, "ok": 0.5}, SyntheticTasks(rates))
    assert (
        info.rounds == 4 and info.accepted["dry"] == 0 and info.zero_gradient_rate == {"dry": 1.0, "ok": 0.0}
    )
    assert (
        len(batch) == info.selected["ok"] == 32
    )  # step 6: the rest of the batch is filled from ok's surplus
    batch, info = sampler.build_batch({"dry": 1.0, "ok": 0.0}, SyntheticTasks(rates))
    assert batch == [] and info.shortfall == 32 and info.rounds == 4 and info.generated["ok"] == 0


def test_info_accuracy_and_zero_gradient_rate_match_the_generated_groups():
    sampler = RatioPreservingSampler(list(RATES), 32, filter_mode="strict")
    rounds = []

    def generate(counts):
        groups = [
            Group(g.task, [min(r, 0.1) if i % 3 else r for i, r in enumerate(g.rewards)])
            for g in synthetic(counts)
        ]
        rounds.append(groups)
        return groups

    synthetic = SyntheticTasks(RATES, seed=1)
    for _ in range(3):
        rounds.clear()
        _, info = sampler.build_batch(WEIGHTS, generate)
        assert info.accuracy_per_round == [batch_accuracy(groups) for groups in rounds]
        assert info.accuracy == batch_accuracy([g for groups in rounds for g in groups])
        every = [g for groups in rounds for g in groups]
        for task, rate in info.zero_gradient_rate.items():
            mine = [g.rewards for g in every if g.task == task]
            assert rate == sum(zero_gradient_mask(mine, "strict")) / len(mine)


def test_round_one_only_when_quotas_are_met():
    sampler = RatioPreservingSampler(["a", "b"], 16, filter_mode="lenient")
    batch, info = sampler.build_batch({"a": 0.25, "b": 0.75}, SyntheticTasks({"a": 0.0, "b": 0.0}))
    assert info.rounds == 1 and info.generated == {"a": 12, "b": 36}  # 48 prompts apportioned 1 : 3
    assert len(batch) == 16 and info.selected == info.desired


def test_surplus_fills_the_batch_when_one_task_is_short():
    sampler = RatioPreservingSampler(["scarce", "plenty"], 40, max_rounds=1, filter_mode="lenient")
    batch, info = sampler.build_batch(
        {"scarce": 0.5, "plenty": 0.5}, SyntheticTasks({"scarce": 0.95, "plenty": 0})
    )
    assert info.accepted["scarce"] < info.desired["scarce"]
    assert len(batch) == 40 and info.selected["scarce"] == info.accepted["scarce"]  # filled from plenty


def test_generate_must_return_what_was_asked():
    sampler = RatioPreservingSampler(["a", "b"], 8)

    def short(counts):
        return [Group(task, [1.0, 0.0]) for task, n in counts.items() for _ in range(n - 1)]

    with pytest.raises(ValueError, match="must return exactly counts\\[task\\] groups per task; asked for"):
        sampler.build_batch({"a": 0.5, "b": 0.5}, short)
    with pytest.raises(ValueError, match="got \\{'z': 1\\}"):
        sampler.build_batch({"a": 0.5, "b": 0.5}, lambda counts: [Group("z", [1.0])])
    with pytest.raises(
        ValueError, match=re.escape("generate() must return a list of Group, got [(1.0, 0.0)")
    ):
        sampler.build_batch({"a": 0.5, "b": 0.5}, lambda counts: [(1.0, 0.0)])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"a": 1.0}, "missing \\['b'\\]"),
        ({"a": 1.0, "b": 0.0, "c": 1.0}, "unknown \\['c'\\]"),
        ({"a": -1.0, "b": 2.0}, "finite, >= 0 and not all zero"),
        ({"a": float("nan"), "b": 2.0}, "finite, >= 0 and not all zero"),
        ({"a": 0.0, "b": 0.0}, "finite, >= 0 and not all zero"),
    ],
)
def test_bad_weights_are_clear_errors(weights, message):
    with pytest.raises(ValueError, match=message):
        RatioPreservingSampler(["a", "b"], 8).build_batch(weights, SyntheticTasks({"a": 0.1, "b": 0.1}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"oversample": 0.5}, "oversample must be >= 1"),
        ({"max_rounds": 2.5}, "max_rounds must be an integer >= 1, got 2.5"),
        ({"rho_decay": 1.0}, "rho_decay must be in \\[0, 1\\)"),
        ({"filter_mode": "dapo"}, "allowed: strict, lenient, zero_spread, none"),
        ({"reuse_max_age": 1, "preserve_ratio": False}, "reuse_max_age > 0 needs preserve_ratio=True"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RatioPreservingSampler(["a", "b"], **{"batch_size": 8, **kwargs})


def test_apportion_sums_exactly_and_follows_largest_remainder():
    assert apportion(10, np.array([1.0, 1.0, 1.0])).tolist() == [4, 3, 3]
    assert apportion(7, np.array([0.0, 2.0, 5.0])).tolist() == [0, 2, 5]
    assert apportion(5, np.array([0.5, 0.3, 0.2])).tolist() == [3, 1, 1]  # 2.5, 1.5, 1.0 -> a wins the tie


def test_replay_buffer_saves_generation_and_keeps_the_ratio():
    _, fresh_infos, _ = mean_shares(True, steps=200)
    reused, reuse_infos, _ = mean_shares(True, steps=200, reuse_max_age=1)
    prompts = [np.mean([sum(i.generated.values()) for i in infos]) for infos in (fresh_infos, reuse_infos)]
    assert prompts[1] < 0.9 * prompts[0]  # measured: about 0.8
    assert np.mean([i.reused for i in reuse_infos]) > 10
    assert all(i.reused == 0 or i.reused_mean_age == 1.0 for i in reuse_infos)
    for task, weight in WEIGHTS.items():
        assert abs(reused[task] - weight) < 0.02


def run_training(sampler, weighter, generate, steps):
    """A synthetic training loop: batch, then an IWU update from the batch's accuracy and share."""
    reward_level = RewardEMA(sampler.tasks)
    history = []
    for _ in range(steps):
        batch, info = sampler.build_batch(weighter.weights(), generate)
        for accuracy in info.accuracy_per_round:
            reward_level.update(accuracy)
        rewards = reward_level.values()
        improvement = {t: 0.05 * info.realised_share[t] for t in sampler.tasks}
        weighter.update(task_stats(rewards, improvement))
        history.append(([(g.task, g.rewards, g.payload) for g in batch], info, weighter.weights()))
    return history, reward_level


def test_state_dict_round_trip_gives_an_identical_continuation():
    def fresh():
        sampler = RatioPreservingSampler(list(RATES), 32, max_rounds=3, reuse_max_age=2, seed=7)
        weighter = make_weighter("iwu", list(RATES), optimizer="adam")
        return sampler, weighter

    synthetic = SyntheticTasks(RATES, seed=3)
    payloads = iter(range(10**9))  # every group gets a distinct payload, so batches compare exactly

    def generate(counts):
        return [Group(g.task, g.rewards, payload=next(payloads)) for g in synthetic(counts)]

    sampler, weighter = fresh()
    run_training(sampler, weighter, generate, 5)
    saved = copy.deepcopy((sampler.state_dict(), weighter.state_dict(), synthetic.rng, payloads))
    original, _ = run_training(sampler, weighter, generate, 5)

    resumed_sampler, resumed_weighter = fresh()
    resumed_sampler.load_state_dict(saved[0])
    resumed_weighter.load_state_dict(saved[1])
    synthetic.rng, payloads = saved[2], saved[3]
    resumed, _ = run_training(resumed_sampler, resumed_weighter, generate, 5)
    assert any(info.reused for _, info, _ in original)  # the replay buffer was part of the state
    assert resumed == original


def test_state_dict_of_other_tasks_is_refused():
    with pytest.raises(ValueError, match="state_dict is for tasks \\['a'\\], this run has \\['a', 'b'\\]"):
        RatioPreservingSampler(["a", "b"], 8).load_state_dict(RatioPreservingSampler(["a"], 8).state_dict())


@pytest.mark.parametrize(
    ("desired", "preserve_ratio", "expected"),
    [
        # quotas fill the batch: each group of task k is kept with probability n_k / m_k
        ((3, 4, 3), True, (3 / 8, 4 / 5, 3 / 6)),
        # quotas leave 4 slots: the fill is a uniform 4 of the 13 left over, whatever their task
        ((2, 2, 2), True, tuple(n / m + (1 - n / m) * 4 / 13 for n, m in ((2, 8), (2, 5), (2, 6)))),
        # DAPO: a uniform 10 of the 19, task-blind
        ((2, 2, 2), False, (10 / 19,) * 3),
    ],
)
def test_line_6_selection_probabilities(desired, preserve_ratio, expected):
    """Algorithm 2, line 6, by exact inclusion probabilities (a fill that took the first leftovers of the
    quota shuffle once favoured the task with the most groups: 0.51 instead of 0.48 here)."""
    sampler = RatioPreservingSampler(["a", "b", "c"], 10, preserve_ratio=preserve_ratio, seed=1)
    pool_task = np.repeat([0, 1, 2], [8, 5, 6])
    pool = Pool(groups=list(range(len(pool_task))))
    counts = np.zeros(len(pool_task))
    draws = 20_000
    for _ in range(draws):
        chosen = sampler.select(pool, pool_task, np.zeros_like(pool_task), np.array(desired), preserve_ratio)
        assert len(set(chosen.tolist())) == len(chosen) == 10
        counts[chosen] += 1
    for k, probability in enumerate(expected):  # binomial sd <= 0.0035 per group: 0.012 is > 3 sd
        np.testing.assert_allclose(counts[pool_task == k] / draws, probability, atol=0.012)
