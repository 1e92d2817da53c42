"""Hostile model output for every scorer: the scorers, hypothesis strategies that generate their input, and a
fixed list of megabyte-sized cases.

Model output is untrusted. Every scorer and extractor must take any string and return a reward in bounded
time without raising. Shared by tests/tasks/test_fuzz_scoring.py (a few thousand inputs, default suite) and
benchmarks/bench_fuzz.py (at least 100,000 inputs per scorer, hypothesis and atheris).

Scorers (`scorers()`): the answer extractor (both newline modes); every registered task (the paper's 12, the
3 tiny ones), train and eval reward in one call; each paper family with both reward options; the `rg:` tasks
of RG_TASKS; the countdown evaluator on its own (`python_value`, the one piece that computes); and the
OpenRLHF reward function, with the hostile text as the response, and as the whole query, prompt and label.

Input families (`FAMILIES`): any Unicode text (surrogates, NUL and control characters included); the same
inside a ``\\boxed{}`` on the last line; answer-shaped text over digits, operators, braces and their Unicode
look-alikes (Arabic-Indic, full-width and mathematical digits, minus and times signs, odd spaces, zero-width
and bidi controls); random arithmetic over countdown numbers (unary runs, ``**`` towers, ``//``, floats,
huge literals, deep parentheses, junk inserted); fragments repeated up to ~200 KB (unbalanced and deeply
nested braces, ``\\boxed{`` runs); bytes decoded as Latin-1 or with surrogate escapes ("binary-looking");
huge numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from openrlhf_mt.tasks import get_task, list_tasks
from openrlhf_mt.tasks.arithmetic import InvalidExpression, python_value
from openrlhf_mt.tasks.base import encode_label
from openrlhf_mt.tasks.extract import last_boxed_answer
from openrlhf_mt.tasks.openrlhf_reward import reward_func

TRUTHS = {
    "countdown": {"numbers": [25, 50, 75, 100, 3, 6], "target": 952},
    "zebra": {"target": "alice"},
    "arc": {"target": "0 0 8 8 8 0 0 0 0 0"},
    "tiny-add": {"target": "83"},
    "tiny-countdown": {"numbers": [6, 7, 2], "target": 3},
    "tiny-arc": {"target": "8880888000"},
}
REWARD_OPTIONS = "?newline=ignore&format_credit=valid"
# rg: tasks with a label each; their scorers are reasoning-gym's own (text, numbers, lists, logic)
RG_TASKS = {
    "rg:basic_arithmetic?min_terms=2&max_terms=3": {"answer": "-76", "metadata": {}},
}
TRAIN_REWARDS = frozenset({0.0, 0.1, 1.0})
EVAL_REWARDS = frozenset({0.0, 1.0})


def _as_is(text: str) -> str:
    return text


@dataclass(frozen=True)
class Scorer:
    """One target: `call(prepare(text))` must return without raising, and `check(result)` say that the
    result is allowed (a reward in range, say). `prepare` builds the call's input (a query around the text,
    say) and is not part of what is timed."""

    name: str
    call: Callable[[Any], object]
    check: Callable[[object], bool]
    prepare: Callable[[str], Any] = _as_is


def truth_of(task_name: str) -> dict:
    """The fixed truth of the task or its family above; for any other registered task, its first row's."""
    truth = TRUTHS.get(task_name) or TRUTHS.get(task_name.split("-")[0])
    if truth is None:
        task = get_task(task_name)
        truth = task.truth(task.generate(1)[0]["label"])
    return truth


def _task_scorer(name: str, truth: dict) -> Scorer:
    task, label = get_task(name), encode_label(name, truth)

    def both_modes(text: str) -> tuple[float, float]:
        return task.score(text, label, True), task.score(text, label, False)

    return Scorer(name, both_modes, lambda r: r[0] in TRAIN_REWARDS and r[1] in EVAL_REWARDS)


def _countdown_value(text: str) -> object:
    try:
        return python_value(text)
    except InvalidExpression:
        return None


def _is_number_or_none(value: object) -> bool:
    return value is None or isinstance(value, (int, float, complex))


def _reward_func_scorer() -> Scorer:
    """reward_func as OpenRLHF calls it: once with the text as a response after a real prompt and label, once
    with the text as query, prompt and label (a broken dataset row)."""
    row = get_task("countdown-medium").generate(1, seed=0)[0]

    def prepare(text: str) -> tuple[str, str]:
        return row["prompt"] + text + "</s>", text

    def call(query_and_text: tuple[str, str]) -> tuple[float, ...]:
        query, text = query_and_text
        normal = reward_func([query], [row["prompt"]], [row["label"]])
        broken = reward_func([text], [text[:64]], [text])
        return (*normal["rewards"].tolist(), *broken["rewards"].tolist())

    # the rewards come back as float32: 0.1 is 0.10000000149...
    return Scorer("openrlhf reward_func", call, lambda r: {round(x, 6) for x in r} <= TRAIN_REWARDS, prepare)


