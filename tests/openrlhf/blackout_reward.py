"""A reward function for the end-to-end tests: the task library's, with a blackout.

    OPENRLHF_MT_TEST_BLACKOUT=COUNTER_FILE:START:END  --reward.remote_url tests/openrlhf/blackout_reward.py

Samples number START to END - 1 of the run (counted over every vLLM engine through COUNTER_FILE) score 0,
so the generation round they fall in is all zero-gradient: a batch with no group to train on, on demand.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from typing import Any

import torch

from openrlhf_mt.tasks.openrlhf_reward import reward_func as task_reward


def next_sample_number(counter: str, count: int) -> int:
    with open(counter, "a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        number = int(file.read() or 0)
        file.seek(0)
        file.truncate()
        file.write(str(number + count))
    return number


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], **kwargs: Any) -> dict:
    result = task_reward(queries, prompts, labels, **kwargs)
    counter, start, end = os.environ["OPENRLHF_MT_TEST_BLACKOUT"].split(":")
    if int(start) <= next_sample_number(counter, len(queries)) < int(end):
        result["rewards"] = torch.zeros_like(result["rewards"])
    return result
