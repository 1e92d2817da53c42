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
:data:`MAX_UNARY_RUN` unary signs in a row, an integer power whose result would exceed :data:`MAX_INT_BITS`
bits, or more than :data:`MAX_TOTAL_INT_BITS` bits of integers made in all (literals, results, and the
operands of each division, whose cost grows with both): no value. The total never binds on an answer over
six numbers of at most 100 used once each (at most five operations; powers within MAX_INT_BITS; at most
about 4 x MAX_INT_BITS in all), so on the paper's tasks it leaves every reward as it was and only stops
hostile text, such as hundreds of 4,000-digit literals multiplied together, which ``eval`` would spend
seconds on.

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
MAX_TOTAL_INT_BITS = 6 * MAX_INT_BITS
BITS_PER_DIGIT = math.log2(10)
FORMAT_CREDITS = ("any_box", "valid")

Number = int | float | complex

_SPACE = re.compile(r"[ \t\x0c]+")
# one token, or a run of spaces between tokens; "**" and "//" before "*" and "/"
_TOKEN = re.compile(
    r"(?P<space>[ \t\x0c]+)|(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)|(?P<operator>\*\*|//|[-+*/()])"
)
_BLANK_RUN = re.compile(r"[ \t\x0c\n]*")
_DIGIT_RUN = re.compile(r"\d+")
_NOT_DIGITS = re.compile(r"\D*")
_ASCII_NON_DIGITS_TO_SPACE = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isdigit()})
# binding power of the binary operators; unary signs bind tighter than * but looser than ** (as in Python)
_BINARY = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "**": 4}
_UNARY = 3


class InvalidExpression(ValueError):
    pass


class IntegerWork:
    """The bits of integers one evaluation has made; raises InvalidExpression past MAX_TOTAL_INT_BITS."""

    def __init__(self) -> None:
        self.left = float(MAX_TOTAL_INT_BITS)

    def spend(self, bits: float) -> None:
        """Account for about `bits` bits of integer work, before it is done."""
        self.left -= bits
        if self.left < 0:
            raise InvalidExpression(f"more than {MAX_TOTAL_INT_BITS} bits of integers in all")


def tokens(expression: str, work: IntegerWork | None = None) -> list[str | Number]:
    """Numbers (as values) and operator strings, as CPython's tokenizer splits the text for ``eval``."""
    work = work or IntegerWork()
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
        if text.startswith("\n", position):  # a newline and the blank lines after it, in one step
            blank_run_end = _BLANK_RUN.match(text, position).end()
            position, at_line_start = text.rfind("\n", position, blank_run_end) + 1, True
            line_done = line_done or (level == 0 and bool(out))
            continue
        token = _TOKEN.match(text, position)
        if token is None:
            raise InvalidExpression(f"unexpected character {text[position]!r}")
        position = token.end()
        if token.lastgroup == "space":
            continue
        if line_done:
            raise InvalidExpression("text after the end of the expression's line")
        if len(out) == MAX_TOKENS:
            raise InvalidExpression(f"more than {MAX_TOKENS} tokens")
        if token.lastgroup == "number":
            literal = token.group()
            if "." in literal:
                out.append(float(literal))
            elif literal[0] == "0" and literal.strip("0"):
                raise InvalidExpression("leading zeros in an integer literal")
            else:
                work.spend(len(literal) * BITS_PER_DIGIT)
                out.append(int(literal))
            continue
        symbol = token.group()
        if symbol == "(":
            if level == MAX_PAREN_DEPTH:
                raise InvalidExpression("too many nested parentheses")
            level += 1
        elif symbol == ")":
            if level == 0:
                raise InvalidExpression("unmatched ')'")
            level -= 1
        out.append(symbol)


_APPLY: dict[str, Callable[[Number, Number], Number]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "**": operator.pow,
}


def _integer_result_bits(symbol: str, left: int, right: int) -> float:
    """About the bits of `left <symbol> right` for two integers (an upper bound; 0 where it is small)."""
    if symbol in ("+", "-"):
        return max(left.bit_length(), right.bit_length()) + 1
    if symbol == "*":
        return left.bit_length() + right.bit_length()
    if symbol == "**" and right > 0 and abs(left) > 1:
        return right * math.log2(abs(left))
    return 0.0


def _apply(symbol: str, left: Number, right: Number, work: IntegerWork) -> Number:
    if type(left) is int and type(right) is int:
        if symbol in ("/", "//"):  # long division costs about len(divisor) x len(quotient)
            work.spend(left.bit_length() + right.bit_length())
        else:
            bits = _integer_result_bits(symbol, left, right)
            if symbol == "**" and bits > MAX_INT_BITS:
                raise InvalidExpression(f"an integer power of more than {MAX_INT_BITS} bits")
            work.spend(bits)
    return _APPLY[symbol](left, right)


def _reduce(values: list[Number], pending: list[str], work: IntegerWork) -> None:
    """Apply the operator on top of `pending` to the values it takes."""
    symbol = pending.pop()
    if symbol in ("u+", "u-"):
        values.append(-values.pop() if symbol == "u-" else +values.pop())
        return
    right = values.pop()
    values.append(_apply(symbol, values.pop(), right, work))


def _binds(symbol: str) -> int:
    return _UNARY if symbol in ("u+", "u-") else _BINARY.get(symbol, 0)


def python_value(expression: str) -> Number:
    """The number ``eval(expression)`` gives; InvalidExpression where it gives an error or no number."""
    values: list[Number] = []
    pending: list[str] = []  # operators and open parentheses
    want_operand, unary_run = True, 0
    work = IntegerWork()
    try:
        for token in tokens(expression, work):
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
                    _reduce(values, pending, work)
                pending.pop()
            elif token in _BINARY:
                power = _BINARY[token]
                while pending and (_binds(pending[-1]) > power or (_binds(pending[-1]) == power < 4)):
                    _reduce(values, pending, work)
                pending.append(token)
                want_operand = True
            else:  # a number or "(" right after an operand: adjacent literals or a call
                raise InvalidExpression(f"unexpected {token!r} after an operand")
        if want_operand:
            raise InvalidExpression("the expression is incomplete")
        while pending:
            if pending[-1] == "(":
                raise InvalidExpression("'(' was never closed")
            _reduce(values, pending, work)
    except (ArithmeticError, TypeError, ValueError) as error:  # what eval itself would raise
        raise InvalidExpression(str(error)) from None
    return values[0]


def digit_runs(text: str, most: int) -> list[str]:
    """The runs of decimal digits (any script) in `text`, in order; past `most` runs, at least one more.

    Linear at C speed on megabytes: ASCII text (the usual case) has its non-digits turned into spaces and
    is split; other text skips each stretch of non-digits with one regex match (searching for the next
    digit run instead would cost several times more per character)."""
    if text.isascii():
        return text.translate(_ASCII_NON_DIGITS_TO_SPACE).split(maxsplit=most)
    runs: list[str] = []
    position = _NOT_DIGITS.match(text).end()
    while position < len(text) and len(runs) <= most:
        runs.append(_DIGIT_RUN.match(text, position).group())
        position = _NOT_DIGITS.match(text, position + len(runs[-1])).end()
    return runs


def literals_match(expression: str, numbers: Sequence[int]) -> bool:
    """The released check: the runs of decimal digits (any script), read as integers, are `numbers`."""
    runs = digit_runs(expression, len(numbers))
    if len(runs) > len(numbers) or any(len(run) > sys.get_int_max_str_digits() for run in runs):
        return False  # more runs than numbers; or one that int() refuses, so the released try fails
    return Counter(map(int, runs)) == Counter(numbers)


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
