"""Compact tasks for a tiny character-level model (the CPU demo): plain ASCII, no preamble, no ``\\boxed``.

The answer is the whole response up to EOS (surrounding whitespace ignored; a response longer than
:data:`MAX_RESPONSE_CHARS` is invalid). Train reward 1 / 0.1 / 0, eval 1 / 0, like the paper's tasks.

- ``tiny-add``: ``add 36+47=`` -> ``83``. Operands 10-99. Well formed (0.1 when wrong): digits only,
  at most 3 of them. ``tiny-add-easy``: the second operand 1-9 (``add 36+7=`` -> ``43``).
- ``tiny-countdown``: ``cd 6,7,2>3:`` -> ``2+7-6`` (any expression using 6, 7 and 2 once each that makes
  3). Three numbers 1-9 and a target 1-50 that they always reach. Checked by the same safe evaluator as
  countdown-*; well formed: a valid expression. ``tiny-countdown-easy``: two numbers 1-20
  (``cd 12,4>3:`` -> ``12/4``).
- ``tiny-arc``: ``arc 2220090000>2220999000;0555000000>0000555000;8880080000>`` -> ``8880888000``.
  reasoning-gym arc_1d of length 10: two train pairs ``input>output`` joined by ``;``, then the test
  input and ``>``. Well formed: 10 digits.

Labels: ``{"task": "tiny-add", "target": "83"}``, ``{"task": "tiny-countdown", "numbers": [6, 7, 2],
"target": 3}``, ``{"task": "tiny-arc", "target": "8880888000"}``. Generation is cheap: about 10 µs (add),
30 µs (countdown) and 0.2 ms (arc) per prompt on one core.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from openrlhf_mt.tasks.arithmetic import grade_countdown
from openrlhf_mt.tasks.base import Grade, Task
from openrlhf_mt.tasks.countdown_solver import solve_countdown
from openrlhf_mt.tasks.reasoning_gym_utils import ARC_ITEM_TIMEOUT_S, generate_entries

MAX_RESPONSE_CHARS = 256


def _answer(response: str) -> str | None:
    return response.strip() if len(response) <= MAX_RESPONSE_CHARS else None


def _item_rng(task: str, seed: int, index: int) -> random.Random:
    return random.Random(f"{task}/{seed}/{index}")


def _grade_exact(answer: str | None, target: str, well_formed: bool) -> Grade:
    if answer is not None and answer == target:
        return Grade.CORRECT
    return Grade.WELL_FORMED if well_formed else Grade.INVALID


class _TinyExactTask(Task):
    truth_keys = ("target",)

    def reference_response(self, label: str | Mapping[str, Any]) -> str | None:
        return str(self.truth(label)["target"])


class TinyAdd(_TinyExactTask):
    def __init__(self, name: str, description: str, second_operand: tuple[int, int] = (10, 99)) -> None:
        super().__init__(name, description)
        self.second_operand = second_operand

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        pairs = []
        for index in range(start, stop):
            rng = _item_rng(self.name, seed, index)
            a, b = rng.randint(10, 99), rng.randint(*self.second_operand)
            pairs.append((f"add {a}+{b}=", {"target": str(a + b)}))
        return pairs

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        answer = _answer(response)
        well_formed = answer is not None and 0 < len(answer) <= 3 and answer.isascii() and answer.isdigit()
        return _grade_exact(answer, str(truth["target"]), well_formed)


@functools.cache
def _reachable_targets(numbers: tuple[int, ...]) -> tuple[int, ...]:
    """Integer values 1-50 that some expression over all the numbers (each once) reaches."""
    values = _values(tuple(Fraction(x) for x in numbers))
    return tuple(sorted(int(v) for v in values if v.denominator == 1 and 1 <= v <= 50))


def _values(numbers: tuple[Fraction, ...]) -> set[Fraction]:
    """Every value of an expression over all of `numbers` (each once): combine two, recurse on the rest."""
    if len(numbers) == 1:
        return set(numbers)
    values: set[Fraction] = set()
    for i, j in itertools.permutations(range(len(numbers)), 2):
        rest = tuple(x for k, x in enumerate(numbers) if k not in (i, j))
        for combined in _combine(numbers[i], numbers[j]):
            values |= _values((*rest, combined))
    return values


def _combine(x: Fraction, y: Fraction) -> list[Fraction]:
    results = [x + y, x - y, x * y]
    if y != 0:
        results.append(x / y)
    return results


class TinyCountdown(Task):
    truth_keys = ("numbers", "target")

    def __init__(self, name: str, description: str, count: int = 3, largest: int = 9) -> None:
        super().__init__(name, description)
        self.count, self.largest = count, largest

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        pairs = []
        for index in range(start, stop):
            rng = _item_rng(self.name, seed, index)
            while True:
                numbers = [rng.randint(1, self.largest) for _ in range(self.count)]
                targets = _reachable_targets(tuple(sorted(numbers)))
                if targets:
                    break
            target = rng.choice(targets)
            prompt = f"cd {','.join(map(str, numbers))}>{target}:"
            pairs.append((prompt, {"numbers": numbers, "target": target}))
        return pairs

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        return grade_countdown(_answer(response), truth["numbers"], truth["target"], format_credit="valid")

    def reference_response(self, label: str | Mapping[str, Any]) -> str | None:
        truth = self.truth(label)
        return solve_countdown(truth["numbers"], truth["target"])


def _cells(grid: list[int]) -> str:
    return "".join(map(str, grid))


class TinyArc(_TinyExactTask):
    length = 10

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        config = {"min_size": self.length, "max_size": self.length, "num_train": 2}
        pairs = []
        for entry in generate_entries("arc_1d", config, seed, start, stop, item_timeout_s=ARC_ITEM_TIMEOUT_S):
            metadata = entry["metadata"]
            shown = [f"{_cells(ex['input'])}>{_cells(ex['output'])}" for ex in metadata["train_examples"]]
            test = metadata["test_example"]
            prompt = f"arc {';'.join(shown)};{_cells(test['input'])}>"
            pairs.append((prompt, {"target": _cells(test["output"])}))
        return pairs

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        answer = _answer(response)
        well_formed = (
            answer is not None and len(answer) == self.length and answer.isascii() and answer.isdigit()
        )
        return _grade_exact(answer, str(truth["target"]), well_formed)


TINY_TASKS: dict[str, Callable[[str], Task]] = {
    "tiny-add-easy": functools.partial(
        TinyAdd, description="2-digit plus 1-digit: 'add 36+7=' -> '43'", second_operand=(1, 9)
    ),
    "tiny-add": functools.partial(TinyAdd, description="2-digit addition: 'add 36+47=' -> '83'"),
    "tiny-countdown-easy": functools.partial(
        TinyCountdown,
        description="2 numbers 1-20, reachable target 1-50: 'cd 12,4>3:' -> '12/4'",
        count=2,
        largest=20,
    ),
    "tiny-countdown": functools.partial(
        TinyCountdown, description="3 numbers 1-9, reachable target 1-50: 'cd 6,7,2>3:' -> '2+7-6'"
    ),
    "tiny-arc": functools.partial(
        TinyArc, description="1-D ARC length 10, 2 train pairs: 'arc <in>><out>;<in>><out>;<in>>' -> '<out>'"
    ),
}
