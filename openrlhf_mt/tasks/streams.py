"""Per-task prompts: the train / held-out eval split, and training streams in a seeded, reshuffled order.

Both engines draw their prompts through these (the local trainer, and the OpenRLHF engine's generator).

The order of pass e is a permutation seeded by (seed, task index, e), so a stream's whole state is two
integers and a resumed run draws exactly the prompts the uninterrupted run would have.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from openrlhf_mt.tasks.base import BadRowHandler, MissingTaskData, Row, Task

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


def split_rows(
    task: Task, train_size: int, eval_size: int, seed: int, eval_rows: list[Row] | None = None
) -> tuple[list[Row], list[Row]]:
    """(train rows, held-out eval rows) of `task`: eval prompts are removed from the training rows.

    `eval_rows` (the paper's test rows of a paper task) replace the `eval_size` generated held-out prompts;
    `train_size - len(train rows)` training prompts collided with them and were dropped.
    """
    if eval_rows is None:
        eval_rows = task.generate(eval_size, seed=EVAL_SEED_OFFSET + seed)
    held_out = {row["prompt"] for row in eval_rows}
    train_rows = [row for row in task.generate(train_size, seed=seed) if row["prompt"] not in held_out]
    if not train_rows:
        raise ValueError(
            f"task {task.name}: every training prompt is also an eval prompt; raise data.train_size"
        )
    return train_rows, eval_rows


def paper_test_rows(
    path: str | os.PathLike[str] | None, task_names: list[str], on_bad_row: BadRowHandler | None = None
) -> dict[str, list[Row]]:
    """All of the paper's test rows (200 per task and level) of each of `task_names` that is a paper task.

    Other tasks (tiny-*, rg:*) get no entry. A paper task that the files lack is a MissingTaskData error
    naming it and `path`; nothing is read when `path` is None or no paper task is asked for. Bad rows: see
    `load_paper_test`.
    """
    from openrlhf_mt.tasks.paper import PAPER_TASKS
    from openrlhf_mt.tasks.paper_test import load_paper_test

    wanted = [name for name in task_names if name in PAPER_TASKS]
    if path is None or not wanted:
        return {}
    path = Path(path).expanduser()
    by_task: dict[str, list[Row]] = {}
    for row in load_paper_test(path, on_bad_row):
        by_task.setdefault(row["datasource"], []).append(row)
    missing = [name for name in wanted if name not in by_task]
    if missing:
        raise MissingTaskData(
            f"{path}: no test rows for paper task(s) {', '.join(missing)}; the files hold {sorted(by_task)}"
        )
    return {name: by_task[name] for name in wanted}
