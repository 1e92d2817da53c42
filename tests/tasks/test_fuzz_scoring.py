"""Hostile input: every scorer and extractor (benchmarks/fuzz_inputs.py: all tasks, reward options, rg:,
the countdown evaluator, the OpenRLHF reward function) takes any string without raising, returns a reward
in range and answers every call in bounded time: a few thousand generated inputs here, 100,000+ per scorer
in benchmarks/bench_fuzz.py, whose target is 10 ms a call on a quiet machine (slowest: 6.96 ms).

Timing is the calling thread's CPU time (the process's counts other threads, e.g. spinning OpenMP
workers), best of three tries of a call. The limit here is 25 ms: the slowest inputs take 6.5 ms alone but
10-11 ms of thread time in a loaded CI run (two fresh-clone runs failed a 10 ms limit on them), while the
blow-ups this guards against (a huge power evaluated, a backtracking regex) would take far longer.
"""

import time

import pytest
from hypothesis import HealthCheck, given, settings

from benchmarks.fuzz_inputs import FAMILIES, HOSTILE, MEGABYTE, TRUTHS, scorers
from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.base import encode_label
from openrlhf_mt.tasks.countdown_solver import solve_countdown

CALL_LIMIT_S = 0.025
INPUTS_PER_FAMILY = 400
SCORERS = scorers()


def _best_cpu_time(function, argument):
    best, value = float("inf"), None
    for _ in range(3):
        started = time.thread_time()
        value = function(argument)
        best = min(best, time.thread_time() - started)
        if best < CALL_LIMIT_S:
            break
    return value, best


def _check_everywhere(text: str) -> None:
    for scorer in SCORERS:
        result, seconds = _best_cpu_time(scorer.call, scorer.prepare(text))
        assert scorer.check(result), (scorer.name, text[:60], result)
        assert seconds < CALL_LIMIT_S, f"{scorer.name} took {seconds * 1e3:.1f} ms on {text[:60]!r}..."


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fuzz_generated_inputs(family):
    @settings(max_examples=INPUTS_PER_FAMILY, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(FAMILIES[family])
    def run(text):
        _check_everywhere(text)

    run()


@pytest.mark.parametrize("text", HOSTILE, ids=lambda r: repr(r[:24]) + f"...({len(r)})")
def test_hostile_inputs(text):
    _check_everywhere(text)


def test_the_bounds_do_not_reject_correct_answers_after_megabytes_of_text():
    label = encode_label("zebra-hard", {"target": "alice"})
    assert get_task("zebra-hard").score("x" * MEGABYTE + "\n\\boxed{ Alice }", label) == 1.0
    truth = TRUTHS["countdown"]
    expression = solve_countdown(truth["numbers"], truth["target"])
    label = encode_label("countdown-very_hard", truth)
    assert get_task("countdown-very_hard").score("y" * MEGABYTE + f"\n\\boxed{{{expression}}}", label) == 1.0
    spaced = "(" + "\r" * (MEGABYTE // 2) + expression + ")"  # blank lines inside parentheses: eval allows
    assert get_task("countdown-very_hard").score(f"\\boxed{{{spaced}}}", label) == 1.0
