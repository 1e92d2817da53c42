"""Answer extraction and the Countdown check, against hand-worked cases of the released semantics
(docs/parity.md) and, for the evaluator, against CPython's own eval on generated arithmetic."""

import contextlib
import re
import sys
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.tasks.arithmetic import (
    MAX_INT_BITS,
    MAX_PAREN_DEPTH,
    MAX_TOKENS,
    MAX_TOTAL_INT_BITS,
    MAX_UNARY_RUN,
    InvalidExpression,
    digit_runs,
    grade_countdown,
    literals_match,
    python_value,
)
from openrlhf_mt.tasks.base import Grade
from openrlhf_mt.tasks.extract import FEW_BRACES, last_boxed_answer


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("\\boxed{42}", "42"),
        ("blah\n\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{1}\nlast line without a box", None),
        ("\\boxed{7}\n", None),  # a trailing newline leaves an empty last line
        ("\\boxed{7}\n\n  \n", None),
        ("\\boxed{7}\r\n", None),
        ("\\boxed{7}\r", "7"),  # \r is not a line end for the released code
        ("\\boxed{7}  ", "7"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # balanced inner braces
        ("\\boxed{a{b}c}", "a{b}c"),
        ("\\boxed{1} and \\boxed{2", None),  # the last \boxed never closes
        ("\\boxed{1} and \\boxed", None),  # the last \boxed is not followed by {
        ("\\boxed{1} and \\boxedx", None),
        ("\\boxed{}", ""),
        ("\\boxed 5", None),
        ("\\boxed {5}", None),
        ("\\fbox{5}", None),  # found by the released code, then rejected
        ("boxed{5}", None),
        ("", None),
        ("\\boxed{\\boxed{3}}", "3"),  # the last opening wins
        ("\\boxed{" + "{}" * FEW_BRACES * 3 + "}", "{}" * FEW_BRACES * 3),  # many braces: vectorised path
        ("\\boxed{" + "{}" * FEW_BRACES * 3, None),
        ("\\boxed{" + "{" * FEW_BRACES * 2 + "}" * FEW_BRACES * 2 + "x}", "{" * 128 + "}" * 128 + "x"),
    ],
)
def test_last_boxed_answer(response, expected):
    assert last_boxed_answer(response) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [("\\boxed{7}\n\n  \n", "7"), ("\\boxed{7}\r\n", "7"), ("\\boxed{7}\nno box", None)],
)
def test_last_boxed_answer_variant_reads_the_last_non_blank_line(response, expected):
    assert last_boxed_answer(response, ignore_trailing_whitespace=True) == expected


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1+2*3", 7),
        ("(1+2)*3", 9),
        ("8/3*3", 8.0),  # a float, as eval gives
        ("10-4-3", 3),  # left associative
        ("2**3**2", 512),  # right associative
        ("-2**2", -4),  # unary minus binds looser than **
        ("2**-1", 0.5),
        ("2**-2**2", 0.0625),
        ("2*-3**2", -18),
        ("-2**-2", -0.25),
        ("7//2", 3),
        ("-7//2", -4),
        ("5.+3", 8.0),
        (".5*2", 1.0),
        ("05.5", 5.5),
        ("00+3", 3),
        ("+-+-1", 1),
        (" ( 6 + 7 ) / 13 ", 1.0),
        ("\t1\x0c+\t2 ", 3),
        ("(1+\r2)\r", 3),  # \r is a newline: free inside parentheses, fine at the end
        ("\r\r1+2", 3),  # blank lines first
        ("((-8)**0.5)*0+24", 24 + 0j),
    ],
)
def test_python_value_hand_cases(expression, value):
    got = python_value(expression)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "05+3",  # leading zeros in an integer literal
        "1 2",
        "1. 2",
        "1..2",
        "1.2.3",
        "2(3)",  # a call: 'int' object is not callable
        "(1)(2)",
        "()",
        "...",
        "(1+2",
        "1+2)",
        "1+",
        "*1",
        "1* *2",
        "1***2",
        "1/0",
        "1//0",
        "0**-1",
        "9.**999",  # float overflow
        "10**400*1.",  # int too large for a float
        "1e3",
        "x",
        "__import__('os').getpid()",
        "１+２",  # full-width digits are not digits to Python's tokenizer
        "1\xa0+2",
        "1\x0b+2",
        "\x0c 1",  # an indented first line
        "\r 1+2",
        "1\r+2",  # a newline outside parentheses ends the expression
        "(1)\r\t",  # an indented last line
        "(1+2)*\r3",
        "1j",
        "(" * (MAX_PAREN_DEPTH + 1) + "1" + ")" * (MAX_PAREN_DEPTH + 1),
        "-" * (MAX_UNARY_RUN + 1) + "1",
        "+".join(["1"] * (MAX_TOKENS // 2 + 1)),
        f"2**{MAX_INT_BITS + 1}",
        "99**99**99",
    ],
)
def test_python_value_rejects(expression):
    with pytest.raises(InvalidExpression):
        python_value(expression)


