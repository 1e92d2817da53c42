"""A small, safe arithmetic evaluator for Countdown answers: model output is hostile input.

Never ``eval`` or sympy: reasoning-gym's own countdown scorer runs sympy's ``parse_expr``, which executes
Python (``__import__('os')…``) and spends seconds on ``9**9**9``. Here a regex tokenizer and a recursive
descent parser evaluate exactly over ``Fraction`` within hard limits, so every call is bounded:

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := ("+" | "-") factor | "(" expression ")" | integer literal

Only digits, ``+ - * / ( )`` and spaces are allowed; ``**``, ``=``, decimals, literals of more than
:data:`MAX_LITERAL_DIGITS` digits, more than :data:`MAX_EXPRESSION_CHARS` characters, nesting deeper than
:data:`MAX_DEPTH`, and division by zero make the expression invalid.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

from openrlhf_mt.tasks.base import Grade

MAX_EXPRESSION_CHARS = 512
MAX_LITERAL_DIGITS = 6
MAX_DEPTH = 32
TARGET_TOLERANCE = 1e-5

_ALLOWED = re.compile(r"[0-9+\-*/() ]*")
_TOKEN = re.compile(r"\d+|[-+*/()]")


class InvalidExpression(ValueError):
    pass


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0
        self.literals: list[int] = []

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise InvalidExpression("unexpected end of expression")
        self.position += 1
        return token

    def expression(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            operator = self.take()
            right = self.term(depth)
            value = value + right if operator == "+" else value - right
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            operator = self.take()
            right = self.factor(depth)
            if operator == "*":
                value *= right
            elif right == 0:
                raise InvalidExpression("division by zero")
            else:
                value /= right
        return value

    def factor(self, depth: int) -> Fraction:
        if depth > MAX_DEPTH:
            raise InvalidExpression("nested too deeply")
        token = self.take()
        if token in ("+", "-"):
            value = self.factor(depth + 1)
            return value if token == "+" else -value
        if token == "(":
            value = self.expression(depth + 1)
            if self.take() != ")":
                raise InvalidExpression("unbalanced parentheses")
            return value
        if token.isdigit():
            if len(token) > MAX_LITERAL_DIGITS:
                raise InvalidExpression("literal too long")
            self.literals.append(int(token))
            return Fraction(int(token))
        raise InvalidExpression(f"unexpected {token!r}")


def evaluate(expression: str) -> tuple[Fraction, list[int]]:
    """Exact value of `expression` and the integer literals it uses; InvalidExpression if not valid."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise InvalidExpression("expression too long")
    if _ALLOWED.fullmatch(expression) is None:
        raise InvalidExpression("characters other than digits, + - * / ( ) and spaces")
    tokens = _TOKEN.findall(expression)
    if not tokens:
        raise InvalidExpression("empty expression")
    if any(token.isdigit() and len(token) > MAX_LITERAL_DIGITS for token in tokens):
        raise InvalidExpression("literal too long")
    # Digits split by spaces ("1 2") would otherwise read as two literals with no operator between.
    if re.search(r"\d +\d", expression):
        raise InvalidExpression("two numbers with no operator between them")
    parser = _Parser(tokens)
    value = parser.expression(0)
    if parser.peek() is not None:
        raise InvalidExpression(f"unexpected {parser.peek()!r}")
    return value, parser.literals


def grade_countdown(expression: str | None, numbers: Sequence[int], target: int | float) -> Grade:
    """CORRECT: uses each number exactly once and hits the target within 1e-5; WELL_FORMED: a valid
    expression that does not; INVALID: no expression, or not a valid one."""
    if expression is None:
        return Grade.INVALID
    try:
        value, literals = evaluate(expression)
    except (InvalidExpression, RecursionError):
        return Grade.INVALID
    if Counter(literals) == Counter(numbers) and abs(value - Fraction(target)) < TARGET_TOLERANCE:
        return Grade.CORRECT
    return Grade.WELL_FORMED
