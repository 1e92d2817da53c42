"""Answer extraction and the safe Countdown evaluator, against hand-worked cases and a float64 reference."""

import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.tasks.arithmetic import (
    MAX_DEPTH,
    MAX_EXPRESSION_CHARS,
    MAX_LITERAL_DIGITS,
    InvalidExpression,
    evaluate,
    grade_countdown,
)
from openrlhf_mt.tasks.base import Grade
from openrlhf_mt.tasks.extract import MAX_INNER_BRACES, last_boxed_answer


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("\\boxed{42}", "42"),
        ("blah\n\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{1}\nlast line without a box", None),
        ("\\boxed{7}\n\n  \n", "7"),  # trailing blank lines do not count
        ("\\boxed{7}\r\n", "7"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # balanced inner braces
        ("\\boxed{a{b}c}", "a{b}c"),
        ("\\boxed{1} and \\boxed{2", None),  # the last \boxed{ never closes
        ("\\boxed{}", ""),
        ("\\boxed 5", None),
        ("boxed{5}", None),
        ("", None),
        ("\\boxed{\\boxed{3}}", "3"),  # the last opening wins
        ("\\boxed{" + "{}" * (MAX_INNER_BRACES + 1) + "}", None),
        ("\\boxed{" + "{}" * MAX_INNER_BRACES + "}", "{}" * MAX_INNER_BRACES),
    ],
)
def test_last_boxed_answer(response, expected):
    assert last_boxed_answer(response) == expected


@pytest.mark.parametrize(
    ("expression", "value", "literals"),
    [
        ("1+2*3", 7, [1, 2, 3]),
        ("(1+2)*3", 9, [1, 2, 3]),
        ("8/3*3", 8, [8, 3, 3]),  # exact: no float round-off
        ("10-4-3", 3, [10, 4, 3]),  # left associative
        ("100/10/5", 2, [100, 10, 5]),
        ("-3+5", 2, [3, 5]),
        ("-(2-7)", 5, [2, 7]),
        (" ( 6 + 7 ) / 13 ", 1, [6, 7, 13]),
        ("007", 7, [7]),
    ],
)
def test_evaluate_hand_cases(expression, value, literals):
    assert evaluate(expression) == (Fraction(value), literals)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "2**3",
        "2^3",
        "1/0",
        "5/(3-3)",
        "1 2",
        "2(3)",
        "(1+2",
        "1+2)",
        "()",
        "1+",
        "*1",
        "1.5",
        "1e3",
        "x",
        "__import__('os').getpid()",
        "9" * (MAX_LITERAL_DIGITS + 1),
        "(" * (MAX_DEPTH + 2) + "1" + ")" * (MAX_DEPTH + 2),
        "-" * (MAX_DEPTH + 2) + "1",
        "1+" * (MAX_EXPRESSION_CHARS // 2) + "1",
        "１+２",  # full-width digits are not ASCII digits
        "1\t+2",
    ],
)
def test_evaluate_rejects(expression):
    with pytest.raises(InvalidExpression):
        evaluate(expression)


def test_limits_are_inclusive_where_they_should_be():
    assert evaluate("9" * MAX_LITERAL_DIGITS)[0] == int("9" * MAX_LITERAL_DIGITS)
    nested = "(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH
    assert evaluate(nested)[0] == 1


def test_grade_countdown_rules():
    numbers, target = [25, 50, 75, 100], 125
    assert grade_countdown("100 + 75 - 50 / 25 * 25", numbers, target) is Grade.WELL_FORMED  # 25 twice
    assert grade_countdown("(100+50)-(75-50)", numbers, target) is Grade.WELL_FORMED  # 50 twice, 25 unused
    assert grade_countdown("75+50+100/25*0", [25, 50, 75, 100, 0], target) is Grade.CORRECT
    assert grade_countdown("(100-75)*50/25+75", numbers, target) is Grade.WELL_FORMED  # 75 twice
    assert grade_countdown("100+25+(75-50)", numbers, 150) is Grade.CORRECT
    assert grade_countdown("100/3*3", [100, 3, 3], 100) is Grade.CORRECT
    assert grade_countdown("1/3", [1, 3], 0.333333) is Grade.CORRECT  # within 1e-5
    assert grade_countdown("1/3", [1, 3], 0.3333) is Grade.WELL_FORMED  # not within 1e-5
    assert grade_countdown(None, numbers, target) is Grade.INVALID
    assert grade_countdown("100**2", numbers, target) is Grade.INVALID


def _expressions(max_leaves: int = 6):
    number = st.integers(0, 999).map(str)

    def extend(children):
        return st.tuples(children, st.sampled_from("+-*/"), children).map(lambda t: f"({t[0]}{t[1]}{t[2]})")

    return st.recursive(number, extend, max_leaves=max_leaves)


@settings(max_examples=2000, deadline=None)
@given(_expressions())
def test_evaluate_matches_a_float64_reference(expression):
    try:
        reference = eval(expression, {"__builtins__": {}}, {})  # hypothesis-made arithmetic, not model output
    except ZeroDivisionError:
        with pytest.raises(InvalidExpression):
            evaluate(expression)
        return
    value, literals = evaluate(expression)
    assert float(value) == pytest.approx(reference, rel=1e-9, abs=1e-9)
    assert sorted(literals) == sorted(int(x) for x in re.findall(r"\d+", expression))