def scorers() -> list[Scorer]:
    """Every scorer and extractor of the task library, each ready to take one hostile text."""
    out = [
        Scorer("extract (last line)", last_boxed_answer, lambda r: r is None or isinstance(r, str)),
        Scorer(
            "extract (last non-blank line)",
            lambda text: last_boxed_answer(text, ignore_trailing_whitespace=True),
            lambda r: r is None or isinstance(r, str),
        ),
        Scorer("countdown python_value", _countdown_value, _is_number_or_none),
    ]
    out += [_task_scorer(name, truth_of(name)) for name in list_tasks()]
    families = ("countdown", "zebra", "arc")
    out += [_task_scorer(f"{family}-medium{REWARD_OPTIONS}", TRUTHS[family]) for family in families]
    out += [_task_scorer(name, truth) for name, truth in RG_TASKS.items()]
    out.append(_reward_func_scorer())
    return out


# ----------------------------------------------------------------------------------------------------------
# Input families

LOOKALIKES = (
    "٠١٢٣٤٥٦٧٨٩۳०३০３６９０𝟎𝟏𝟑𝟗𝟘①²³¹⁰₁"  # Arabic-Indic, Devanagari, Bengali, full-width, math, super/sub
    "−–—×÷∗⁎∕／＋－（）｛｝⁽⁾"  # minus, dashes, times, division, asterisks, slashes, full-width operators
    "\u00a0\u2009\u3000\u200b\u200d\ufeff\u202e\u2028\u0085\u0301\x0b\x1c"  # spaces, zero-width, bidi
    "ıİßſKÅﬁ"  # case mappings that change length or script
)
ARITHMETIC = "0123456789+-*/(). \t\x0c\r\n"
ANSWER_ALPHABET = ARITHMETIC + "{}\\boxedfalic" + LOOKALIKES + "\x00"
FRAGMENTS = (
    "\\boxed{", "\\boxed", "\\boxed ", "\\fbox{", "{", "}", "{}", "(", ")", "**", "//", "/0", "9" * 7,
    "1e308", ".", "..", "\n", "\r", "\r\n", "\t", "\x00", " ", "alice", "Alice ", "\\", "-", "+", "𝟗", "٣",
    "\ud800", "</s>", "<|im_end|>", "Assistant:", "25", "50", "75", "100", "3", "6", "952",
)  # fmt: skip
OPERATORS = ("+", "-", "*", "/", "//", "**", "%", "")


