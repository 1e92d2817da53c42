"""Trimming a short batch to a size the trainer can split evenly (not a line of the paper).

A distributed trainer splits each batch over its data-parallel ranks in equal micro-batches; a batch
whose sample count does not divide that way makes the ranks disagree on how many collectives to run.
The sampler may return fewer than B groups (its rounds ran out), so the engine trims such a batch to
the largest multiple of `multiple` groups. The trim keeps the batch's own task shares (it pulls the
batch towards no target), so the composition each method built survives it.

    kept, dropped = trim_to_multiple(groups, multiple)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from openrlhf_mt.algo.request import apportion
from openrlhf_mt.algo.types import Group


def trim_to_multiple(groups: Sequence[Group], multiple: int) -> tuple[list[Group], list[Group]]:
    """(kept, dropped): the largest multiple of `multiple` groups, each task keeping its share of the batch.

    Each task keeps its first groups in batch order (the sampler's order is already random), so the
    kept batch is still in batch order. Counts per task come from the largest-remainder apportionment
    of the kept total over the tasks' counts, which never exceeds what a task has.
    """
    if multiple < 1:
        raise ValueError(f"trim_to_multiple: multiple must be >= 1, got {multiple}")
    keep_total = len(groups) // multiple * multiple
    if keep_total == len(groups):
        return list(groups), []
    counts = Counter(group.task for group in groups)
    tasks = list(counts)
    quota = dict(zip(tasks, apportion(keep_total, np.array([counts[t] for t in tasks], float)), strict=True))
    kept, dropped = [], []
    for group in groups:
        if quota[group.task] > 0:
            quota[group.task] -= 1
            kept.append(group)
        else:
            dropped.append(group)
    return kept, dropped
