"""Per-task prompts: the train / held-out eval split, and training streams in a seeded, reshuffled order.

Both engines draw their prompts through these (the local trainer, and the OpenRLHF engine's generator).

The order of pass e is a permutation seeded by (seed, task index, e), so a stream's whole state is two
integers and a resumed run draws exactly the prompts the uninterrupted run would have.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from openrlhf_mt.tasks.base import Row, Task

# eval prompts come from a seed far from any training seed, then are removed from the training rows
EVAL_SEED_OFFSET = 1_000_003


class PromptStream:
    def __init__(self, size: int, seed: int, task_index: int) -> None:
        if size < 1:
            raise ValueError(f"PromptStream: a task needs at least one training prompt, got {size}")
        self.size, self.seed, self.task_index = size, seed, task_index
        self.epoch, self.cursor = 0, 0
        self.order = self._permutation()

    def _permutation(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.task_index, self.epoch]).permutation(self.size)

    def take(self, n: int) -> list[int]:
        """Indices of the next `n` prompts (wrapping into a freshly shuffled pass when one runs out)."""
        indices = []
        while len(indices) < n:
            if self.cursor == self.size:
                self.epoch, self.cursor = self.epoch + 1, 0
                self.order = self._permutation()
            step = min(n - len(indices), self.size - self.cursor)
            indices += self.order[self.cursor : self.cursor + step].tolist()
            self.cursor += step
        return indices

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self.order = self._permutation()


def split_rows(task: Task, train_size: int, eval_size: int, seed: int) -> tuple[list[Row], list[Row]]:
    """(train rows, held-out eval rows) of `task`: eval prompts are removed from the training rows."""
    eval_rows = task.generate(eval_size, seed=EVAL_SEED_OFFSET + seed)
    held_out = {row["prompt"] for row in eval_rows}
    train_rows = [row for row in task.generate(train_size, seed=seed) if row["prompt"] not in held_out]
    if not train_rows:
        raise ValueError(
            f"task {task.name}: every training prompt is also an eval prompt; raise data.train_size"
        )
    return train_rows, eval_rows
