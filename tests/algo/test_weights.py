"""Task weighters against hand-computed numbers and an independent torch float64 reference."""

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.algo.types import TaskStats
from openrlhf_mt.algo.weights import WEIGHTERS, IWUWeighter, SECWeighter, make_weighter

TASKS = ["a", "b", "c"]
# J, I per task for a few updates; task a's improvement is beyond the clip in updates 1 and 3. No score equals
# the weighted mean exactly: Adam turns a zero gradient's rounding noise (1e-18) into a 1e-12 step.
STAT_SEQUENCE = [
    {"a": TaskStats(0.2, 0.5), "b": TaskStats(0.8, -0.05), "c": TaskStats(0.45, 0.0)},
    {"a": TaskStats(0.3, 0.02), "b": TaskStats(0.7, 0.3), "c": TaskStats(0.1, -0.2)},
    {"a": TaskStats(0.9, -0.4), "b": TaskStats(0.2, 0.01), "c": TaskStats(0.6, 0.07)},
    {"a": TaskStats(0.4, 0.0), "b": TaskStats(0.4, 0.0), "c": TaskStats(0.0, 0.09)},
]


def torch_reference(scores_per_step, optimizer, lr, weight_decay):
    """The released code's recipe: autograd of softmax(w) . s, then a torch.optim step, in float64."""
    w = torch.zeros(len(scores_per_step[0]), dtype=torch.float64, requires_grad=True)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(
        [w], lr=lr, weight_decay=weight_decay
    )
    history = []
    for scores in scores_per_step:
        opt.zero_grad()
        probs = torch.softmax(w, dim=0)
        w.grad = torch.autograd.grad(probs, w, grad_outputs=torch.tensor(scores, dtype=torch.float64))[0]
        opt.step()
        history.append(torch.softmax(w.detach(), dim=0).numpy().copy())
    return history


def iwu_scores(stats, lam, clip):
    return [max(-clip, min(clip, stats[t].improvement)) + lam * stats[t].reward for t in TASKS]


def test_iwu_sgd_first_step_matches_hand_computation():
    w = IWUWeighter(TASKS, lr=0.025, lam=0.2, improvement_clip=0.1)
    w.update(STAT_SEQUENCE[0])
    # s = [0.1 + 0.04, -0.05 + 0.16, 0 + 0.09] = [0.14, 0.11, 0.09]; z = 1/3; g_k = (s_k - 0.34/3) / 3
    expected_logits = -0.025 * np.array([0.08, -0.01, -0.07]) / 9
    np.testing.assert_allclose(w.logits, expected_logits, rtol=0, atol=1e-15)
    expected = np.exp(expected_logits) / np.exp(expected_logits).sum()
    np.testing.assert_allclose(list(w.weights().values()), expected, rtol=0, atol=1e-15)
    assert w.diagnostics["clip_bound/a"] == 1.0 and w.diagnostics["clip_bound/b"] == 0.0
    assert w.diagnostics["abs_improvement/a"] == 0.5
    assert w.diagnostics["lam_reward/b"] == pytest.approx(0.16)
    assert w.diagnostics["score/a"] == pytest.approx(0.14)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_iwu_matches_torch_optimizer_step_for_step(optimizer, weight_decay):
    lam, clip = 0.3, 0.1
    lr = 0.025 if optimizer == "adam" else 0.5  # large enough that plain SGD visibly moves the weights
    w = IWUWeighter(
        TASKS, lr=lr, lam=lam, improvement_clip=clip, weight_decay=weight_decay, optimizer=optimizer
    )
    stats_sequence = STAT_SEQUENCE * 3  # 12 steps: Adam's bias correction and weight decay both matter
    reference = torch_reference(
        [iwu_scores(s, lam, clip) for s in stats_sequence], optimizer, lr, weight_decay
    )
    for stats, expected in zip(stats_sequence, reference, strict=True):
        got = w.update(stats)
        np.testing.assert_allclose(list(got.values()), expected, rtol=0, atol=1e-13)
    assert max(abs(x) for x in w.logits) > 0.01  # the check above compared weights that actually moved


def test_iwu_clip_rate_counts_binding_updates():
    w = IWUWeighter(TASKS, improvement_clip=0.1)
    for stats in STAT_SEQUENCE:
        w.update(stats)
    # |I_a| = 0.5, 0.02, 0.4, 0.0 -> the clip bound in 2 of 4 updates; task c: 0.0, 0.2, 0.07, 0.09 -> 1 of 4
    assert w.diagnostics["clip_bound_rate/a"] == 0.5
    assert w.diagnostics["clip_bound_rate/c"] == 0.25


def test_strict_uses_reward_only():
    w = make_weighter("strict", TASKS, optimizer="adam")
    reference = torch_reference([[s[t].reward for t in TASKS] for s in STAT_SEQUENCE], "adam", 0.025, 0.0)
    for stats, expected in zip(STAT_SEQUENCE, reference, strict=True):
        np.testing.assert_allclose(list(w.update(stats).values()), expected, rtol=0, atol=1e-13)
    # lowest reward gains weight: after update 4 (J = .4, .4, 0) task c is the most weighted
    assert max(w.weights(), key=w.weights().get) == "c"


