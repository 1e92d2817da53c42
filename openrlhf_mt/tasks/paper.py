"""The paper's tasks: Countdown, Zebra puzzles and 1-D ARC at four difficulties (MTGRPO_SPEC.md §5).

Prompts, generator parameters and ground truth replicate the paper's test sets
(../shared/data/paper_test/*.parquet, checked by tests/tasks):

- an R1-Zero preamble, ``User: <question>``, ``Assistant: Let me solve this step by step.`` (no chat
  template); the answer goes in ``\\boxed{}`` on the last line;
- countdown: reasoning-gym ``countdown`` with 3/4/5/6 numbers in 1-100 and targets in 1-1000, the
  question rewritten in the paper's wording; label ``{"numbers": [...], "target": int}``;
- zebra: reasoning-gym ``zebra_puzzles`` with n houses x n attributes (n = 3/4/5/6), the paper's
  ``\\boxed{}`` instruction appended; label ``{"target": "<name>"}``;
- arc: reasoning-gym ``arc_1d`` of length 10/20/30/40 with 3 train examples, the paper's ``\\boxed{}``
  instruction; label ``{"target": "<cells separated by spaces>"}``.

Rewards: train 1 / 0.1 / 0, eval 1 / 0, as the released scorers give them (docs/parity.md): no answer (see
``extract.last_boxed_answer``) scores 0, any boxed answer at least 0.1, a correct one 1.0. Correct means, for
countdown, the released check (``arithmetic.grade_countdown``); for zebra and arc, equal to the target after
``lower()`` and ``strip()`` of both. A task name may carry reward options (``base.RewardOptions``):
``countdown-medium?newline=ignore&format_credit=valid``.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Mapping
from typing import Any

from openrlhf_mt.tasks.arithmetic import grade_countdown
from openrlhf_mt.tasks.base import Grade, RewardOptions, Task
from openrlhf_mt.tasks.countdown_solver import solve_countdown
from openrlhf_mt.tasks.extract import last_boxed_answer
from openrlhf_mt.tasks.reasoning_gym_utils import ARC_ITEM_TIMEOUT_S, generate_entries

PREAMBLE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer.\nUser: "
)
ASSISTANT_START = "\nAssistant: Let me solve this step by step."

LEVELS = ("easy", "medium", "hard", "very_hard")
COUNTDOWN_NUMBERS = {"easy": 3, "medium": 4, "hard": 5, "very_hard": 6}
ZEBRA_HOUSES = {"easy": 3, "medium": 4, "hard": 5, "very_hard": 6}
ARC_LENGTHS = {"easy": 10, "medium": 20, "hard": 30, "very_hard": 40}

COUNTDOWN_QUESTION = (
    "Using the numbers [{numbers}], create an equation that equals {target}. You can only use basic "
    "arithmetic operations (+, -, *, /) and each number should be used exactly once. Return the final "
    "answer in \\boxed{{}}, for example \\boxed{{(1 + 2) / 3}}."
)
# reasoning-gym's closing sentences and the paper's versions of them
ZEBRA_ENDING = ("?? Provide only the name of the person as your final answer.", "?")
ZEBRA_PAPER_ENDING = (
    "? Provide only the name of the person as your final answer and put in in \\boxed{}, for example: "
    "\\boxed{Alice}."
)
ARC_ENDING = "Your final answer should be just the test output grid itself."
ARC_PAPER_ENDING = (
    "Your final answer must be placed in \\boxed{} and should be just the test output grid itself."
)


def r1_zero_prompt(question: str) -> str:
    """The paper's prompt around a question (R1-Zero style, no chat template)."""
    return f"{PREAMBLE}{question}{ASSISTANT_START}"


def boxed(answer: str) -> str:
    return f"\\boxed{{{answer}}}"


def grade_exact_match(answer: str | None, target: str, format_credit: str = "any_box") -> Grade:
    """The released zebra/arc check: ``answer.lower().strip() == target.lower().strip()``; no answer is
    INVALID, and so is a blank one with format_credit="valid"."""
    if answer is None or (format_credit == "valid" and not answer.strip()):
        return Grade.INVALID
    answer, target = answer.strip(), target.strip()
    # lower() never shortens a string, so a longer answer cannot match (and is not lowered at all)
    if len(answer) <= len(target.lower()) and answer.lower() == target.lower():
        return Grade.CORRECT
    return Grade.WELL_FORMED


