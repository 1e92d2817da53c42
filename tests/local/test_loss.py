"""The policy loss against an independent float64 reference written with plain Python loops."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.engines.local.loss import k3_kl, policy_loss


def reference_loss(logprobs, old, advantages, mask, clip_low, clip_high):
    """−Σ min(r·A, clip(r)·A)·m / Σ m over all tokens of all rows (DAPO token-mean), in float64."""
    total, tokens = 0.0, 0.0
    for row_lp, row_old, adv, row_mask in zip(logprobs, old, advantages, mask, strict=True):
        for lp, o, m in zip(row_lp, row_old, row_mask, strict=True):
            ratio = math.exp(lp - o)
            clipped = min(max(ratio, 1 - clip_low), 1 + clip_high)
            total += m * min(ratio * adv, clipped * adv)
            tokens += m
    return -total / tokens


def as_tensors(*rows):
    return [torch.tensor(r, dtype=torch.float64) for r in rows]


# Row 0: A > 0, ratios e^0.5 ≈ 1.65 (clipped at 1.28) and e^-0.5 ≈ 0.61 (not clipped: min picks r·A).
# Row 1: A < 0, ratio e^-0.5 (clipped at 0.8 since −0.8 < −0.61) and e^0.1 ≈ 1.105 (inside the range).
# Row 2: padding after one token. Row lengths differ, so token-mean differs from a mean of row means.
LOGPROBS = [[-1.0, -2.5, -0.3], [-1.5, -0.9, -2.0], [-0.7, 0.0, 0.0]]
OLD = [[-1.5, -2.0, -0.3], [-1.0, -1.0, -2.0], [-0.2, 0.0, 0.0]]
ADVANTAGES = [1.5, -0.8, 0.4]
MASK = [[1, 1, 1], [1, 1, 0], [1, 0, 0]]


def test_matches_hand_computation_with_clip_low_and_high():
    lp, old, adv, mask = as_tensors(LOGPROBS, OLD, ADVANTAGES, MASK)
    out = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    # by hand: row 0: 1.28·1.5, e^-0.5·1.5, 1·1.5; row 1: −0.8·0.8 (clip low binds), −e^0.1·0.8;
    # row 2: e^-0.5·0.4; 6 tokens
    by_hand = (
        1.28 * 1.5 + math.exp(-0.5) * 1.5 + 1.5 - 0.8 * 0.8 - math.exp(0.1) * 0.8 + math.exp(-0.5) * 0.4
    ) / 6
    assert out.loss.item() == pytest.approx(-by_hand, abs=1e-12)
    assert out.loss.item() == pytest.approx(
        reference_loss(LOGPROBS, OLD, ADVANTAGES, MASK, 0.2, 0.28), abs=1e-12
    )
    # two of six tokens were clipped (row 0 token 0, row 1 token 0)
    assert out.clip_fraction.item() == pytest.approx(2 / 6)


def test_token_mean_is_not_a_mean_of_row_means():
    lp, old, adv, mask = as_tensors(LOGPROBS, OLD, ADVANTAGES, MASK)
    out = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    row_means = -out.sample_objective.mean().item()
    assert abs(out.loss.item() - row_means) > 1e-3


def test_masked_tokens_have_no_effect_and_no_gradient():
    lp, old, adv, mask = as_tensors(LOGPROBS, OLD, ADVANTAGES, MASK)
    lp.requires_grad_(True)
    changed = lp.detach().clone()
    changed[2, 1:] = 5.0  # padding positions of row 2
    changed[1, 2] = -9.0
    base = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    again = policy_loss(changed, old, adv, mask, clip_low=0.2, clip_high=0.28)
    assert base.loss.item() == pytest.approx(again.loss.item(), abs=1e-15)
    base.loss.backward()
    assert torch.all(lp.grad[mask == 0] == 0)
    # a clipped token (row 0 token 0: r > 1 + ε_high with A > 0) gets no gradient either
    assert lp.grad[0, 0].item() == 0.0
    assert lp.grad[0, 1].item() != 0.0


def test_micro_batches_sum_to_the_mini_batch_loss():
    lp, old, adv, mask = as_tensors(LOGPROBS, OLD, ADVANTAGES, MASK)
    whole = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.28).loss
    tokens = mask.sum().item()
    parts = [
        policy_loss(
            lp[rows], old[rows], adv[rows], mask[rows], clip_low=0.2, clip_high=0.28, token_count=tokens
        ).loss
        for rows in (slice(0, 1), slice(1, 3))
    ]
    assert sum(p.item() for p in parts) == pytest.approx(whole.item(), abs=1e-12)


def test_kl_term_uses_k3_and_the_coefficient():
    lp, old, adv, mask = as_tensors(LOGPROBS, OLD, ADVANTAGES, MASK)
    ref = old - 0.3
    without = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    with_kl = policy_loss(lp, old, adv, mask, clip_low=0.2, clip_high=0.28, ref_logprobs=ref, kl_coef=0.1)
    kl_by_hand = sum(
        m * (math.exp(r - x) - (r - x) - 1)
        for row_lp, row_ref, row_mask in zip(LOGPROBS, ref.tolist(), MASK, strict=True)
        for x, r, m in zip(row_lp, row_ref, row_mask, strict=True)
    ) / sum(map(sum, MASK))
    assert with_kl.kl.item() == pytest.approx(kl_by_hand, abs=1e-12)
    assert with_kl.loss.item() == pytest.approx(without.loss.item() + 0.1 * kl_by_hand, abs=1e-12)


finite = st.floats(-3.0, 3.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.lists(st.tuples(finite, finite, st.booleans()), min_size=1, max_size=6), finite),
        min_size=1,
        max_size=5,
    ),
    clip_low=st.floats(0.0, 0.5),
    clip_high=st.floats(0.0, 0.5),
)
def test_random_batches_match_the_reference(rows, clip_low, clip_high):
    width = max(len(tokens) for tokens, _ in rows)
    lp = [[t[0] for t in tokens] + [0.0] * (width - len(tokens)) for tokens, _ in rows]
    old = [[t[1] for t in tokens] + [0.0] * (width - len(tokens)) for tokens, _ in rows]
    mask = [[float(t[2]) for t in tokens] + [0.0] * (width - len(tokens)) for tokens, _ in rows]
    mask[0][0] = 1.0  # at least one token
    adv = [a for _, a in rows]
    out = policy_loss(*as_tensors(lp, old, adv, mask), clip_low=clip_low, clip_high=clip_high)
    assert out.loss.item() == pytest.approx(
        reference_loss(lp, old, adv, mask, clip_low, clip_high), rel=1e-9, abs=1e-12
    )
    assert k3_kl(*as_tensors(lp, old)).min().item() >= -1e-12
