"""Ratio-preserving batch building (MTGRPO_SPEC.md §3, Algorithm 2), and the baselines' batch building.

    sampler = RatioPreservingSampler(tasks, batch_size, oversample=3.0, max_rounds=10, max_inflation=5.0,
                                     rho_decay=0.9, filter_mode="strict", preserve_ratio=True, seed=0,
                                     acceptance_aware=True, ratio_from_step=1, refill="released",
                                     round_counts="largest_remainder", request="oversample",
                                     request_confidence=0.9)
    groups, info = sampler.build_batch(weights, generate)
        weights:  dict task -> weight (the weighter's weights(); renormalised here)
        generate: generate(counts: dict[str, int]) -> list[Group]; the engine draws counts[task] fresh
                  prompts of each task, samples N rollouts per prompt and scores them. It must return
                  exactly counts[task] groups of each task (any order).
        groups:   at most batch_size accepted Groups, in a seeded random order (so consecutive PPO
                  mini-batches mix tasks)
        info:     BatchInfo (rounds, desired/generated/accepted/selected per task, zero-gradient rates,
                  realised shares, shortfall, rho, replay use); info.to_metrics() flattens it for a logger.
    sampler.state_dict() / sampler.load_state_dict(sd)   rng, rho, step, replay buffer: exact resume

Modes (MTGRPO_SPEC.md §6):
    preserve_ratio=True, filter "strict"/"lenient"   MT-GRPO's RPS + acceptance-aware sampling (AAS)
    preserve_ratio=False, filter "strict"/"lenient"  DAPO: task-blind filter-and-refill, same M_os and N_rs
    filter_mode="none"                               plain GRPO: one round of exactly n_k prompts per task

RPS, one step (from step `ratio_from_step` on; before it, the task-blind refill below with AAS's shares):
  1. Desired post-filter counts n ~ Multinomial(B, z).
  2. Inflation m_k = min(1 / max(1 - rho_k, 0.01), M_acc) from the tracked zero-gradient rate rho_k,
     recomputed before every round from the latest rho (acceptance_aware=False: m_k = 1).
  3. Round 1: M_os * B prompts with shares proportional to z_k m_k.
  4. Deficit d_k = max(n_k - accepted_k, 0). While sum d > 0 and rounds < N_rs (round 1 counts):
     M_os * B more prompts with shares proportional to d_k m_k (tasks in deficit only); with
     refill="released", rounds keep the shares z_k m_k of step 3 until B groups are accepted in all, and
     switch to d_k m_k only then (the released trainer, docs/parity.md).
  5. After each round, rho_k <- decay rho_k + (1 - decay) * (the round's zero-gradient fraction of task k),
     for the tasks that generated in that round (rho starts at 0).
  6. More than B accepted: keep up to n_k per task at random, then fill to B at random from the rest.
     Fewer: return what there is; info.shortfall says how many are missing (a task whose groups are all
     zero-gradient "runs dry" and yields a short batch, never an endless loop).
  request="adaptive" (not in the paper; algo/request.py): instead of M_os * B prompts, every round of RPS
  asks each task in deficit for the fewest prompts that cover its deficit with probability
  request_confidence given its acceptance rate (1 - rho_k, start-up bias removed), at most M_os * B in all.
  request="streaming" (not in the paper; algo/stream.py): the same sizing, topped up per task while
  generation runs, in an engine that generates asynchronously; build_batch then refuses RPS steps.
  A round's share vector becomes integer prompt counts that sum exactly to round(M_os * B): by largest
  remainder (round_counts="largest_remainder", ties to the earlier task: less variance than the released
  code), or by i.i.d. task draws, a multinomial (round_counts="iid", as the released code draws them).
DAPO, one step: rounds of round(M_os * B) prompts with shares z, until >= B accepted or N_rs rounds;
  then a random subset of B. rho is tracked the same way (reported, not used by DAPO).

The replay buffer (reuse_max_age > 0; RPS only; 0, the default, is the paper's behaviour): accepted groups
not selected in step 6 are kept per task (at most reuse_capacity per task, default B) for up to
reuse_max_age steps. The next step first fills each task's n_k from them (freshest first), then generates
for what is left: round 1 is then round(M_os * sum d) prompts with shares z_k m_k d_k / n_k (tasks with
n_k = 0 keep z_k m_k). With nothing reused both are exactly step 3. info.reused and info.reused_mean_age
count the reused groups that made it into the batch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import numpy as np

from openrlhf_mt.algo.filters import check_filter_mode, summarize_rewards, zero_gradient_from_summary
from openrlhf_mt.algo.replay import ReplayBuffer
from openrlhf_mt.algo.request import MIN_ACCEPTANCE, acceptance_estimate, adaptive_counts, apportion
from openrlhf_mt.algo.types import Group, check_state_tasks

Generate = Callable[[dict[str, int]], list[Group]]
REFILLS = ("released", "deficit")
ROUND_COUNTS = ("largest_remainder", "iid")
REQUESTS = ("oversample", "adaptive", "streaming")


@dataclass
class BatchInfo:
    """What one build_batch call did.

    Per-task dicts hold every configured task, except zero_gradient_rate and accuracy, which hold only the
    tasks that generated this step. accuracy is the fraction of the task's generated rollouts with
    reward >= correct (pre-filter), over the whole step; accuracy_per_round is the same per generation
    round, which is what the released code feeds J_k's EMA:
        for accuracy in info.accuracy_per_round: reward_ema.update(accuracy)
    """

    step: int
    rounds: int
    desired: dict[str, int]
    generated: dict[str, int]
    accepted: dict[str, int]
    selected: dict[str, int]
    zero_gradient_rate: dict[str, float]
    accuracy: dict[str, float]
    accuracy_per_round: list[dict[str, float]]
    realised_share: dict[str, float]
    shortfall: int
    rho: dict[str, float]
    reused: int
    reused_mean_age: float
    replay_size: int
    ideal_generated: float  # the groups the run's own acceptance rates say would suffice (ideal_generated())

    def to_metrics(self) -> dict[str, float]:
        """A flat name -> number dict for loggers: totals, then "<field>/<task>" entries."""
        metrics: dict[str, float] = {
            "rounds": self.rounds,
            "shortfall": self.shortfall,
            "generated": sum(self.generated.values()),
            "accepted": sum(self.accepted.values()),
            "selected": sum(self.selected.values()),
            "reused": self.reused,
            "reused_mean_age": self.reused_mean_age,
            "replay_size": self.replay_size,
            "ideal_generated": self.ideal_generated,
            "overgeneration": sum(self.generated.values()) / self.ideal_generated
            if self.ideal_generated
            else 0.0,
        }
        per_task = ("desired", "generated", "accepted", "selected", "realised_share", "zero_gradient_rate")
        for name in (*per_task, "accuracy", "rho"):
            metrics |= {f"{name}/{task}": float(value) for task, value in getattr(self, name).items()}
        return metrics


@dataclass
class Pool:
    """The accepted groups of one step, with each one's task index and generation step."""

    groups: list[Group] = field(default_factory=list)
    task: list[np.ndarray] = field(default_factory=list)
    born: list[np.ndarray] = field(default_factory=list)

    def add(self, groups: list[Group], task: np.ndarray, born: np.ndarray) -> None:
        self.groups += groups
        self.task.append(task)
        self.born.append(born)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros(0, dtype=np.int64)
        return np.concatenate([empty, *self.task]), np.concatenate([empty, *self.born])