class ReasoningGymPaperTask(Task):
    """One family at one difficulty: a reasoning-gym dataset and config, the paper's question wording."""

    dataset: str
    item_timeout_s: float | None = None
    takes_reward_options = True

    def __init__(self, name: str, description: str, config: dict[str, Any]) -> None:
        super().__init__(name, description)
        self.config = config
        self.reward_options = RewardOptions.from_task_name(name)

    def answer(self, response: str) -> str | None:
        return last_boxed_answer(response, self.reward_options.ignore_trailing_whitespace)

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        entries = generate_entries(self.dataset, self.config, seed, start, stop, self.item_timeout_s)
        return [(r1_zero_prompt(self.question(entry)), self.ground_truth(entry)) for entry in entries]

    @abc.abstractmethod
    def question(self, entry: dict[str, Any]) -> str:
        """The paper's wording of a reasoning-gym entry's question (without the preamble)."""

    def ground_truth(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {"target": entry["answer"]}

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        return grade_exact_match(
            self.answer(response), str(truth["target"]), self.reward_options.format_credit
        )

    def reference_response(self, label: str | Mapping[str, Any]) -> str | None:
        return boxed(str(self.truth(label)["target"]))


class CountdownTask(ReasoningGymPaperTask):
    dataset = "countdown"
    truth_keys = ("numbers", "target")

    def question(self, entry: dict[str, Any]) -> str:
        metadata = entry["metadata"]
        return COUNTDOWN_QUESTION.format(
            numbers=", ".join(map(str, metadata["numbers"])), target=metadata["target"]
        )

    def ground_truth(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {"numbers": list(entry["metadata"]["numbers"]), "target": int(entry["metadata"]["target"])}

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        credit = self.reward_options.format_credit
        return grade_countdown(self.answer(response), truth["numbers"], truth["target"], credit)

    def reference_response(self, label: str | Mapping[str, Any]) -> str | None:
        truth = self.truth(label)
        expression = solve_countdown(truth["numbers"], truth["target"])
        return None if expression is None else boxed(expression)


class ZebraTask(ReasoningGymPaperTask):
    dataset = "zebra_puzzles"
    truth_keys = ("target",)

    def question(self, entry: dict[str, Any]) -> str:
        question = entry["question"].strip()
        for ending in ZEBRA_ENDING:
            if question.endswith(ending):
                return question[: -len(ending)] + ZEBRA_PAPER_ENDING
        raise RuntimeError(f"reasoning-gym zebra question has an unexpected ending: {question[-80:]!r}")


class ArcTask(ReasoningGymPaperTask):
    dataset = "arc_1d"
    truth_keys = ("target",)
    item_timeout_s = ARC_ITEM_TIMEOUT_S

    def question(self, entry: dict[str, Any]) -> str:
        question = entry["question"].strip()
        if ARC_ENDING not in question:
            raise RuntimeError(f"reasoning-gym arc_1d question lacks {ARC_ENDING!r}")
        return question.replace(ARC_ENDING, ARC_PAPER_ENDING)


def _paper_tasks() -> dict[str, Callable[[str], Task]]:
    tasks: dict[str, Callable[[str], Task]] = {}
    for level, count in COUNTDOWN_NUMBERS.items():
        config = {"min_numbers": count, "max_numbers": count, "min_value": 1, "max_value": 100}
        config |= {"min_target": 1, "max_target": 1000}
        description = f"Countdown, {count} numbers in 1-100, target 1-1000"
        tasks[f"countdown-{level}"] = functools.partial(CountdownTask, description=description, config=config)
    for level, houses in ZEBRA_HOUSES.items():
        config = {"num_people": houses, "num_characteristics": houses}
        description = f"Zebra puzzle, {houses} houses x {houses} attributes"
        tasks[f"zebra-{level}"] = functools.partial(ZebraTask, description=description, config=config)
    for level, length in ARC_LENGTHS.items():
        config = {"min_size": length, "max_size": length, "num_train": 3}
        description = f"1-D ARC, length {length}, 3 train examples"
        tasks[f"arc-{level}"] = functools.partial(ArcTask, description=description, config=config)
    return tasks


PAPER_TASKS = _paper_tasks()
