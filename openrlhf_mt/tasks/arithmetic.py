"""Countdown answers graded as the released scorer grades them, without ever running the model's text.

The released scorer (verl/utils/reward_score/countdown.py, docs/parity.md) gives 0.1 to any boxed answer and
1.0 when (a) the runs of decimal digits in it, read as integers, are the row's numbers in some order and
(b) Python's ``eval`` of it, allowed only digits, ``+ - * / ( ) .`` and whitespace, gives a number within
1e-5 of the target. Here (b) is :func:`python_value`: a tokenizer and an operator-precedence parser for the
part of Python's expression grammar those characters can spell, evaluated with Python's own number types
and operators, so results (ints, floats, complex numbers, errors) are the ones ``eval`` gives:

    literals     ASCII integers (``05`` is an error, ``00`` is not) and floats (``5.``, ``.5``, ``05.5``)
    operators    binary ``+ - * / // **``, unary ``+ -``, parentheses; ``-2**2`` is -4, ``2**-1`` is 0.5
    whitespace   as ``eval`` reads it: leading spaces and tabs are stripped; space, tab and form feed
                 separate tokens; ``\\r`` is a newline (free inside parentheses; outside them it ends the
                 expression, and a non-blank or indented line after it is an error); any other character
                 (other Unicode digits or spaces included) is an error
    errors       ``()``, ``...``, a call like ``2(3)``, division by zero, float overflow: no value

Bounds (where ``eval`` would compute or fail slowly, docs/parity.md): more than :data:`MAX_TOKENS` tokens,
parentheses nested deeper than :data:`MAX_PAREN_DEPTH` (CPython's own limit), more than
:data:`MAX_UNARY_RUN` unary signs in a row, or an integer power whose result would exceed
:data:`MAX_INT_BITS` bits: no value.

Variant (off by default): ``format_credit="valid"`` gives 0.1 only to an answer that has a value.
"""

from __future__ import annotations

import math
import operator
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence

from openrlhf_mt.tasks.base import Grade

TARGET_TOLERANCE = 1e-5
MAX_TOKENS = 4096
MAX_PAREN_DEPTH = 200
MAX_UNARY_RUN = 200
MAX_INT_BITS = 1 << 16
FORMAT_CREDITS = ("any_box", "valid")

Number = int | float | complex

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_SPACE = re.compile(r"[ \t\x0c]+")
_DIGIT_RUN = re.compile(r"\d+")
_OPERATORS = ("**", "//", "+", "-", "*", "/", "(", ")")
# binding power of the binary operators; unary signs bind tighter than * but looser than ** (as in Python)
_BINARY = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "**": 4}
_UNARY = 3


class InvalidExpression(ValueError):
    pass


def tokens(expression: str) -> list[str | Number]:
    """Numbers (as values) and operator strings, as CPython's tokenizer splits the text for ``eval``."""
    text = expression.lstrip(" \t").replace("\r", "\n")
    out: list[str | Number] = []
    level, position, at_line_start, line_done = 0, 0, True, False
    while True:
        if at_line_start:  # a line's indentation matters outside brackets; a form feed resets the column
            at_line_start = False
            space = _SPACE.match(text, position)
            if space:
                position = space.end()
            blank = text.startswith("\n", position)
            if space and text[position - 1] != "\x0c" and level == 0 and not blank:
                raise InvalidExpression("unexpected indent")
        if position == len(text):
            return out
        char = text[position]
        if char == "\n":
            position, at_line_start = position + 1, True
            line_done = line_done or (level == 0 and bool(out))
            continue
        space = _SPACE.match(text, position)
        if space:
            position = space.end()
            continue
        if line_done:
            raise InvalidExpression("text after the end of the expression's line")
        if len(out) == MAX_TOKENS:
            raise InvalidExpression(f"more than {MAX_TOKENS} tokens")
        number = _NUMBER.match(text, position)
        if number:
            literal = number.group()
            if "." in literal:
                out.append(float(literal))
            elif literal[0] == "0" and literal.strip("0"):
                raise InvalidExpression("leading zeros in an integer literal")
            else:
                out.append(int(literal))
            position = number.end()
            continue
        symbol = next((op for op in _OPERATORS if text.startswith(op, position)), None)
        if symbol is None:
            raise InvalidExpression(f"unexpected character {char!r}")
        if symbol == "(":
            if level == MAX_PAREN_DEPTH:
                raise InvalidExpression("too many nested parentheses")
            level += 1
        elif symbol == ")":
            if level == 0:
                raise InvalidExpression("unmatched ')'")
            level -= 1
        out.append(symbol)
        position += len(symbol)


