"""The clipped surrogate pieces both engines use, against hand computation and a float64 loop reference."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.algo.loss import clipped_objective, per_sample_mean


def reference_objective(logprob: float, old: float, advantage: float, clip_low: float, clip_high: float):
    ratio = math.exp(logprob - old)
    return min(ratio * advantage, min(max(ratio, 1 - clip_low), 1 + clip_high) * advantage)


def test_clipped_objective_by_hand():
    # A > 0: r = e^0.5 ≈ 1.65 is capped at 1 + ε_high = 1.28, r = e^-0.5 ≈ 0.61 is not (min picks r·A);
    # A < 0: r = e^-0.5 is floored at 1 - ε_low = 0.8 (−0.8 < −0.61), r = e^0.1 ≈ 1.105 is inside the range
    logprobs = torch.tensor([[-1.0, -2.5], [-1.5, -0.9]], dtype=torch.float64)
    old = torch.tensor([[-1.5, -2.0], [-1.0, -1.0]], dtype=torch.float64)
    advantages = torch.tensor([1.5, -0.8], dtype=torch.float64)
    objective = clipped_objective(logprobs, old, advantages, clip_low=0.2, clip_high=0.28)
    by_hand = [1.28 * 1.5, math.exp(-0.5) * 1.5, -0.8 * 0.8, -math.exp(0.1) * 0.8]
    assert objective.flatten().tolist() == pytest.approx(by_hand, abs=1e-12)
    # per-token advantages (B, T) give the same as a per-row (B,) advantage broadcast
    per_token = clipped_objective(logprobs, old, advantages[:, None].expand(2, 2), 0.2, 0.28)
    assert torch.equal(per_token, objective)


def test_per_sample_mean_ignores_masked_tokens_and_empty_rows_give_zero():
    values = torch.tensor([[1.0, 2.0, 9.0], [4.0, 9.0, 9.0], [9.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert per_sample_mean(values, mask).tolist() == [1.5, 4.0, 0.0]


finite = st.floats(-3.0, 3.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(st.tuples(finite, finite, st.booleans()), min_size=1, max_size=8),
    advantage=finite,
    clip_low=st.floats(0.0, 0.5),
    clip_high=st.floats(0.0, 0.5),
)
def test_per_sample_objective_matches_the_float64_reference(tokens, advantage, clip_low, clip_high):
    logprobs = torch.tensor([[t[0] for t in tokens]], dtype=torch.float64)
    old = torch.tensor([[t[1] for t in tokens]], dtype=torch.float64)
    mask = torch.tensor([[float(t[2]) for t in tokens]], dtype=torch.float64)
    objective = clipped_objective(
        logprobs, old, torch.tensor([advantage], dtype=torch.float64), clip_low, clip_high
    )
    kept = [reference_objective(lp, o, advantage, clip_low, clip_high) for lp, o, m in tokens if m]
    expected = sum(kept) / len(kept) if kept else 0.0
    assert per_sample_mean(objective, mask).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
