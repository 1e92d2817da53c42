"""The clipped surrogate objective both engines measure (MTGRPO_SPEC.md §2 and §4), pure torch.

    clipped_objective(logprobs, old_logprobs, advantages, clip_low, clip_high)   # per token, (B, T)
    per_sample_mean(values, mask)                                                 # per response, (B,)
    sample_objective(logprobs, old_logprobs, advantages, mask, clip_low, clip_high)
        # I_k's input: per-response token-mean objective, detached, float64 on the CPU (B,)

Per token t of response i, with ratio r = exp(log π_θ − log π_old):

    objective_it = min(r · A_i, clip(r, 1 − ε_low, 1 + ε_high) · A_i)          (PPO, DAPO clip-higher)

The local engine minimises its token-mean; the per-sample objective (token-mean within one response) is
what the IWU improvement signal I_k compares before and after an optimizer step. Both engines take it from
sample_objective, in float64: I_k sums differences of nearly equal numbers.
"""

from __future__ import annotations

import torch


def clipped_objective(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> torch.Tensor:
    """Algorithm 1, GRPO/DAPO update: per-token clipped surrogate to maximise; advantages (B,) or (B, T)."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    return torch.minimum(ratio * advantages, clipped * advantages)


def per_sample_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Subroutine 1, I_k input: mean of `values` over each row's masked tokens, (B,); no tokens gives 0."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def sample_objective(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> torch.Tensor:
    """Subroutine 1, I_k input: each response's token-mean clipped surrogate, detached, float64, CPU."""
    logprobs, old_logprobs, advantages = (t.detach().double() for t in (logprobs, old_logprobs, advantages))
    per_token = clipped_objective(logprobs, old_logprobs, advantages, clip_low, clip_high)
    return per_sample_mean(per_token, mask).cpu()
