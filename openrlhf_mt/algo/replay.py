"""The multi-task replay buffer: accepted groups beyond a step's quota, kept for later steps.

Ratio-preserving sampling over-generates: a round that fills task k's quota usually brings more accepted
(non-zero-gradient) groups of k than the quota needs. The released code throws them away; this buffer keeps
them per task, so the next steps' quotas draw on them before generating more.

    ReplayBuffer(tasks, max_age, capacity)
    .add(entries)             entries: (Group, step it was generated at); over-capacity drops the oldest
    .take(task, n, step)      up to n entries of `task`, freshest first, none older than max_age steps
    .size()                   groups held

Age is counted in sampler steps: a group generated at step t and used at step t + a has age a. Its policy is
that many updates old, so keep `max_age` small (1-2). max_age 0 turns the buffer off (the paper's behaviour).
The buffer holds the Group objects themselves, payload included: state_dict() is for pickling (torch.save).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openrlhf_mt.algo.types import Group, check_state_tasks

Entry = tuple[Group, int]  # (group, step at which it was generated)


class ReplayBuffer:
    def __init__(self, tasks: Sequence[str], max_age: int, capacity: int) -> None:
        if max_age < 0 or capacity < 0:
            raise ValueError(f"ReplayBuffer: max_age and capacity must be >= 0, got {max_age}, {capacity}")
        self.max_age, self.capacity = int(max_age), int(capacity)
        self.entries: dict[str, deque[Entry]] = {task: deque() for task in tasks}  # oldest first

    @property
    def enabled(self) -> bool:
        return self.max_age > 0 and self.capacity > 0

    def add(self, entries: Iterable[Entry]) -> None:
        """Keep accepted groups that did not make it into the batch (the newest `capacity` per task)."""
        if not self.enabled:
            return
        # queues stay sorted by generation step (oldest left), which evict() and take() rely on
        for group, born in sorted(entries, key=lambda entry: entry[1]):
            queue = self.entries[group.task]
            queue.append((group, born))
            if len(queue) > self.capacity:
                queue.popleft()

    def evict(self, step: int) -> None:
        """Drop groups older than max_age steps."""
        for queue in self.entries.values():
            while queue and step - queue[0][1] > self.max_age:
                queue.popleft()

    def take(self, task: str, n: int, step: int) -> list[Entry]:
        """Remove and return up to n of `task`'s groups that are at most max_age old, freshest first."""
        self.evict(step)
        queue = self.entries[task]
        return [queue.pop() for _ in range(min(n, len(queue)))]

    def size(self) -> int:
        return sum(len(queue) for queue in self.entries.values())

    def state_dict(self) -> dict[str, Any]:
        return {"entries": {task: list(queue) for task, queue in self.entries.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        check_state_tasks("ReplayBuffer", state["entries"], list(self.entries))
        self.entries = {task: deque(entries) for task, entries in state["entries"].items()}
