"""What every task is: seeded prompt generation plus a verifiable reward (MTGRPO_SPEC.md §5).

A row is ``{"prompt": str, "label": str, "datasource": str}``; the label is JSON text holding the task
name under ``"task"`` plus the ground truth, so a reward function can route any row back to its task.
"""

from __future__ import annotations

import abc
import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl

Row = dict[str, str]

#: Reward for a well-formed but wrong answer during training (evaluation gives 0).
FORMAT_REWARD = 0.1


class TaskDataError(ValueError):
    """Bad task input (name, label, file, row): the message names what is wrong and where."""


class MissingTaskData(TaskDataError):
    """The data lacks a task the run asks for: a configuration error, never skipped nor worked around."""


#: Called with the error of a bad data row when the user asked to skip such rows (`--skip-bad-rows`): it
#: counts and reports the row, which is then left out.
BadRowHandler = Callable[[TaskDataError], None]


def bad_row(error: TaskDataError, on_bad_row: BadRowHandler | None) -> None:
    """Raise `error`, or hand it to `on_bad_row` so that the row is skipped (counted by the handler)."""
    if on_bad_row is None:
        raise error
    on_bad_row(error)


class Grade(enum.Enum):
    CORRECT = "correct"
    WELL_FORMED = "well_formed"  # an answer in the expected format, but wrong
    INVALID = "invalid"  # no answer, or not in the expected format

    def reward(self, train: bool = True) -> float:
        """Training reward 1 / 0.1 / 0; evaluation reward 1 / 0."""
        if self is Grade.CORRECT:
            return 1.0
        if self is Grade.WELL_FORMED and train:
            return FORMAT_REWARD
        return 0.0


@dataclass(frozen=True)
class RewardOptions:
    """Deliberate departures from the released scorers (docs/parity.md); the defaults are the released code.

    Chosen per task by a query on its name, e.g. ``countdown-medium?newline=ignore&format_credit=valid``:
      newline        released: a response ending in a newline has an empty last line, so no answer;
                     ignore: the answer is read from the last non-blank line
      format_credit  any_box (released): any boxed answer, even empty or unparseable, earns 0.1;
                     valid: only a boxed answer with a value (countdown) or non-blank (zebra, arc) does
    """

    newline: str = "released"
    format_credit: str = "any_box"

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "newline": ("released", "ignore"),
        "format_credit": ("any_box", "valid"),
    }

    @classmethod
    def from_task_name(cls, name: str) -> RewardOptions:
        """The options in the query of a task name (``base?key=value&...``); TaskDataError if malformed."""
        query = name.partition("?")[2]
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise TaskDataError(
                f"task {name!r}: reward options must look like '?key=value&key=value'"
            ) from None
        options = dict(pairs)
        for key, value in options.items():
            if key not in cls.CHOICES:
                raise TaskDataError(
                    f"task {name!r}: unknown reward option {key!r}; allowed: {', '.join(cls.CHOICES)}"
                )
            if value not in cls.CHOICES[key]:
                raise TaskDataError(
                    f"task {name!r}: reward option {key}={value!r}; allowed: {', '.join(cls.CHOICES[key])}"
                )
        return cls(**options)

    @property
    def ignore_trailing_whitespace(self) -> bool:
        return self.newline == "ignore"


def encode_label(task: str, truth: Mapping[str, Any]) -> str:
    return json.dumps({"task": task, **truth}, separators=(",", ":"), ensure_ascii=False)


def decode_label(label: str | Mapping[str, Any], where: str = "label") -> dict[str, Any]:
    """The label as a dict; a clear error (saying `where`) when it is not a JSON object with a task."""
    if isinstance(label, Mapping):
        value = dict(label)
    else:
        try:
            value = json.loads(label)
        except (TypeError, ValueError) as error:
            raise TaskDataError(f"{where}: label is not valid JSON ({error}): {str(label)[:120]!r}") from None
    if not isinstance(value, dict):
        raise TaskDataError(f"{where}: label must be a JSON object, got {type(value).__name__}")
    if not isinstance(value.get("task"), str):
        raise TaskDataError(f"{where}: label has no string field 'task': {str(label)[:120]!r}")
    return value


class Task(abc.ABC):
    """A named task: ``generate(n, seed)`` makes rows, ``score(response, label, train)`` rewards one answer.

    Subclasses implement :meth:`examples` (prompts with their ground truth) and :meth:`grade`.
    """

    #: ground-truth keys every label of this task must carry
    truth_keys: tuple[str, ...] = ()
    #: whether the task name may carry RewardOptions (``name?key=value``)
    takes_reward_options: ClassVar[bool] = False

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @abc.abstractmethod
    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        """(prompt, ground truth) pairs number `start` to `stop - 1`; pair i depends only on (seed, i)."""

    @abc.abstractmethod
    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        """Grade one response against validated ground truth; never raises on any response string."""

    def reference_response(self, label: str | Mapping[str, Any]) -> str | None:
        """A response that scores 1.0 (for warm-up data and tests), or None where the task has none."""
        return None

    def generate(self, n: int, seed: int = 0) -> list[Row]:
        """`n` rows; a deterministic function of `seed`, and a longer list extends a shorter one."""
        return self.generate_range(seed, 0, n)

    def generate_range(self, seed: int, start: int, stop: int) -> list[Row]:
        """Rows number `start` to `stop - 1` of ``generate(stop, seed)`` (lets workers split a build)."""
        if not 0 <= start <= stop:
            raise TaskDataError(f"{self.name}: need 0 <= start <= stop, got start={start}, stop={stop}")
        return [self.make_row(prompt, truth) for prompt, truth in self.examples(seed, start, stop)]

    def make_row(self, prompt: str, truth: Mapping[str, Any]) -> Row:
        return {"prompt": prompt, "label": encode_label(self.name, truth), "datasource": self.name}

    def truth(self, label: str | Mapping[str, Any], where: str = "label") -> dict[str, Any]:
        """The validated ground truth of a label of this task."""
        value = decode_label(label, where)
        missing = [key for key in self.truth_keys if key not in value]
        if missing:
            raise TaskDataError(f"{where}: label of task {self.name!r} lacks ground truth field(s) {missing}")
        return value

    def score(self, response: str, label: str | Mapping[str, Any], train: bool = True) -> float:
        """1.0 correct, 0.1 well-formed but wrong (train only), else 0.0. Raises only on a bad label."""
        return self.grade(response, self.truth(label)).reward(train)