@dataclass
class Round:
    """One generation round's outcome."""

    accepted: list[Group]
    accepted_task: np.ndarray
    num_zero_gradient: np.ndarray  # per task, like the two below
    num_correct: np.ndarray  # rollouts with reward >= correct, over all generated groups
    num_rollouts: np.ndarray


class RatioPreservingSampler:
    """Builds each step's batch of non-zero-gradient groups; see the module doc for the algorithm."""

    def __init__(
        self,
        tasks: Sequence[str],
        batch_size: int,
        oversample: float = 3.0,
        max_rounds: int = 10,
        max_inflation: float = 5.0,
        rho_decay: float = 0.9,
        filter_mode: str = "strict",
        preserve_ratio: bool = True,
        seed: int = 0,
        reuse_max_age: int = 0,
        reuse_capacity: int | None = None,
        correct: float = 1.0,
        acceptance_aware: bool = True,
        ratio_from_step: int = 1,
        refill: str = "released",
        round_counts: str = "largest_remainder",
        request: str = "oversample",
        request_confidence: float = 0.9,
    ) -> None:
        self.tasks = tuple(tasks)
        self.index = {task: i for i, task in enumerate(self.tasks)}
        if not self.tasks or len(self.index) != len(self.tasks):
            raise ValueError(f"RatioPreservingSampler: need distinct task names, got {list(self.tasks)}")
        for name, value, ok, allowed in (
            ("batch_size", batch_size, batch_size >= 1 and int(batch_size) == batch_size, "an integer >= 1"),
            ("oversample", oversample, math.isfinite(oversample) and oversample >= 1, ">= 1"),
            ("max_rounds", max_rounds, max_rounds >= 1 and int(max_rounds) == max_rounds, "an integer >= 1"),
            ("max_inflation", max_inflation, math.isfinite(max_inflation) and max_inflation >= 1, ">= 1"),
            ("rho_decay", rho_decay, 0 <= rho_decay < 1, "in [0, 1)"),
            (
                "reuse_max_age",
                reuse_max_age,
                reuse_max_age >= 0 and int(reuse_max_age) == reuse_max_age,
                ">= 0",
            ),
            ("correct", correct, math.isfinite(correct), "finite"),
            (
                "ratio_from_step",
                ratio_from_step,
                int(ratio_from_step) == ratio_from_step >= 1,
                "an integer >= 1",
            ),
            ("refill", refill, refill in REFILLS, f"one of {', '.join(REFILLS)}"),
            ("round_counts", round_counts, round_counts in ROUND_COUNTS, f"one of {', '.join(ROUND_COUNTS)}"),
            ("request", request, request in REQUESTS, f"one of {', '.join(REQUESTS)}"),
            ("request_confidence", request_confidence, 0.5 <= request_confidence < 1, "in [0.5, 1)"),
        ):
            if not ok:
                raise ValueError(f"RatioPreservingSampler: {name} must be {allowed}, got {value}")
        check_filter_mode(filter_mode)
        if reuse_max_age > 0 and not (preserve_ratio and filter_mode != "none"):
            raise ValueError(
                "RatioPreservingSampler: reuse_max_age > 0 needs preserve_ratio=True and a filter"
            )
        self.batch_size, self.max_rounds = int(batch_size), int(max_rounds)
        self.oversample, self.max_inflation = float(oversample), float(max_inflation)
        self.rho_decay, self.correct = float(rho_decay), float(correct)
        self.filter_mode, self.preserve_ratio = filter_mode, preserve_ratio
        self.acceptance_aware, self.ratio_from_step = bool(acceptance_aware), int(ratio_from_step)
        self.refill, self.round_counts = refill, round_counts
        self.request, self.request_confidence = request, float(request_confidence)
        self.round_size = round(self.oversample * self.batch_size)
        self.rng = np.random.default_rng(seed)
        self.rho = np.zeros(len(self.tasks))
        self.rho_updates = np.zeros(len(self.tasks), dtype=np.int64)  # for the bias-corrected acceptance
        self.step = 0
        capacity = self.batch_size if reuse_capacity is None else reuse_capacity
        self.replay = ReplayBuffer(self.tasks, max_age=reuse_max_age, capacity=capacity)

    # -- one step ---------------------------------------------------------------------------------------

    def build_batch(self, weights: Mapping[str, float], generate: Generate) -> tuple[list[Group], BatchInfo]:
        """Algorithm 2 (or the DAPO / GRPO baseline): a batch of at most B non-zero-gradient groups."""
        if self.request == "streaming" and self.ratio_preserving_next():
            raise ValueError(
                "request=streaming: build this step with StreamingBuild (algo.stream; an engine that "
                "generates asynchronously); build_batch generates in rounds"
            )
        z = self.check_weights(weights)
        self.step += 1
        num_tasks = len(self.tasks)
        desired = self.rng.multinomial(self.batch_size, z)  # Algorithm 2, line 1: n ~ Multinomial(B, z)
        pool = Pool()
        accepted = np.zeros(num_tasks, dtype=np.int64)
        generated = np.zeros(num_tasks, dtype=np.int64)
        num_zero_gradient = np.zeros(num_tasks, dtype=np.int64)
        num_correct, num_rollouts = np.zeros(num_tasks), np.zeros(num_tasks)
        accuracy_per_round: list[dict[str, float]] = []

        def run_round(counts: np.ndarray) -> None:
            result = self.generate_and_filter(counts, generate)
            pool.add(result.accepted, result.accepted_task, np.full(len(result.accepted), self.step))
            accepted[:] += counts - result.num_zero_gradient
            generated[:] += counts
            num_zero_gradient[:] += result.num_zero_gradient
            num_correct[:] += result.num_correct
            num_rollouts[:] += result.num_rollouts
            accuracy_per_round.append(self.per_task_ratio(result.num_correct, result.num_rollouts))

        rounds = 0
        preserve_ratio = self.preserve_ratio and self.step >= self.ratio_from_step
        ideal = self.ideal_generated(desired, z, preserve_ratio)
        if self.filter_mode == "none":
            run_round(desired)
            rounds = 1
        elif preserve_ratio:
            for k, task in enumerate(self.tasks if self.replay.enabled else ()):
                entries = self.replay.take(task, int(desired[k]), self.step)
                pool.add(
                    [g for g, _ in entries], np.full(len(entries), k), np.array([b for _, b in entries], int)
                )
                accepted[k] += len(entries)
            deficit = np.maximum(desired - accepted, 0)
            while deficit.sum() > 0 and rounds < self.max_rounds:
                inflation = self.inflation()
                if self.request == "adaptive":
                    counts = adaptive_counts(
                        deficit, self.acceptance(), self.request_confidence, self.round_size
                    )
                elif rounds == 0:  # lines 2-3
                    shares = z * inflation
                    if self.replay.enabled:  # quotas partly filled from the buffer (see the module doc)
                        shares *= np.where(desired > 0, deficit / np.maximum(desired, 1), 1.0)
                    counts = self.round_task_counts(round(self.oversample * deficit.sum()), shares)
                elif self.refill == "released" and accepted.sum() < self.batch_size:
                    counts = self.round_task_counts(self.round_size, z * inflation)
                else:  # line 5: only tasks in deficit
                    counts = self.round_task_counts(self.round_size, deficit * inflation)
                run_round(counts)
                rounds += 1
                deficit = np.maximum(desired - accepted, 0)
        else:  # DAPO; or MT-GRPO before ratio_from_step, whose rounds keep AAS's shares as released
            shares = self.task_blind_shares(z)
            while accepted.sum() < self.batch_size and rounds < self.max_rounds:
                run_round(self.round_task_counts(self.round_size, shares))
                rounds += 1
                shares = self.task_blind_shares(z)

        pool_task, pool_born = pool.arrays()
        chosen = self.select(pool, pool_task, pool_born, desired, preserve_ratio)
        chosen = chosen[self.rng.permutation(len(chosen))]  # mixed order: consecutive mini-batches mix tasks
        batch = list(map(pool.groups.__getitem__, chosen.tolist()))
        selected = np.bincount(pool_task[chosen], minlength=num_tasks)
        ages = self.step - pool_born[chosen]
        ages = ages[ages > 0]
        return batch, BatchInfo(
            step=self.step,
            rounds=rounds,
            desired=dict(zip(self.tasks, desired.tolist(), strict=True)),
            generated=dict(zip(self.tasks, generated.tolist(), strict=True)),
            accepted=dict(zip(self.tasks, accepted.tolist(), strict=True)),
            selected=dict(zip(self.tasks, selected.tolist(), strict=True)),
            zero_gradient_rate=self.per_task_ratio(num_zero_gradient, generated),
            accuracy=self.per_task_ratio(num_correct, num_rollouts),
            accuracy_per_round=accuracy_per_round,
            realised_share=dict(zip(self.tasks, (selected / max(len(batch), 1)).tolist(), strict=True)),
            shortfall=self.batch_size - len(batch),
            rho=dict(zip(self.tasks, self.rho.tolist(), strict=True)),
            reused=len(ages),
            reused_mean_age=float(ages.mean()) if len(ages) else 0.0,
            replay_size=self.replay.size(),
            ideal_generated=ideal,
        )

    def ideal_generated(self, desired: np.ndarray, z: np.ndarray, preserve_ratio: bool) -> float:
        """The groups this step needs in expectation at the tracked acceptance rates a_k = 1 - rho_k.

        Quotas (RPS): sum_k n_k / a_k. Task-blind (DAPO; MT-GRPO before ratio_from_step): B accepted groups
        from prompts drawn with shares s, B / sum_k s_k a_k. No filter: B."""
        if self.filter_mode == "none":
            return float(self.batch_size)
        acceptance = self.acceptance()
        if preserve_ratio:
            return float((desired / acceptance).sum())
        shares = self.task_blind_shares(z)
        return float(self.batch_size * shares.sum() / (shares * acceptance).sum())

    def task_blind_shares(self, z: np.ndarray) -> np.ndarray:
        """A task-blind round's prompt shares: AAS's z_k m_k for MT-GRPO before ratio_from_step (as
        released), the weights themselves for DAPO."""
        return z * self.inflation() if self.preserve_ratio else z

    def ratio_preserving_next(self) -> bool:
        """Whether the next step builds a ratio-preserving batch (RPS, a filter, ratio_from_step reached)."""
        return self.preserve_ratio and self.filter_mode != "none" and self.step + 1 >= self.ratio_from_step

    def check_weights(self, weights: Mapping[str, float]) -> np.ndarray:
        """The weights as a distribution in `tasks` order; a clear error if they are not one."""
        if weights.keys() != self.index.keys():
            raise ValueError(
                f"weights must have exactly the sampler's tasks {list(self.tasks)}; "
                f"missing {[t for t in self.tasks if t not in weights]}, "
                f"unknown {sorted(set(weights) - set(self.tasks))}"
            )
        values = [float(weights[t]) for t in self.tasks]
        if not (all(map(math.isfinite, values)) and min(values) >= 0 and sum(values) > 0):
            raise ValueError(f"weights must be finite, >= 0 and not all zero, got {dict(weights)}")
        z = np.array(values)
        return z / z.sum()

    def per_task_ratio(self, numerator: np.ndarray, denominator: np.ndarray) -> dict[str, float]:
        """numerator / denominator per task, for the tasks whose denominator is not 0."""
        pairs = zip(self.tasks, numerator.tolist(), denominator.tolist(), strict=True)
        return {task: n / d for task, n, d in pairs if d}

    def inflation(self) -> np.ndarray:
        """Algorithm 2, line 2 (AAS): m_k = min(1 / max(1 - rho_k, 0.01), M_acc); 1 without AAS."""
        if not self.acceptance_aware:
            return np.ones(len(self.tasks))
        return np.minimum(1.0 / np.maximum(1.0 - self.rho, MIN_ACCEPTANCE), self.max_inflation)

    def acceptance(self) -> np.ndarray:
        """Each task's acceptance rate 1 - rho_k, bias-corrected (1 / M_os for a task not generated yet)."""
        return acceptance_estimate(self.rho, self.rho_updates, self.rho_decay, prior=1.0 / self.oversample)

    def round_task_counts(self, total: int, shares: np.ndarray) -> np.ndarray:
        """Algorithm 2, lines 3 and 5: how many of a round's `total` prompts each task gets."""
        if self.round_counts == "iid":
            return self.rng.multinomial(total, shares / shares.sum())
        return apportion(total, shares)

    def generate_and_filter(self, counts: np.ndarray, generate: Generate) -> Round:
        """Algorithm 2, lines 3-5: generate counts[k] groups of task k, drop zero-gradient ones, track rho."""
        requested = {t: int(c) for t, c in zip(self.tasks, counts.tolist(), strict=True) if c > 0}
        groups = generate(requested)
        try:
            task_names = [group.task for group in groups]
            reward_lists = [group.rewards for group in groups]
        except AttributeError:
            raise ValueError(f"generate() must return a list of Group, got {groups!r:.200}") from None
        num_tasks = len(self.tasks)
        try:
            task_index = np.fromiter(
                map(self.index.__getitem__, task_names), dtype=np.int64, count=len(groups)
            )
        except KeyError:
            task_index = None
        if task_index is None or (np.bincount(task_index, minlength=num_tasks) != counts).any():
            raise ValueError(
                f"generate(counts) must return exactly counts[task] groups per task; asked for {requested}, "
                f"got {dict(Counter(task_names))}"
            )
        summary = summarize_rewards(reward_lists, self.correct)
        zero_gradient = zero_gradient_from_summary(summary, self.filter_mode)
        num_zero_gradient = np.bincount(task_index, weights=zero_gradient, minlength=num_tasks).astype(
            np.int64
        )
        num_correct = np.bincount(task_index, weights=summary.num_correct, minlength=num_tasks)
        num_rollouts = np.bincount(task_index, weights=summary.sizes, minlength=num_tasks)
        present = counts > 0
        # line 5: rho_k <- decay rho_k + (1 - decay) (zero-gradient fraction), for the tasks that generated
        self.rho[present] = self.rho_decay * self.rho[present] + (1 - self.rho_decay) * (
            num_zero_gradient[present] / counts[present]
        )
        self.rho_updates[present] += 1
        keep = ~zero_gradient
        return Round(
            accepted=list(compress(groups, keep.tolist())),
            accepted_task=task_index[keep],
            num_zero_gradient=num_zero_gradient,
            num_correct=num_correct,
            num_rollouts=num_rollouts,
        )

    def select(
        self,
        pool: Pool,
        pool_task: np.ndarray,
        pool_born: np.ndarray,
        desired: np.ndarray,
        preserve_ratio: bool,
    ) -> np.ndarray:
        """Algorithm 2, line 6: indices of at most B pool groups; quotas first (RPS), else task-blind (DAPO).

        Accepted groups left out go to the replay buffer (when it is on). The order of the indices is not
        meaningful: build_batch shuffles them."""
        if len(pool_task) <= self.batch_size:
            return np.arange(len(pool_task))
        if not preserve_ratio:
            return self.rng.permutation(len(pool_task))[: self.batch_size]
        # each task's groups in a random order (a shuffle, then a stable sort by task): the first n_k of
        # task k are its quota; the fill is a uniform draw from all the groups left over
        order = self.rng.permutation(len(pool_task))
        by_task = order[np.argsort(pool_task[order], kind="stable")]
        task_sorted = pool_task[by_task]
        first_of_task = np.searchsorted(task_sorted, np.arange(len(self.tasks)))
        rank_in_task = np.arange(len(by_task)) - first_of_task[task_sorted]
        in_quota = rank_in_task < desired[task_sorted]
        kept, rest = by_task[in_quota], by_task[~in_quota]
        rest = rest[self.rng.permutation(len(rest))]
        fill = self.batch_size - len(kept)
        if self.replay.enabled:
            self.replay.add((pool.groups[i], int(pool_born[i])) for i in rest[fill:].tolist())
        return np.concatenate([kept, rest[:fill]])

    # -- checkpointing ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "tasks": list(self.tasks),
            "step": self.step,
            "rho": self.rho.tolist(),
            "rho_updates": self.rho_updates.tolist(),
            "rng": self.rng.bit_generator.state,
            "replay": self.replay.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_state_tasks("RatioPreservingSampler", state["tasks"], self.tasks)
        self.step = int(state["step"])
        self.rho = np.array(state["rho"], dtype=np.float64)
        self.rho_updates = np.array(state["rho_updates"], dtype=np.int64)
        self.rng.bit_generator.state = state["rng"]
        self.replay.load_state_dict(state["replay"])
