"""Streaming ratio-preserving batches: per-task top-ups while generation runs (request="streaming").

    build = StreamingBuild(sampler, weights)             # this step's quotas n ~ Multinomial(B, z)
    while not build.done():
        for task, count in build.requests().items():     # prompts to submit now, per task
            for _ in range(count):
                build.submitted(task, key=submit_one_prompt(task))
        key, group = wait_for_any_completed_prompt()      # in any order
        build.completed(key, group)
    cancel(build.abandon())                               # what is still in flight is not needed
    groups, info = build.finish()

Not in the paper. Algorithm 2 generates in synchronous rounds: a round lasts as long as its longest
response, and a task that falls short waits for the whole round before its next request. Here each task
in deficit starts with enough prompts in flight to cover its deficit with probability request_confidence
(algo/request.py) and is topped up as results show a shortfall; the step ends as soon as every quota is
met, and the prompts still in flight are cancelled.

Completion order is biased: short responses finish first, and a response's length is not independent of
its reward. So acceptance never depends on it: each task's groups are observed in the order their prompts
were submitted (a completed group waits until every earlier prompt of its task is in), and a task's first
n_k non-zero-gradient groups in that order are its batch, exactly those a one-prompt-at-a-time build would
have kept. A completed group that waits already counts for the top-ups (its outcome is known, only its
place in the order is not); at the end, waiting groups are dropped with the cancelled prompts, never kept
as surplus (their early completion would bias the replay buffer). Groups observed beyond a quota go to the
replay buffer when it is on. rho_k steps once per step, on the observed groups; BatchInfo.rounds counts
the waves of requests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping

import numpy as np

from openrlhf_mt.algo.filters import RewardSummary, summarize_rewards, zero_gradient_from_summary
from openrlhf_mt.algo.request import apportion, prompts_needed
from openrlhf_mt.algo.sampler import BatchInfo, RatioPreservingSampler
from openrlhf_mt.algo.types import Group

# A task is topped up only once the prompts it has in flight cover its open deficit with probability below
# this (then back to request_confidence): topping up after every zero-gradient result keeps a full safety
# margin in flight to the end: ~10 % more generated for about the same latency (tests/algo/test_stream.py).
TOP_UP_BELOW = 0.2


class StreamingBuild:
    """One step of streaming RPS on a sampler's state (its rho, RNG, replay buffer and step count)."""

    def __init__(self, sampler: RatioPreservingSampler, weights: Mapping[str, float]) -> None:
        if not sampler.ratio_preserving_next():
            raise ValueError(
                "streaming builds ratio-preserving batches: it needs preserve_ratio, a filter and "
                f"ratio_from_step <= {sampler.step + 1} (else build_batch)"
            )
        self.sampler = sampler
        z = sampler.check_weights(weights)
        sampler.step += 1
        num_tasks = len(sampler.tasks)
        self.desired = sampler.rng.multinomial(sampler.batch_size, z)  # Algorithm 2, line 1
        self.acceptance = sampler.acceptance()
        self.batch: list[list[Group]] = [[] for _ in range(num_tasks)]
        self.reused_ages: list[int] = []
        for k, task in enumerate(sampler.tasks if sampler.replay.enabled else ()):
            for group, born in sampler.replay.take(task, int(self.desired[k]), sampler.step):
                self.batch[k].append(group)
                self.reused_ages.append(sampler.step - born)
        self.num_reused = np.array([len(b) for b in self.batch], dtype=np.int64)
        self.surplus: list[Group] = []
        self.requested = np.zeros(num_tasks, dtype=np.int64)
        self.in_flight = np.zeros(num_tasks, dtype=np.int64)  # submitted, not completed
        self.queues: list[deque[Hashable]] = [deque() for _ in range(num_tasks)]  # submitted, not observed
        self.task_of: dict[Hashable, int] = {}  # in flight
        self.waiting: dict[
            Hashable, tuple[Group, bool]
        ] = {}  # completed before an earlier prompt of its task
        self.waiting_accepted = np.zeros(num_tasks, dtype=np.int64)
        self.generated = np.zeros(num_tasks, dtype=np.int64)
        self.zero_gradient = np.zeros(num_tasks, dtype=np.int64)
        self.correct, self.rollouts = np.zeros(num_tasks), np.zeros(num_tasks)
        self.budget = sampler.round_size * sampler.max_rounds  # never more prompts than N_rs released rounds
        self.waves = 0
        self.dropped = 0  # completed groups given up by abandon()

    def deficit(self) -> np.ndarray:
        return np.maximum(self.desired - np.array([len(b) for b in self.batch]), 0)

    def requests(self) -> dict[str, int]:
        """New prompts to submit per task: enough that those in flight cover each task's open deficit with
        probability request_confidence (algo/request.py), within the step's budget of prompts."""
        open_deficit = np.maximum(self.deficit() - self.waiting_accepted, 0)
        needed = prompts_needed(open_deficit, self.acceptance, self.sampler.request_confidence)
        enough = prompts_needed(open_deficit, self.acceptance, TOP_UP_BELOW)
        new = np.where(self.in_flight < enough, np.maximum(needed - self.in_flight, 0), 0)
        left = self.budget - int(self.requested.sum())
        if new.sum() > left:  # the budget's last prompts, in proportion (apportion keeps the exact total)
            new = apportion(left, new.astype(float)) if left > 0 else np.zeros_like(new)
        self.requested += new
        self.waves += bool(new.sum())
        return {task: int(n) for task, n in zip(self.sampler.tasks, new.tolist(), strict=True) if n}

    def submitted(self, task: str, key: Hashable) -> None:
        """The engine took one prompt of `task`; `key` names it when it completes."""
        k = self.sampler.index[task]
        if key in self.task_of:
            raise ValueError(f"prompt key {key!r} is already in flight")
        self.queues[k].append(key)
        self.task_of[key] = k
        self.in_flight[k] += 1

    def completed(self, key: Hashable, group: Group) -> None:
        """A prompt came back, in any order: observed now if it is the oldest of its task, else it waits."""
        k = self.task_of.pop(key)
        if group.task != self.sampler.tasks[k]:
            raise ValueError(
                f"prompt {key!r} was submitted for {self.sampler.tasks[k]!r}, got {group.task!r}"
            )
        self.in_flight[k] -= 1
        summary = summarize_rewards([group.rewards], self.sampler.correct)  # once per group
        zero_gradient = bool(zero_gradient_from_summary(summary, self.sampler.filter_mode)[0])  # line 4
        self.waiting[key] = (group, summary, zero_gradient)
        self.waiting_accepted[k] += not zero_gradient
        queue = self.queues[k]
        while queue and queue[0] in self.waiting:
            head, head_summary, head_zero_gradient = self.waiting.pop(queue.popleft())
            self.waiting_accepted[k] -= not head_zero_gradient
            self.observe(k, head, head_summary, head_zero_gradient)

    def abandon(self) -> list[Hashable]:
        """The quotas are met: give up what was not observed in submission order (groups waiting for an
        earlier prompt are dropped; their completion order would bias the surplus). The keys still in
        flight are returned, for the engine to cancel."""
        keys = list(self.task_of)
        self.dropped = len(self.waiting)
        self.task_of.clear()
        self.waiting.clear()
        for queue in self.queues:
            queue.clear()
        self.in_flight[:] = 0
        self.waiting_accepted[:] = 0
        return keys

    def observe(self, k: int, group: Group, summary: RewardSummary, zero_gradient: bool) -> None:
        """A completed group of task k, in its task's submission order: counted, then batch or surplus."""
        self.generated[k] += 1
        self.zero_gradient[k] += zero_gradient
        self.correct[k] += summary.num_correct[0]
        self.rollouts[k] += summary.sizes[0]
        if zero_gradient:
            return
        if len(self.batch[k]) < self.desired[k]:
            self.batch[k].append(group)
        else:
            self.surplus.append(group)

    def done(self) -> bool:
        """Every quota met, or nothing in flight and the budget spent (a short batch)."""
        spent = not self.in_flight.any() and self.requested.sum() >= self.budget
        return not self.deficit().any() or bool(spent)

    def finish(self) -> tuple[list[Group], BatchInfo]:
        """The batch in a random order, and the step's BatchInfo; rho steps once, as for one round."""
        if self.task_of:
            raise RuntimeError(f"finish() with prompts still in flight: {self.in_flight.tolist()} per task")
        sampler, tasks = self.sampler, self.sampler.tasks
        present = self.generated > 0
        sampler.rho[present] = sampler.rho_decay * sampler.rho[present] + (1 - sampler.rho_decay) * (
            self.zero_gradient[present] / self.generated[present]
        )
        sampler.rho_updates[present] += 1
        sampler.replay.add((group, sampler.step) for group in self.surplus)
        groups = [group for task_groups in self.batch for group in task_groups]
        groups = [groups[i] for i in sampler.rng.permutation(len(groups)).tolist()]
        selected = np.array([len(b) for b in self.batch])
        accuracy = sampler.per_task_ratio(self.correct, self.rollouts)

        def per_task(values: np.ndarray) -> dict[str, int]:
            return dict(zip(tasks, values.tolist(), strict=True))

        return groups, BatchInfo(
            step=sampler.step,
            rounds=self.waves,
            desired=per_task(self.desired),
            generated=per_task(self.generated),
            accepted=per_task(self.generated - self.zero_gradient + self.num_reused),
            selected=per_task(selected),
            zero_gradient_rate=sampler.per_task_ratio(self.zero_gradient, self.generated),
            accuracy=accuracy,
            accuracy_per_round=[accuracy] if accuracy else [],
            realised_share=dict(zip(tasks, (selected / max(len(groups), 1)).tolist(), strict=True)),
            shortfall=sampler.batch_size - len(groups),
            rho=dict(zip(tasks, sampler.rho.tolist(), strict=True)),
            reused=len(self.reused_ages),
            reused_mean_age=float(np.mean(self.reused_ages)) if self.reused_ages else 0.0,
            replay_size=sampler.replay.size(),
            ideal_generated=float((self.desired / self.acceptance).sum()),
        )
