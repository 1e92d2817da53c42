"""GRPO advantages from the rewards of one prompt's rollouts (MTGRPO_SPEC.md §4).

    group_advantages(rewards, normalize=True, eps=1e-6)

`rewards` has the group on its last axis: shape (N,) for one group or (G, N) for G groups of N rollouts.
It may be a numpy array (or a list, which is read as float64 numpy) or a torch tensor; the result is the
same kind, dtype and device.

    normalize=True   (r - mean) / (std + eps), std unbiased (ddof 1), as the released code does
    normalize=False  r - mean (Dr. GRPO style, no scaling)

A group of one rollout has no unbiased std; its advantage is 0 (r - mean is 0 anyway), not NaN.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def group_advantages(rewards: Array, normalize: bool = True, eps: float = 1e-6) -> Array:
    """Algorithm 1, GRPO update: advantage of each rollout relative to its group (last axis)."""
    if not isinstance(rewards, torch.Tensor):
        rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim == 0 or rewards.shape[-1] == 0:
        raise ValueError(
            f"group_advantages: need rewards of shape (N,) or (G, N) with N >= 1, got {rewards.shape}"
        )
    num_rollouts = rewards.shape[-1]
    centered = rewards - rewards.sum(-1)[..., None] / num_rollouts
    if not normalize or num_rollouts == 1:
        return centered
    # unbiased std written out: the same expression for numpy and torch, and faster than numpy's std
    std = ((centered * centered).sum(-1)[..., None] / (num_rollouts - 1)) ** 0.5
    return centered / (std + eps)