def test_limits_are_inclusive_where_cpython_is():
    assert python_value("(" * MAX_PAREN_DEPTH + "1" + ")" * MAX_PAREN_DEPTH) == 1
    assert python_value("-" * MAX_UNARY_RUN + "1") == 1
    assert python_value(f"2**{MAX_INT_BITS}") == 2**MAX_INT_BITS


def test_literals_match_reads_digit_runs_as_the_released_check_does():
    assert literals_match("(100-75)*50/25", [25, 50, 75, 100])
    assert literals_match("5.0+3", [5, 0, 3])  # "5.0" is the runs 5 and 0
    assert literals_match("05+3", [5, 3])  # int("05") = 5
    assert literals_match("١+2", [1, 2])  # Arabic-Indic one: a decimal digit to re and int()
    assert not literals_match("1+2", [1, 2, 3])
    assert not literals_match("1+2+3", [1, 2])
    assert not literals_match("1+1", [1])
    assert not literals_match("9" * 5000, [9])  # int() refuses 5000 digits: the released try fails


def test_grade_countdown_released_rules():
    numbers, target = [25, 50, 75, 100], 125
    assert grade_countdown(None, numbers, target) is Grade.INVALID  # no box: 0
    assert grade_countdown("100+25+(75-50)", numbers, 150) is Grade.CORRECT
    assert grade_countdown("100/3*3", [100, 3, 3], 100) is Grade.CORRECT
    assert grade_countdown("1/3", [1, 3], 0.333333) is Grade.CORRECT  # within 1e-5
    assert grade_countdown("1/3", [1, 3], 0.3333) is Grade.WELL_FORMED
    assert grade_countdown("5.+3", [5, 3], 8) is Grade.CORRECT
    assert grade_countdown("2**3*1", [2, 3, 1], 8) is Grade.CORRECT
    # any boxed content earns the format credit, whatever it is
    for junk in ("", "   ", "hello", "1/0", "(100+25)*0/0", "05+3", "100 + 75 - 50 / 25 * 25", "}{"):
        assert grade_countdown(junk, numbers, target) is Grade.WELL_FORMED, junk
    # variant: only an expression with a value earns it
    assert grade_countdown("hello", numbers, target, format_credit="valid") is Grade.INVALID
    assert grade_countdown("1/0", numbers, target, format_credit="valid") is Grade.INVALID
    assert grade_countdown("1+1", numbers, target, format_credit="valid") is Grade.WELL_FORMED
    assert grade_countdown("100+25+(75-50)", numbers, 150, format_credit="valid") is Grade.CORRECT


def _expressions():
    """Arithmetic over the released scorer's characters, with Python's whitespace rules inside."""
    number = st.one_of(
        st.integers(0, 120).map(str),
        st.sampled_from(["0", "00", "05", "5.", ".5", "2.25", "007.", "1..", "()", "..."]),
    )
    space = st.sampled_from(["", "", " ", "\t", "\x0c", "\r", " \r ", "\r\r"])

    def extend(children):
        binary = st.tuples(
            children, space, st.sampled_from(["+", "-", "*", "/", "//", "**", "* *"]), children
        )
        unary = st.tuples(st.sampled_from(["-", "+", "- -"]), space, children)
        return st.one_of(
            binary.map(lambda t: f"{t[0]}{t[1]}{t[2]}{t[1]}{t[3]}"),
            unary.map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
            st.tuples(space, children).map(lambda t: f"({t[0]}{t[1]})"),
        )

    return st.tuples(space, st.recursive(number, extend, max_leaves=6), space).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_expressions())
