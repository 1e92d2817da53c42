"""Differential test: our paper-task scorers against an independent reference of the released scorers
(benchmarks/reward_parity.py; the benchmark runs the same comparison at 100,000+ responses per family)."""

import random
import re

import pytest

from benchmarks.reward_parity import (
    FAMILIES,
    OutsideCoverage,
    compare,
    eval_without_eval,
    generated_rows,
    iter_rows,
    make_response,
    released_answer,
    released_score,
)
from openrlhf_mt.tasks import TaskDataError, get_task, load_paper_test
from openrlhf_mt.tasks.base import encode_label
from openrlhf_mt.tasks.paper import r1_zero_prompt


def _check(results):
    for family, result in results.items():
        assert result.responses > 0.99 * (result.responses + result.outside_coverage)
        assert result.disagreements["default"] == 0, (family, result.examples.get("default"))
        assert result.disagreements["reward_func"] == 0, (family, result.examples.get("reward_func"))
        # the comparison can fail: each variant departs from the released semantics somewhere
        assert result.disagreements["newline=ignore"] > 0
        assert result.disagreements["format_credit=valid"] > 0
        assert {0, 0.1, 1.0} <= set(result.rewards), (family, result.rewards)


def test_default_scorers_agree_with_the_released_reference_on_generated_rows():
    rows = list(iter_rows(None, generated_per_family=300, seed=0))
    _check(compare(rows, responses_per_family=3000, seed=1, through_reward_func_every=7))


def test_default_scorers_agree_with_the_released_reference_on_the_paper_rows(paper_test_dir):
    rows = list(iter_rows(load_paper_test(paper_test_dir)[::3], generated_per_family=0, seed=0))
    _check(compare(rows, responses_per_family=2000, seed=2, through_reward_func_every=7))


def test_the_reference_evaluates_as_cpython_eval_does():
    """The reference's eval stand-in against eval itself, on generated box contents (never model output)."""
    rng = random.Random(3)
    rows = generated_rows("countdown", 100, rng)
    checked = 0
    for i in range(6000):
        answer = released_answer("Assistant: " + make_response(rows[i % len(rows)], rng))
        if answer is None or len(answer) > 200 or not re.match(r"^[\d+\-*/().\s]+$", answer):
            continue  # the released scorer calls eval only on these characters
        try:
            got = repr(eval_without_eval(answer))
        except OutsideCoverage:
            continue  # a huge power: eval would run for a long time
        except Exception as error:
            got = type(error).__name__
        try:
            want = repr(eval(answer, {"__builtins__": None}, {}))
        except Exception as error:
            want = type(error).__name__
        assert got == want, (answer, want, got)
        checked += 1
    assert checked > 1500


def test_released_reference_hand_cases():
    prompt = r1_zero_prompt("Using the numbers [1, 2, 3], create an equation that equals 6.")
    truth = {"numbers": [1, 2, 3], "target": 6}
    cases = [
        ("\\boxed{1+2+3}", 1.0),
        ("\\boxed{1+2+3}\n", 0),
        ("\\boxed{}", 0.1),
        ("\\boxed{1/0+2+3}", 0.1),
        ("\\boxed{x}", 0.1),
        ("1+2+3", 0),
        ("\\boxed{6}", 0.1),
        ("\\fbox{1+2+3}", 0),
    ]
    for response, want in cases:
        assert released_score("countdown", prompt + response, truth) == want, response
    assert released_score("countdown", "no marker \\boxed{1+2+3}", truth) == 0  # no "Assistant:"


@pytest.mark.parametrize("family", FAMILIES)
def test_reward_variants_can_be_named_per_task(family):
    name = f"{family}-easy"
    truth = {"numbers": [1, 2, 3], "target": 6} if family == "countdown" else {"target": "Alice"}
    answer = "1+2+3" if family == "countdown" else "alice"
    for suffix, trailing_newline, empty_box in [
        ("", 0.0, 0.1),
        ("?newline=ignore", 1.0, 0.1),
        ("?format_credit=valid", 0.0, 0.0),
        ("?newline=ignore&format_credit=valid", 1.0, 0.0),
    ]:
        task = get_task(name + suffix)
        label = encode_label(task.name, truth)
        assert task.score(f"\\boxed{{{answer}}}\n", label) == trailing_newline, suffix
        assert task.score("\\boxed{}", label) == empty_box, suffix


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("zebra-easy?newline=maybe", "reward option newline='maybe'; allowed: released, ignore"),
        ("zebra-easy?color=red", "unknown reward option 'color'"),
        ("zebra-easy?newline", "must look like '?key=value"),
        ("tiny-add?newline=ignore", "'tiny-add' takes no reward options"),
    ],
)
def test_bad_reward_options_name_the_task(name, message):
    with pytest.raises(TaskDataError, match=message.replace("?", r"\?").replace("(", r"\(")):
        get_task(name)


def test_exact_match_lowers_as_the_released_code_does():
    task = get_task("zebra-easy")
    label = encode_label("zebra-easy", {"target": "Straße"})
    assert task.score("\\boxed{STRASSE}", label) == 0.1  # casefold() would call these equal; lower() does not
    assert task.score("\\boxed{ straße }", label) == 1.0
