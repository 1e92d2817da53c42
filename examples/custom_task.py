"""A task of your own, plugged into openrlhf-mt: reverse a random word.

Use it by module path (the module must be importable, e.g. with PYTHONPATH=examples):

    PYTHONPATH=examples openrlhf-mt tasks custom_task:make_task --sample
    PYTHONPATH=examples openrlhf-mt data build --tasks custom_task:make_task,countdown-medium \\
        --train-size 1000 --test-size 100 --out data/custom

or register it under a short name from your own package's setup.cfg (an entry point):

    [options.entry_points]
    openrlhf_mt.tasks =
        reverse-word = my_package.custom_task:make_task

after which ``get_task("reverse-word")`` finds it and ``openrlhf-mt tasks`` lists it. Labels carry the
task name, so OpenRLHF's reward function (openrlhf_mt/tasks/openrlhf_reward.py) routes them here too.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from typing import Any

from openrlhf_mt.tasks import Grade, Task
from openrlhf_mt.tasks.extract import last_boxed_answer
from openrlhf_mt.tasks.paper import boxed, r1_zero_prompt


class ReverseWord(Task):
    """Reverse the letters of a random lower-case word; reward by exact match of the boxed answer."""

    truth_keys = ("target",)  # every label must carry these (checked before grading)

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        pairs = []
        for index in range(start, stop):
            rng = random.Random(f"{self.name}/{seed}/{index}")  # item i depends on (seed, i) only
            word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10)))
            question = f"Reverse the letters of the word '{word}'. Return the final answer in \\boxed{{}}."
            pairs.append((r1_zero_prompt(question), {"target": word[::-1]}))
        return pairs

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        answer = last_boxed_answer(response)  # last line, last \boxed{...}; None when there is none
        if answer is None or not answer.strip():
            return Grade.INVALID  # reward 0
        if answer.strip() == truth["target"]:
            return Grade.CORRECT  # reward 1
        return Grade.WELL_FORMED  # reward 0.1 in training, 0 in evaluation

    def reference_response(self, label: str | Mapping[str, Any]) -> str | None:
        return boxed(self.truth(label)["target"])


def make_task(name: str) -> Task:
    """The factory openrlhf-mt calls with the name the task was asked for."""
    return ReverseWord(name, "reverse a random word of 4-10 letters")


if __name__ == "__main__":
    from openrlhf_mt.tasks import get_task

    task = get_task("custom_task:make_task")
    row = task.generate(1, seed=0)[0]
    print(row["prompt"], "\nlabel:", row["label"])
    print("score of the reference answer:", task.score(task.reference_response(row["label"]), row["label"]))
