"""The sampler's released-code behaviours (docs/parity.md): lenient filter, AAS switch, RPS start step,
refill shares before B is reached, i.i.d. round counts; each against hand-worked numbers."""

import numpy as np
import pytest

from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.algo.types import Group


class Scripted:
    """generate(counts): each task's groups get fixed rewards; records every request."""

    def __init__(self, rewards: dict[str, list[float]]) -> None:
        self.rewards, self.requests = rewards, []

    def __call__(self, counts: dict[str, int]) -> list[Group]:
        self.requests.append(dict(counts))
        return [Group(task, list(self.rewards[task])) for task, n in counts.items() for _ in range(n)]


def test_lenient_keeps_format_only_groups_and_leaves_them_out_of_rho():
    generate = Scripted({"a": [0.1, 0.1, 0.1, 0.1], "b": [0.0, 0.0, 0.0, 0.0]})
    sampler = RatioPreservingSampler(["a", "b"], 4, filter_mode="lenient", max_rounds=1, seed=0)
    groups, info = sampler.build_batch({"a": 0.5, "b": 0.5}, generate)
    assert info.accepted["a"] == generate.requests[0]["a"] and info.accepted["b"] == 0
    assert info.rho == pytest.approx({"a": 0.0, "b": 0.1})  # 0.9 * 0 + 0.1 * (b's zero-gradient rate 1)
    assert {g.task for g in groups} == {"a"}
    paper_text = RatioPreservingSampler(["a", "b"], 4, filter_mode="zero_spread", max_rounds=1, seed=0)
    groups, info = paper_text.build_batch({"a": 0.5, "b": 0.5}, Scripted(generate.rewards))
    assert groups == [] and info.rho == pytest.approx({"a": 0.1, "b": 0.1})


def test_acceptance_aware_sampling_can_be_switched_off():
    rewards = {"a": [1.0, 0.0], "b": [1.0, 1.0]}  # b: always zero-gradient, so rho_b grows
    for aware in (True, False):
        generate = Scripted(rewards)
        sampler = RatioPreservingSampler(["a", "b"], 4, max_rounds=1, acceptance_aware=aware, seed=0)
        sampler.rho[:] = [0.0, 0.5]  # m = [1, 2] with AAS
        sampler.build_batch({"a": 0.5, "b": 0.5}, generate)
        # 12 prompts by shares z * m: [0.5, 1.0] -> 4 / 8 with AAS; [0.5, 0.5] -> 6 / 6 without
        assert generate.requests[0] == ({"a": 4, "b": 8} if aware else {"a": 6, "b": 6})


def test_rps_starts_at_the_configured_step_with_task_blind_refill_before():
    rewards = {"a": [1.0, 0.0], "b": [1.0, 1.0]}  # b never passes the filter
    sampler = RatioPreservingSampler(["a", "b"], 4, max_rounds=3, ratio_from_step=2, seed=0)
    generate = Scripted(rewards)
    _, first = sampler.build_batch({"a": 0.5, "b": 0.5}, generate)
    # step 1, task-blind: 6 accepted a-groups >= B after one round, so it stops and keeps 4 of them
    assert first.rounds == 1 and first.selected == {"a": 4, "b": 0}
    _, second = sampler.build_batch({"a": 0.5, "b": 0.5}, generate)
    # step 2, RPS: b's quota can never be met, so it refills until N_rs rounds
    assert second.rounds == 3 and second.desired["b"] > 0


@pytest.mark.parametrize("refill", ["released", "deficit"])
def test_refill_shares_before_b_groups_are_accepted(refill):
    generate = Scripted({"a": [1.0, 0.0], "b": [1.0, 1.0]})
    sampler = RatioPreservingSampler(
        ["a", "b"], 8, oversample=1.5, max_rounds=2, refill=refill, acceptance_aware=False, seed=0
    )
    _, info = sampler.build_batch({"a": 0.5, "b": 0.5}, generate)
    assert generate.requests[0] == {"a": 6, "b": 6}
    assert info.desired == {"a": 5, "b": 3}  # (seed 0) deficits after round 1: a 0, b 3
    # 6 accepted < B = 8: released keeps the shares z (AAS off here); the paper's Algorithm 2 asks only b
    assert generate.requests[1] == ({"a": 6, "b": 6} if refill == "released" else {"b": 12})


def test_released_refill_switches_to_deficit_shares_once_b_groups_are_accepted():
    generate = Scripted({"a": [1.0, 0.0], "b": [1.0, 1.0]})
    sampler = RatioPreservingSampler(["a", "b"], 4, max_rounds=2, acceptance_aware=False, seed=0)
    sampler.build_batch({"a": 0.5, "b": 0.5}, generate)
    assert generate.requests[0] == {"a": 6, "b": 6}  # 6 a-groups accepted >= B = 4
    assert generate.requests[1] == {"b": 12}  # only b is in deficit


def test_iid_round_counts_are_multinomial_draws():
    sampler = RatioPreservingSampler(["a", "b", "c"], 10, round_counts="iid", seed=0)
    shares = np.array([0.5, 0.3, 0.2])
    draws = np.array([sampler.round_task_counts(30, shares) for _ in range(4000)])
    assert (draws.sum(axis=1) == 30).all() and len({tuple(d) for d in draws}) > 20
    np.testing.assert_allclose(draws.mean(axis=0), 30 * shares, atol=0.15)
    np.testing.assert_allclose(draws.var(axis=0), 30 * shares * (1 - shares), rtol=0.1)
    apportioned = RatioPreservingSampler(["a", "b", "c"], 10, seed=0)
    assert apportioned.round_task_counts(30, shares).tolist() == [15, 9, 6]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio_from_step": 0}, "ratio_from_step must be an integer >= 1"),
        ({"refill": "eager"}, "refill must be one of released, deficit"),
        ({"round_counts": "poisson"}, "round_counts must be one of largest_remainder, iid"),
    ],
)
def test_bad_new_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RatioPreservingSampler(["a"], 4, **kwargs)
