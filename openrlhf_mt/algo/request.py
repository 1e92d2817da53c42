"""How many prompts of each task a generation round asks for.

    apportion(total, shares)                          a round split by largest remainder (released sizing)
    acceptance_estimate(rho, updates, decay, prior)   each task's acceptance rate from its tracked rho_k
    adaptive_counts(deficit, acceptance, confidence, cap)   request="adaptive": what each deficit needs

The released sampler asks for M_os x B prompts per round whatever the batch still needs (Algorithm 2,
lines 3 and 5); on the paper's runs that generates ~1.5x the groups the tasks' acceptance rates say would
suffice. Adaptive sizing (not in the paper) asks each task in deficit d_k for the fewest prompts r_k with
P(Binomial(r_k, a_k) >= d_k) >= confidence, a_k being the task's acceptance rate: one round usually
suffices, and the expected surplus is a few standard deviations instead of (M_os - 1/a_k) x B. Which groups
are trained on does not change in distribution: every accepted group of a task is a uniform draw from that
task's accepted groups either way, and the quotas n_k are drawn as before.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

MIN_ACCEPTANCE = 0.01  # the released code floors 1 - rho_k here before inverting it


def apportion(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts proportional to `shares` that sum exactly to `total` (largest remainder)."""
    expected = total * shares / shares.sum()
    counts = expected.astype(np.int64)  # rounds down: shares are >= 0
    remainder = total - int(counts.sum())
    if remainder > 0:
        counts[np.argsort(counts - expected, kind="stable")[:remainder]] += 1
    return counts


def acceptance_estimate(rho: np.ndarray, updates: np.ndarray, decay: float, prior: float) -> np.ndarray:
    """1 - rho_k with the EMA's start-up bias removed (rho starts at 0); `prior` for tasks never generated.

    The released sampler's rho_k <- decay rho_k + (1 - decay) x starts at 0, so after n updates it holds
    (1 - decay^n) of the average: divided by that, it is an unbiased running estimate from the first round."""
    seen = updates > 0
    corrected = np.divide(rho, 1.0 - decay ** updates.astype(float), out=np.zeros_like(rho), where=seen)
    return np.where(seen, np.clip(1.0 - corrected, MIN_ACCEPTANCE, 1.0), prior)


def prompts_needed(deficit: np.ndarray, acceptance: np.ndarray, confidence: float) -> np.ndarray:
    """Per task, the fewest r >= d with P(Binomial(r, a) >= d) >= confidence (0 where d = 0).

    Normal approximation with continuity correction, r a - z sqrt(r a (1 - a)) >= d - 1/2, solved for
    sqrt(r) in closed form (vectorised, constant time per task: the core's budget is 1 ms per step)."""
    z = NormalDist().inv_cdf(confidence)
    spread = z * np.sqrt(acceptance * (1.0 - acceptance))
    root = (spread + np.sqrt(spread**2 + 4.0 * acceptance * np.maximum(deficit - 0.5, 0.0))) / (
        2 * acceptance
    )
    needed = np.maximum(np.ceil(root**2 - 1e-9).astype(np.int64), deficit)
    return np.where(deficit > 0, needed, 0)


def adaptive_counts(deficit: np.ndarray, acceptance: np.ndarray, confidence: float, cap: int) -> np.ndarray:
    """request="adaptive": each task's prompts_needed, scaled down (keeping proportions) to at most `cap`."""
    needed = prompts_needed(deficit, acceptance, confidence)
    if needed.sum() > cap:
        return apportion(cap, needed.astype(float))
    return needed
