"""A small exact Countdown solver: reference answers for tests, warm-up data and sanity checks.

Two searches, the fast one first:
1. chains ``((a op b) op c) op …`` over integers, meeting in the middle (reasoning-gym builds its
   targets this way, so this almost always succeeds, within milliseconds);
2. the general search: repeatedly replace two values by their sum, difference, product or quotient
   (exact ``Fraction`` arithmetic), skipping multisets of values already explored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any


def solve_countdown(numbers: Sequence[int], target: int) -> str | None:
    """An expression using each number exactly once that equals `target`, or None if there is none."""
    if not numbers:
        return None
    return _solve_chain(list(numbers), int(target)) or _solve_general(list(numbers), target)


def _apply(expression: str, operator: str, number: int) -> str:
    bracketed = operator in "*/" and not expression.isdigit()
    return f"({expression}){operator}{number}" if bracketed else f"{expression}{operator}{number}"


def _solve_chain(numbers: list[int], target: int) -> str | None:
    """Meet in the middle: chains over half of the numbers forwards (value -> expression), over the
    other half backwards from the target (value needed -> operations still to apply)."""
    count = len(numbers)
    forward_size = (count + 1) // 2
    forward: dict[int, dict[int, str]] = {1 << i: {x: str(x)} for i, x in enumerate(numbers)}
    for _ in range(forward_size - 1):
        forward = _grow(forward, numbers, _forward_steps)
    backward: dict[int, dict[int, list[tuple[str, int]]]] = {0: {target: []}}
    for _ in range(count - forward_size):
        backward = _grow(backward, numbers, _backward_steps)
    everything = (1 << count) - 1
    for mask, values in forward.items():
        needed = backward.get(everything ^ mask, {})
        for value in values.keys() & needed.keys():
            expression = values[value]
            for operator, x in needed[value]:
                expression = _apply(expression, operator, x)
            return expression
    return None


def _forward_steps(value: int, x: int, expression: str) -> list[tuple[int, str]]:
    steps = [(value + x, "+"), (value - x, "-"), (value * x, "*")]
    if x != 0 and value % x == 0:
        steps.append((value // x, "/"))
    return [(result, _apply(expression, operator, x)) for result, operator in steps]


def _backward_steps(goal: int, x: int, operations: list[tuple[str, int]]) -> list[tuple[int, list]]:
    # goal = previous <operator> x
    steps = [(goal - x, "+"), (goal + x, "-"), (goal * x, "/")]
    if x != 0 and goal % x == 0:
        steps.append((goal // x, "*"))
    return [(previous, [(operator, x), *operations]) for previous, operator in steps]


def _grow(layer: dict[int, dict[int, Any]], numbers: list[int], steps: Callable) -> dict[int, dict[int, Any]]:
    """Chains one number longer: for every set of used numbers (a bit mask), the values reached."""
    grown: dict[int, dict[int, Any]] = {}
    for mask, values in layer.items():
        for i, x in enumerate(numbers):
            if mask >> i & 1:
                continue
            target = grown.setdefault(mask | 1 << i, {})
            for value, how in values.items():
                for result, result_how in steps(value, x, how):
                    target.setdefault(result, result_how)
    return grown


def _apply(expression: str, operator: str, number: int) -> str:
    bracketed = operator in "*/" and not expression.isdigit()
    return f"({expression}){operator}{number}" if bracketed else f"{expression}{operator}{number}"


def _solve_general(numbers: list[int], target: int) -> str | None:
    goal = Fraction(target)
    explored: set[tuple[Fraction, ...]] = set()

    def search(values: list[Fraction], expressions: list[str]) -> str | None:
        if len(values) == 1:
            return expressions[0] if values[0] == goal else None
        key = tuple(sorted(values))
        if key in explored:
            return None
        explored.add(key)
        for i in range(len(values)):
            for j in range(i + 1, len(values)):
                a, b, ea, eb = values[i], values[j], expressions[i], expressions[j]
                rest_values = [v for k, v in enumerate(values) if k not in (i, j)]
                rest_expressions = [e for k, e in enumerate(expressions) if k not in (i, j)]
                candidates = [(a + b, f"({ea}+{eb})"), (a * b, f"({ea}*{eb})")]
                candidates += [(a - b, f"({ea}-{eb})"), (b - a, f"({eb}-{ea})")]
                if b != 0:
                    candidates.append((a / b, f"({ea}/{eb})"))
                if a != 0:
                    candidates.append((b / a, f"({eb}/{ea})"))
                for value, expression in candidates:
                    found = search([*rest_values, value], [*rest_expressions, expression])
                    if found is not None:
                        return found
        return None

    return search([Fraction(n) for n in numbers], [str(n) for n in numbers])