def test_python_value_is_what_cpython_eval_gives(expression):
    """eval here runs hypothesis-made arithmetic from a fixed alphabet, never model output."""
    try:
        got = python_value(expression)
    except InvalidExpression as error:
        if "integer power" in str(error):
            return  # beyond MAX_INT_BITS eval would be slow (tested above)
        got = None
    try:
        want = eval(expression, {"__builtins__": None}, {})
    except Exception:
        want = None
    if not isinstance(want, int | float | complex):
        want = None
    if isinstance(want, float | complex) and want != want:
        assert got != got, expression
    else:
        assert got == want and type(got) is type(want), (expression, got, want)


def _cpu_ms(function, *args) -> float:
    """Best CPU time of three calls, in ms (a shared machine's descheduling does not count)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        with contextlib.suppress(InvalidExpression):
            function(*args)
        best = min(best, time.process_time() - started)
    return 1e3 * best


HUGE_LITERAL = "9" * 4300  # the most digits int() converts


@pytest.mark.parametrize(
    "expression",
    [
        "*".join([HUGE_LITERAL] * 240),  # 1 MiB: seconds of multiplication for eval
        "*".join(["9" * 1000] * 1000),
        "+".join(["99**9000"] * 400),
        "//".join(["(99**4500*99**4500)"] * 400),  # long divisions of numbers near the bound
        "(99**9000)*(99**9000)*(99**9000)",
    ],
)
def test_python_value_bounds_the_work_on_huge_integers(expression):
    with pytest.raises(InvalidExpression, match="bits of integers in all"):
        python_value(expression)
    assert _cpu_ms(python_value, expression) < 10


def test_the_integer_bounds_never_bind_on_six_numbers_up_to_100():
    """The most a six-number countdown answer can make (two powers near the bound, then their product or
    quotient) is computed exactly as eval computes it (eval runs hand-written arithmetic here)."""
    for expression in (
        "100**(99*98)//97**(96*95)",  # two powers of ~62,000 bits and a long division
        "100**(99*98)*97**(96*95)",
        "1**(2**(64*32*32)*1)",  # a power at the bound, times 1, as a power of 1
        "(100**(99*98)*97)**(6-6)",
    ):
        assert python_value(expression) == eval(expression, {"__builtins__": None}, {}), expression
    assert 2 * MAX_INT_BITS < MAX_TOTAL_INT_BITS


def test_blank_line_runs_are_read_in_one_step():
    """Blank lines inside parentheses are free to eval; a megabyte of them costs no more than a few."""
    text = "(25+50" + "\r" * 1_000_000 + ")"
    assert python_value(text) == 75 == eval("(25+50" + "\r" * 10 + ")")
    assert python_value("(1\r \t\r\x0c\r+2)") == 3 == eval("(1\r \t\r\x0c\r+2)")
    assert _cpu_ms(python_value, text) < 10


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789 +-*/().\r\n١٢٣３𝟗ßx", max_size=40), st.integers(0, 6))
def test_digit_runs_are_the_released_regex_runs(text, most):
    """The fast path (ASCII text: translate and split) and the Unicode path find the runs re's \\d+ finds."""
    runs = re.findall(r"\d+", text)
    assert digit_runs(text, most)[: most + 1] == runs[: most + 1] or len(runs) > most


def test_literals_match_is_linear_on_megabytes():
    numbers = [25, 50, 75, 100, 3, 6]
    for filler in ("\r", "x", "ß"):
        text = "(25+50+75+100+3+6" + filler * 1_000_000 + ")"
        assert literals_match(text, numbers)
        assert _cpu_ms(literals_match, text, numbers) < 10
    assert not literals_match("1+" * 500_000 + "1", [1])
    assert Counter(map(int, digit_runs("١+2+３", 5))) == Counter([1, 2, 3])
    assert sys.get_int_max_str_digits() == 4300