def _power(base: Number, exponent: Number) -> Number:
    integers = isinstance(base, int) and isinstance(exponent, int)
    if integers and exponent > 0 and abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise InvalidExpression(f"an integer power of more than {MAX_INT_BITS} bits")
    return base**exponent


_APPLY: dict[str, Callable[[Number, Number], Number]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "**": _power,
}


def _reduce(values: list[Number], pending: list[str]) -> None:
    """Apply the operator on top of `pending` to the values it takes."""
    symbol = pending.pop()
    if symbol in ("u+", "u-"):
        values.append(-values.pop() if symbol == "u-" else +values.pop())
        return
    right = values.pop()
    values.append(_APPLY[symbol](values.pop(), right))


def _binds(symbol: str) -> int:
    return _UNARY if symbol in ("u+", "u-") else _BINARY.get(symbol, 0)


def python_value(expression: str) -> Number:
    """The number ``eval(expression)`` gives; InvalidExpression where it gives an error or no number."""
    values: list[Number] = []
    pending: list[str] = []  # operators and open parentheses
    want_operand, unary_run = True, 0
    try:
        for token in tokens(expression):
            if want_operand:
                if token in ("+", "-"):
                    unary_run += 1
                    if unary_run > MAX_UNARY_RUN:
                        raise InvalidExpression(f"more than {MAX_UNARY_RUN} unary signs in a row")
                    pending.append(f"u{token}")
                elif token == "(":
                    pending.append(token)
                elif isinstance(token, str):  # ")" right after "(" is an empty tuple
                    raise InvalidExpression(f"unexpected {token!r}")
                else:
                    values.append(token)
                    want_operand, unary_run = False, 0
            elif token == ")":
                while pending[-1] != "(":
                    _reduce(values, pending)
                pending.pop()
            elif token in _BINARY:
                power = _BINARY[token]
                while pending and (_binds(pending[-1]) > power or (_binds(pending[-1]) == power < 4)):
                    _reduce(values, pending)
                pending.append(token)
                want_operand = True
            else:  # a number or "(" right after an operand: adjacent literals or a call
                raise InvalidExpression(f"unexpected {token!r} after an operand")
        if want_operand:
            raise InvalidExpression("the expression is incomplete")
        while pending:
            if pending[-1] == "(":
                raise InvalidExpression("'(' was never closed")
            _reduce(values, pending)
    except (ArithmeticError, TypeError, ValueError) as error:  # what eval itself would raise
        raise InvalidExpression(str(error)) from None
    return values[0]


def literals_match(expression: str, numbers: Sequence[int]) -> bool:
    """The released check: the runs of decimal digits (any script), read as integers, are `numbers`."""
    wanted, found = Counter(numbers), Counter()
    for run in _DIGIT_RUN.finditer(expression):
        if found.total() == len(numbers) or len(run.group()) > sys.get_int_max_str_digits():
            return False
        found[int(run.group())] += 1
    return found == wanted


def grade_countdown(
    expression: str | None, numbers: Sequence[int], target: float, format_credit: str = "any_box"
) -> Grade:
    """CORRECT: each number used once and a value within 1e-5 of the target; INVALID: no box (or, with
    format_credit="valid", no value); WELL_FORMED: anything else."""
    if expression is None:
        return Grade.INVALID
    used_each_number_once = literals_match(expression, numbers)
    value = None
    if used_each_number_once or format_credit == "valid":
        try:
            value = python_value(expression)
        except InvalidExpression:
            if format_credit == "valid":
                return Grade.INVALID
    if used_each_number_once and value is not None and abs(value - target) < TARGET_TOLERANCE:
        return Grade.CORRECT
    return Grade.WELL_FORMED
