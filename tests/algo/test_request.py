"""Adaptive request sizing (algo/request.py) against exact binomial numbers, and in the sampler."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.algo.request import acceptance_estimate, adaptive_counts, prompts_needed
from openrlhf_mt.algo.sampler import RatioPreservingSampler
from openrlhf_mt.simulate import SyntheticTasks


def binomial_tail(r: int, d: int, a: float) -> float:
    """P(Binomial(r, a) >= d), exactly (in log space)."""
    log = lambda k: (  # noqa: E731
        math.lgamma(r + 1)
        - math.lgamma(k + 1)
        - math.lgamma(r - k + 1)
        + k * math.log(a)
        + (r - k) * math.log1p(-a)
    )
    return sum(math.exp(log(k)) for k in range(d, r + 1))


def fewest(d: int, a: float, confidence: float) -> int:
    r = d
    while binomial_tail(r, d, a) < confidence:
        r += 1
    return r


@pytest.mark.parametrize("a", [0.05, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("d", [1, 3, 13, 55])
def test_prompts_needed_is_within_a_prompt_or_a_tenth_of_the_exact_binomial_answer(a: float, d: int) -> None:
    r = int(prompts_needed(np.array([d]), np.array([a]), 0.9)[0])
    exact = fewest(d, a, 0.9)
    assert exact - 1 <= r <= 1.12 * exact + 1  # the normal approximation, never far from the exact count
    assert binomial_tail(r, d, a) >= 0.89  # and it covers the deficit as often as asked, to a point


def test_no_prompts_for_a_task_without_deficit_and_at_least_the_deficit_otherwise() -> None:
    needed = prompts_needed(np.array([0, 4, 4]), np.array([0.5, 1.0, 0.9]), 0.9)  # P(Bin(5, .9) >= 4) = .92
    assert needed.tolist() == [0, 4, 5]


def test_acceptance_estimate_removes_the_ema_start_up_bias() -> None:
    """rho <- 0.9 rho + 0.1 x from 0: after one update with x = 0.4, rho = 0.04 but the estimate is 0.6."""
    rho, updates = np.array([0.04, 0.0, 0.9 * 0.04 + 0.1 * 0.4]), np.array([1, 0, 2])
    estimate = acceptance_estimate(rho, updates, decay=0.9, prior=1 / 3)
    assert estimate == pytest.approx([0.6, 1 / 3, 0.6])
    assert acceptance_estimate(np.array([1.0]), np.array([50]), 0.9, 0.5) == pytest.approx([0.01])  # floor


@settings(max_examples=200, deadline=None)
@given(
    deficit=st.lists(st.integers(0, 300), min_size=1, max_size=9),
    acceptance=st.floats(0.01, 1.0),
    cap=st.integers(1, 800),
)
def test_adaptive_counts_never_exceed_the_cap_and_ask_only_for_tasks_in_deficit(
    deficit, acceptance, cap
) -> None:
    d = np.array(deficit)
    counts = adaptive_counts(d, np.full(len(d), acceptance), 0.9, cap)
    assert counts.sum() <= max(cap, 0) and (counts[d == 0] == 0).all()
    if prompts_needed(d, np.full(len(d), acceptance), 0.9).sum() <= cap:
        assert (counts >= d).all()


RATES = {"hard": 0.7, "medium": 0.4, "easy": 0.1}
WEIGHTS = {"hard": 0.5, "medium": 0.3, "easy": 0.2}


def run(request: str, reuse_max_age: int = 0, steps: int = 300) -> tuple[float, dict[str, float], float]:
    """(groups generated / the ideal sum_k n_k / (1 - rate_k) with the true rates, mean shares, rounds)."""
    sampler = RatioPreservingSampler(
        list(RATES), 64, filter_mode="lenient", seed=0, request=request, reuse_max_age=reuse_max_age
    )
    generate = SyntheticTasks(RATES, rollouts=8, seed=0)
    infos = [sampler.build_batch(WEIGHTS, generate)[1] for _ in range(steps)][10:]  # after rho settles
    generated = sum(sum(info.generated.values()) for info in infos)
    ideal = sum(sum(info.desired[t] / (1 - RATES[t]) for t in RATES) for info in infos)
    shares = {t: float(np.mean([info.realised_share[t] for info in infos])) for t in RATES}
    return generated / ideal, shares, float(np.mean([info.rounds for info in infos]))


def test_adaptive_requests_generate_near_the_ideal_and_keep_the_shares() -> None:
    released, released_shares, _ = run("oversample")
    adaptive, adaptive_shares, rounds = run("adaptive")
    with_reuse, reuse_shares, _ = run("adaptive", reuse_max_age=1)
    assert released > 1.5  # M_os x B per round: half again the groups the acceptance rates need
    assert adaptive < 1.25 and rounds < 1.4  # one round usually suffices
    assert with_reuse < 1.05  # the target: within 10 % of the ideal
    for shares in (released_shares, adaptive_shares, reuse_shares):
        assert shares == pytest.approx(WEIGHTS, abs=0.01)  # RPS's shares are untouched


def test_the_ideal_the_run_reports_uses_its_own_acceptance_estimates() -> None:
    sampler = RatioPreservingSampler(list(RATES), 64, filter_mode="lenient", seed=0, request="adaptive")
    generate = SyntheticTasks(RATES, rollouts=8, seed=1)
    for _ in range(30):
        _, info = sampler.build_batch(WEIGHTS, generate)
    acceptance = dict(zip(RATES, sampler.acceptance().tolist(), strict=True))
    _, info = sampler.build_batch(WEIGHTS, generate)
    assert info.ideal_generated == pytest.approx(sum(info.desired[t] / acceptance[t] for t in RATES))
    assert info.to_metrics()["overgeneration"] == pytest.approx(
        sum(info.generated.values()) / info.ideal_generated
    )


def test_a_task_blind_run_s_ideal_is_what_yields_b_accepted_groups_at_its_shares() -> None:
    """DAPO draws prompts with the weights' shares and keeps any accepted group: B / sum_k z_k a_k groups
    give B accepted ones in expectation (the quota formula sum_k n_k / a_k would overstate it)."""
    sampler = RatioPreservingSampler(list(RATES), 64, filter_mode="lenient", seed=0, preserve_ratio=False)
    generate = SyntheticTasks(RATES, rollouts=8, seed=2)
    infos = [sampler.build_batch(WEIGHTS, generate)[1] for _ in range(200)][20:]
    true_acceptance = {t: 1 - RATES[t] for t in RATES}
    expected_ideal = 64 / sum(WEIGHTS[t] * true_acceptance[t] for t in RATES)  # 64 / 0.53 = 120.8
    assert np.mean([info.ideal_generated for info in infos]) == pytest.approx(expected_ideal, rel=0.03)
    accepted_per_generated = sum(sum(i.accepted.values()) for i in infos) / sum(
        sum(i.generated.values()) for i in infos
    )
    assert 64 / accepted_per_generated == pytest.approx(expected_ideal, rel=0.03)