@pytest.mark.parametrize(("optimizer", "lam"), [("sgd", 1.0), ("adam", 0.2)])
def test_reg_is_descent_with_l2_on_logits(optimizer, lam):
    eta = 0.05
    w = make_weighter("reg", TASKS, eta=eta, lam=lam, optimizer=optimizer)
    scores = [[lam * s[t].reward for t in TASKS] for s in STAT_SEQUENCE * 2]
    reference = torch_reference(scores, optimizer, 0.025, eta)
    for stats, expected in zip(STAT_SEQUENCE * 2, reference, strict=True):
        np.testing.assert_allclose(list(w.update(stats).values()), expected, rtol=0, atol=1e-13)


def test_reg_sgd_second_step_by_hand():
    """xi <- xi - beta (g + eta xi): the eta term only shows from the second step on."""
    w = make_weighter("reg", ["a", "b"], lr=0.5, eta=0.1)
    w.update({"a": TaskStats(1.0), "b": TaskStats(0.0)})  # z = 1/2: g = [1/4, -1/4]
    np.testing.assert_allclose(w.logits, [-0.125, 0.125], atol=1e-15)
    w.update({"a": TaskStats(0.0), "b": TaskStats(0.0)})  # s = 0: g = 0, only the decay acts
    np.testing.assert_allclose(w.logits, [-0.125 * 0.95, 0.125 * 0.95], atol=1e-15)


def test_sec_bandit_by_hand():
    w = SECWeighter(TASKS, alpha=0.5, temperature=0.2)
    w.update({"a": TaskStats(0, mean_abs_advantage=0.8), "b": TaskStats(0, mean_abs_advantage=0.4)})
    # Q = [0.4, 0.2, 0] -> Q/T = [2, 1, 0]
    expected = np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum()
    np.testing.assert_allclose(list(w.weights().values()), expected, atol=1e-15)
    w.update({"a": TaskStats(0, mean_abs_advantage=0.0)})  # b is absent: released code steps it with 0
    expected = np.exp([1.0, 0.5, 0.0]) / np.exp([1.0, 0.5, 0.0]).sum()  # Q = [0.2, 0.1, 0]
    np.testing.assert_allclose(list(w.weights().values()), expected, atol=1e-15)
    kept = SECWeighter(TASKS, alpha=0.5, temperature=0.2, absent_arms="keep")
    kept.update({"a": TaskStats(0, mean_abs_advantage=0.8), "b": TaskStats(0, mean_abs_advantage=0.4)})
    kept.update({"a": TaskStats(0, mean_abs_advantage=0.0)})  # only a moves: Q = [0.2, 0.2, 0]
    expected = np.exp([1.0, 1.0, 0.0]) / np.exp([1.0, 1.0, 0.0]).sum()
    np.testing.assert_allclose(list(kept.weights().values()), expected, atol=1e-15)
    with pytest.raises(ValueError, match="absent_arms must be one of decay, keep"):
        SECWeighter(TASKS, absent_arms="freeze")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_absent_task_keeps_its_logit_and_others_see_the_neutral_baseline(optimizer):
    w = IWUWeighter(TASKS, optimizer=optimizer, weight_decay=1e-3)
    w.update(STAT_SEQUENCE[0])
    before = w.state_dict()
    stats = {"a": TaskStats(0.1, 0.05), "b": TaskStats(0.9, 0.0)}
    z = w.probabilities()
    w.update(stats)
    assert w.logits[2] == before["logits"][2]
    if optimizer == "adam":
        assert w.exp_avg[2] == before["exp_avg"][2] and w.steps == [2, 2, 1]
    # the gradient equals the full formula with s_c set to the present tasks' weighted mean score
    s = np.array([0.05 + 0.02, 0.0 + 0.18])  # clip(I) + 0.2 J
    s_c = (z[:2] @ s) / z[:2].sum()
    full = np.append(s, s_c)
    expected_gradient = z * (full - z @ full)
    assert expected_gradient[2] == pytest.approx(0, abs=1e-17)
    assert w.diagnostics["gradient/a"] == pytest.approx(expected_gradient[0], abs=1e-15)
    assert w.diagnostics["gradient/b"] == pytest.approx(expected_gradient[1], abs=1e-15)
    assert "gradient/c" not in w.diagnostics


