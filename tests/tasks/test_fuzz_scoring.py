"""Hostile input: the extractor and every scorer never raise and answer every call within 10 ms.

Timing is the best of three tries of a call, so that a busy shared machine does not fail the test; a
scorer that is really slow on some input is slow on all three.
"""

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openrlhf_mt.tasks import get_task, list_tasks
from openrlhf_mt.tasks.base import encode_label
from openrlhf_mt.tasks.countdown_solver import solve_countdown
from openrlhf_mt.tasks.extract import last_boxed_answer

CALL_LIMIT_S = 0.010
TRUTHS = {
    "countdown": {"numbers": [25, 50, 75, 100, 3, 6], "target": 952},
    "zebra": {"target": "alice"},
    "arc": {"target": "0 0 8 8 8 0 0 0 0 0"},
    "tiny-add": {"target": "83"},
    "tiny-countdown": {"numbers": [6, 7, 2], "target": 3},
    "tiny-add-easy": {"target": "41"},
    "tiny-countdown-easy": {"numbers": [12, 5], "target": 17},
    "tiny-arc": {"target": "8880888000"},
}
RG_TASK = "rg:basic_arithmetic?min_terms=2&max_terms=3"


def _truth(name: str) -> dict:
    return TRUTHS.get(name) or TRUTHS[name.split("-")[0]]


SCORERS = [(get_task(name), encode_label(name, _truth(name))) for name in list_tasks()]
SCORERS.append((get_task(RG_TASK), encode_label(RG_TASK, {"answer": "-76", "metadata": {}})))


def _best_time(function, *args):
    best, value = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        value = function(*args)
        best = min(best, time.perf_counter() - started)
        if best < CALL_LIMIT_S:
            break
    return value, best


def _check_everywhere(response: str) -> None:
    _, seconds = _best_time(last_boxed_answer, response)
    assert seconds < CALL_LIMIT_S, f"extractor took {seconds * 1e3:.1f} ms on {response[:60]!r}..."
    for task, label in SCORERS:
        for train, allowed in ((True, {0.0, 0.1, 1.0}), (False, {0.0, 1.0})):
            reward, seconds = _best_time(task.score, response, label, train)
            assert reward in allowed, (task.name, response[:60], reward)
            assert seconds < CALL_LIMIT_S, f"{task.name} took {seconds * 1e3:.1f} ms on {response[:60]!r}..."


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
answer_like = st.text(alphabet="0123456789+-*/() .=^{}\\boxedalicABC \n\t", max_size=120)
fragments = st.sampled_from(["\\boxed{", "}", "{", "\n", "(", ")", "**", "9" * 7, "/0", " ", "alice", "\\"])


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_text)
def test_fuzz_any_unicode_text(text):
    _check_everywhere(text)
    _check_everywhere(f"reasoning...\n\\boxed{{{text}}}")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer_like, answer_like)
def test_fuzz_answer_shaped_text(before, inside):
    _check_everywhere(f"{before}\\boxed{{{inside}}}")
    _check_everywhere(inside)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fragments, max_size=60), st.integers(1, 2000))
def test_fuzz_structured_fragments(parts, repeat):
    _check_everywhere("".join(parts) * (1 + repeat // 200))


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
    "\\boxed{" + "1+" * (MEGABYTE // 2) + "1}",
    "\\boxed{" + "(" * 100_000 + "1" + ")" * 100_000 + "}",
    "\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}",
    "\\boxed{" + "-" * 400 + "1}",
    "\\boxed{9**9**9}",
    "\\boxed{9**9**9**9**9}",
    "\\boxed{__import__('os').getpid()}",
    "\\boxed{" + "9" * 100_000 + "}",
    "\\boxed{" + "*".join(["999999"] * 73) + "}",  # every literal at the limit, 512 characters
    "\\boxed{" + "/".join(["999999"] * 73) + "}",
    "\\boxed{" + "+".join(["1/999983"] * 50) + "}",  # many large denominators
    "\\boxed{" + "((999999*999999)/(999998-999999))*" * 14 + "1}",
    "\\boxed{1/0}",
    "\\boxed{(1-1)/(2-2)}",
    "\\boxed{ＡＬＩＣＥ}",
    "\\boxed{\x00}",
    "\\boxed{\ud800}",  # a lone surrogate
    "\\boxed{" + "ß" * MEGABYTE + "}",  # casefold doubles it
    "\\boxed{" + "İ" * 100_000 + "}",
    "\\boxed{alice}" + " " * MEGABYTE,
    "\\boxed{alice}" + "\n \t" * MEGABYTE,
    "\u202e\\boxed{ecila}",
    "\\boxed{0 0 8 8 8 0 0 0 0 0}" * 10_000,
    "\\boxed{" + "\\boxed{" * 100_000 + "}" * 100_000,
    "x" * (16 * MEGABYTE),
]


@pytest.mark.parametrize("response", HOSTILE, ids=lambda r: repr(r[:24]) + f"...({len(r)})")
def test_hostile_inputs(response):
    _check_everywhere(response)


def test_the_bounds_do_not_reject_correct_answers_after_megabytes_of_text():
    label = encode_label("zebra-hard", {"target": "alice"})
    assert get_task("zebra-hard").score("x" * MEGABYTE + "\n\\boxed{ Alice }", label) == 1.0
    truth = TRUTHS["countdown"]
    expression = solve_countdown(truth["numbers"], truth["target"])
    label = encode_label("countdown-very_hard", truth)
    assert get_task("countdown-very_hard").score("y" * MEGABYTE + f"\n\\boxed{{{expression}}}", label) == 1.0
