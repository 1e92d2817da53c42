"""The GRPO/DAPO policy loss: the core's clipped surrogate, token-mean aggregation, optional k3 KL.

With objective_it the per-token clipped surrogate of `openrlhf_mt.algo.loss`:

    loss = − Σ_it objective_it · m_it / Σ_it m_it  +  τ · token-mean(k3 KL)

Token-mean (DAPO) weights every response token equally across the mini-batch, so long responses are not
down-weighted as they are under a per-sequence mean. The per-sample objective (token-mean within one
response) is what the IWU improvement signal I_k compares before and after an optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from openrlhf_mt.algo.loss import clipped_objective, sample_objective


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(π_θ ‖ π_ref): exp(Δ) − Δ − 1 with Δ = log π_ref − log π_θ (≥ 0)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar to minimise; already divided by the mini-batch's token count
    sample_objective: torch.Tensor  # (B,) per-sample token-mean objective: algo.loss.sample_objective
    clip_fraction: torch.Tensor  # share of masked tokens where the clip binds (no gradient), detached
    kl: torch.Tensor  # token-mean KL, detached (0 without a reference)


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    token_count: float | None = None,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> LossOutput:
    """Token-mean clipped-surrogate loss of one (micro-)batch.

    `token_count` is the number of response tokens of the whole mini-batch when it is split into micro-
    batches (so the summed micro-batch losses equal the mini-batch token-mean); default: this batch's.
    """
    mask = mask.to(logprobs.dtype)
    denominator = mask.sum() if token_count is None else torch.as_tensor(token_count, dtype=logprobs.dtype)
    denominator = denominator.clamp(min=1.0)
    objective = clipped_objective(logprobs, old_logprobs, advantages, clip_low, clip_high)
    loss = -(objective * mask).sum() / denominator
    kl = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    if ref_logprobs is not None and kl_coef > 0:
        kl_tokens = k3_kl(logprobs, ref_logprobs)
        kl = (kl_tokens * mask).sum() / denominator
        loss = loss + kl_coef * kl
    # the clip binds where the clipped term is the smaller one: there the token gets no gradient
    ratio = torch.exp(logprobs - old_logprobs).detach()
    adv = advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages
    clipped = (ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * adv < ratio * adv).to(mask.dtype)
    return LossOutput(
        loss=loss,
        sample_objective=sample_objective(logprobs, old_logprobs, advantages, mask, clip_low, clip_high),
        clip_fraction=(clipped * mask).sum() / mask.sum().clamp(min=1.0),
        kl=kl.detach(),
    )