def _expression(numbers: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Random arithmetic over `numbers`: binary operators, unary runs, parentheses, odd spacing."""
    spacing = st.sampled_from(["", "", " ", "\t", "\x0c", "\r", "\n", "  "])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.builds(
            lambda a, op, b, s1, s2: f"{a}{s1}{op}{s2}{b}",
            inner,
            st.sampled_from(OPERATORS),
            inner,
            spacing,
            spacing,
        )
        unary = st.builds(lambda signs, a: signs + a, st.text("+-", min_size=1, max_size=300), inner)
        parens = st.builds(lambda depth, a: "(" * depth + a + ")" * depth, st.integers(1, 260), inner)
        return st.one_of(binary, unary, parens)

    return st.recursive(numbers, extend, max_leaves=24)


def _numbers() -> st.SearchStrategy[str]:
    countdown = st.sampled_from(["25", "50", "75", "100", "3", "6", "952", "0", "00", "05", "7"])
    floats = st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 10**6), st.integers(0, 10**6))
    huge = st.builds(lambda n, d: d * n, st.integers(1, 6000), st.sampled_from("19"))
    odd = st.sampled_from([".5", "5.", "1e5", "1_000", "0x10", "٣", "３", "𝟗", "½", "²", "inf", "nan"])
    return st.one_of(countdown, countdown, floats, huge, odd)


def _boxed_last_line(prefix: st.SearchStrategy[str], inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    suffix = st.sampled_from(["", "", " ", "\n", ".", "}", " \\boxed", "\r", "\n\n", "</s>"])
    return st.builds(lambda p, i, s: f"{p}\n\\boxed{{{i}}}{s}", prefix, inner, suffix)


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=400)
answer_shaped = st.text(alphabet=ANSWER_ALPHABET, max_size=200)
expressions = _expression(_numbers())
fragments = st.builds(
    lambda parts, repeat: "".join(parts) * repeat,
    st.lists(st.sampled_from(FRAGMENTS), max_size=60),
    st.one_of(st.integers(1, 8), st.integers(1, 4000)),
)
binary_looking = st.one_of(
    st.binary(max_size=2000).map(lambda b: b.decode("latin-1")),
    st.binary(max_size=2000).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
huge_numbers = st.one_of(
    st.builds(lambda n: "9" * n, st.integers(1, 200_000)),
    st.builds(lambda n, e: f"{'9' * n}**{'9' * e}", st.integers(1, 40), st.integers(1, 40)),
    st.builds(lambda n: "**".join(["9"] * n), st.integers(2, 2000)),
    st.builds(lambda n: "1" * n + "." + "1" * n, st.integers(1, 5000)),
)

FAMILIES: dict[str, st.SearchStrategy[str]] = {
    "any Unicode text": any_text,
    "any Unicode text, boxed on the last line": _boxed_last_line(any_text, any_text),
    "answer-shaped text and look-alikes": st.one_of(
        answer_shaped, _boxed_last_line(answer_shaped, answer_shaped)
    ),
    "countdown arithmetic": st.one_of(expressions, _boxed_last_line(st.just("so"), expressions)),
    "repeated fragments (braces, boxes)": fragments,
    "binary-looking bytes": st.one_of(binary_looking, _boxed_last_line(st.just(""), binary_looking)),
    "huge numbers": st.one_of(huge_numbers, _boxed_last_line(st.just(""), huge_numbers)),
}

MEGABYTE = 1 << 20
HOSTILE = [
    "",
    " ",
    "\n" * MEGABYTE,
    "a" * MEGABYTE,
    "\\boxed{" * (MEGABYTE // 7),
    "}" * MEGABYTE,
    "{" * MEGABYTE,
    "\\boxed{" + "{" * MEGABYTE,
    "\\boxed{" + "}" * MEGABYTE,
    "\\boxed{" + "{}" * MEGABYTE + "}",
    "\\boxed{" + "{" * (MEGABYTE // 2) + "}" * (MEGABYTE // 2) + "}",
    "\\boxed{" + "1+" * (MEGABYTE // 2) + "1}",
    "\\boxed{" + "(" * 100_000 + "1" + ")" * 100_000 + "}",
    "\\boxed{" + "(" * 199 + "25+50+75+100+3+6" + ")" * 199 + "}",
    "\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}",
    "\\boxed{" + "-" * 400 + "1}",
    "\\boxed{9**9**9}",
    "\\boxed{9**9**9**9**9}",
    "\\boxed{" + "**".join(["2"] * 2000) + "}",
    "\\boxed{__import__('os').getpid()}",
    "\\boxed{" + "9" * 100_000 + "}",
    "\\boxed{" + "9" * 400 + ".0}",
    "\\boxed{" + "*".join(["999999"] * 73) + "}",  # every literal at the limit, 512 characters
    "\\boxed{" + "/".join(["999999"] * 73) + "}",
    "\\boxed{" + "+".join(["1/999983"] * 50) + "}",  # many large denominators
    "\\boxed{" + "((999999*999999)/(999998-999999))*" * 14 + "1}",
    "\\boxed{" + "+".join(["1.5"] * 2040) + "}",
    "\\boxed{" + "*".join(["9" * 4000] * 20) + "}",
    "\\boxed{" + "*".join(["9" * 4300] * 240) + "}",  # 1 MiB of huge literals multiplied
    "\\boxed{" + "+".join(["99**9000"] * 400) + "}",  # many powers just under the bound
    "\\boxed{" + "//".join(["(99**4500*99**4500)"] * 400) + "}",  # long divisions of huge numbers
    "\\boxed{(25+50+75+100+3+6" + "\r" * (MEGABYTE - 100) + ")}",  # blank lines inside parentheses
    "\\boxed{1/0}",
    "\\boxed{(1-1)/(2-2)}",
    "\\boxed{ＡＬＩＣＥ}",
    "\\boxed{\x00}",
    "\\boxed{\ud800}",  # a lone surrogate
    "\\boxed{٣+٤*٥}",
    "\\boxed{" + "ß" * MEGABYTE + "}",  # casefold doubles it
    "\\boxed{" + "İ" * 100_000 + "}",
    "\\boxed{alice}" + " " * MEGABYTE,
    "\\boxed{alice}" + "\n \t" * MEGABYTE,
    "\u202e\\boxed{ecila}",
    "\\boxed{0 0 8 8 8 0 0 0 0 0}" * 10_000,
    "\\boxed{" + "\\boxed{" * 100_000 + "}" * 100_000,
    bytes(range(256)).decode("latin-1") * 4096,
    "x" * (16 * MEGABYTE),
]