def test_uniform_and_static():
    assert make_weighter("uniform", TASKS).update(STAT_SEQUENCE[0]) == {t: 1 / 3 for t in TASKS}
    w = make_weighter("static", TASKS, weights={"a": 2, "b": 1, "c": 1})
    assert w.weights() == {"a": 0.5, "b": 0.25, "c": 0.25}
    assert w.update(STAT_SEQUENCE[1]) == {"a": 0.5, "b": 0.25, "c": 0.25}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"a": 1, "b": 1}, "without a weight \\['c'\\]"),
        ({"a": 1, "b": 1, "c": 1, "d": 1}, "unknown tasks \\['d'\\]"),
        ({"a": 1, "b": -1, "c": 1}, "bad for \\['b'\\]"),
        ({"a": 0, "b": 0, "c": 0}, "all zero"),
        ({"a": 1, "b": math.nan, "c": 1}, "bad for \\['b'\\]"),
    ],
)
def test_static_rejects_bad_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        make_weighter("static", TASKS, weights=weights)


@pytest.mark.parametrize("name", list(WEIGHTERS))
@pytest.mark.parametrize(("field", "value"), [("reward", math.nan), ("improvement", math.inf)])
def test_non_finite_stats_are_rejected_and_leave_weights_unchanged(name, field, value):
    kwargs = {"weights": {"a": 1, "b": 2, "c": 3}} if name == "static" else {}
    w = make_weighter(name, TASKS, **kwargs)
    w.update(STAT_SEQUENCE[0])
    before = w.weights()
    bad = dict(STAT_SEQUENCE[1])
    bad["b"] = TaskStats(**{"reward": 0.5, "improvement": 0.0, field: value})
    with pytest.raises(ValueError, match=f"stats\\['b'\\].{field} is {value}"):
        w.update(bad)
    assert w.weights() == before


def test_bad_names_options_and_tasks_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task weighter 'iwv'; allowed: uniform, static, iwu"):
        make_weighter("iwv", TASKS)
    with pytest.raises(
        ValueError, match="unknown options \\['lambda'\\]; allowed: lr, lam, improvement_clip"
    ):
        make_weighter("iwu", TASKS, **{"lambda": 0.2})
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'; allowed: sgd, adam"):
        make_weighter("iwu", TASKS, optimizer="adamw")
    with pytest.raises(ValueError, match="unknown task 'd'"):
        make_weighter("iwu", TASKS).update({"d": TaskStats(0.5)})
    with pytest.raises(ValueError, match="task names repeat"):
        make_weighter("uniform", ["a", "a"])
    with pytest.raises(ValueError, match="state_dict is for tasks \\['a', 'b'\\], this run has"):
        make_weighter("iwu", TASKS).load_state_dict(make_weighter("iwu", ["a", "b"]).state_dict())
    with pytest.raises(ValueError, match="state_dict is for a 'sec' weighter"):
        make_weighter("iwu", TASKS).load_state_dict(make_weighter("sec", TASKS).state_dict())


@pytest.mark.parametrize("name", ["iwu", "strict", "reg", "sec"])
def test_state_dict_round_trip_gives_identical_continuation(name):
    kwargs = {"optimizer": "adam", "weight_decay": 1e-4} if name == "iwu" else {}
    original = make_weighter(name, TASKS, **kwargs)
    for stats in STAT_SEQUENCE[:2]:
        original.update(stats)
    resumed = make_weighter(name, TASKS, **kwargs)
    resumed.load_state_dict(copy.deepcopy(original.state_dict()))
    assert resumed.diagnostics == original.diagnostics != {}  # logged before the resumed run's first update
    for stats in STAT_SEQUENCE[2:]:
        assert resumed.update(stats) == original.update(stats)
    assert resumed.diagnostics == original.diagnostics


def test_huge_logits_are_fine():
    w = make_weighter("iwu", TASKS, lr=1e6)
    w.update({"a": TaskStats(0.0, 0.0), "b": TaskStats(1e3), "c": TaskStats(1.0)})
    assert max(abs(x) for x in w.logits) > 1e6
    weights = np.array(list(w.weights().values()))
    assert np.isfinite(weights).all() and weights.sum() == pytest.approx(1.0)


finite = st.floats(allow_nan=False, allow_infinity=False)
task_stats = st.builds(TaskStats, finite, finite, finite)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(["iwu", "strict", "reg", "sec"]),
    optimizer=st.sampled_from(["sgd", "adam"]),
    num_tasks=st.integers(1, 5),
    data=st.data(),
)
def test_weights_stay_on_the_simplex(name, optimizer, num_tasks, data):
    tasks = [f"t{k}" for k in range(num_tasks)]
    w = make_weighter(name, tasks, **({} if name == "sec" else {"optimizer": optimizer}))
    for _ in range(data.draw(st.integers(1, 6))):
        present = data.draw(st.lists(st.sampled_from(tasks), unique=True))
        stats = {t: data.draw(task_stats) for t in present}
        try:
            weights = w.update(stats)
        except ValueError as error:  # the one allowed refusal: scores so large the step overflows
            assert "overflow" in str(error) or "non-finite" in str(error)
            weights = w.weights()
        values = np.array(list(weights.values()))
        assert list(weights) == tasks
        assert np.isfinite(values).all() and (values >= 0).all()
        assert values.sum() == pytest.approx(1.0, abs=1e-12)
