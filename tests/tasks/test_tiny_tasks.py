"""The compact tasks for the tiny character-level model: formats, rewards, reproducibility, speed."""

import json
import re
import time

import pytest

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.arithmetic import python_value
from openrlhf_mt.tasks.countdown_solver import solve_countdown

TINY = ("tiny-add", "tiny-countdown", "tiny-arc")


def test_tiny_add_format_and_truth():
    rows = get_task("tiny-add").generate(300, seed=0)
    for row in rows:
        a, b = map(int, re.fullmatch(r"add (\d\d)\+(\d\d)=", row["prompt"]).groups())
        assert json.loads(row["label"]) == {"task": "tiny-add", "target": str(a + b)}
        assert row["datasource"] == "tiny-add"


def test_tiny_countdown_format_and_reachable_target():
    rows = get_task("tiny-countdown").generate(300, seed=0)
    for row in rows:
        *numbers, target = map(
            int, re.fullmatch(r"cd ([1-9]),([1-9]),([1-9])>(\d+):", row["prompt"]).groups()
        )
        assert json.loads(row["label"]) == {"task": "tiny-countdown", "numbers": numbers, "target": target}
        assert 1 <= target <= 50
        expression = solve_countdown(numbers, target)
        assert expression is not None and python_value(expression) == target
    assert len({json.loads(row["label"])["target"] for row in rows}) > 30  # targets spread over 1-50


def test_tiny_countdown_prompts_are_those_of_earlier_versions():
    """Reachable targets are computed for any count of numbers now; the 3-number prompts did not move."""
    prompts = [row["prompt"] for row in get_task("tiny-countdown").generate(2000, seed=0)]
    assert prompts[::400] == ["cd 6,6,6>7:", "cd 3,5,4>6:", "cd 5,4,9>31:", "cd 7,6,3>5:", "cd 4,1,4>15:"]


def test_easy_variants_format_and_truth():
    for row in get_task("tiny-add-easy").generate(300, seed=0):
        a, b = map(int, re.fullmatch(r"add (\d\d)\+(\d)=", row["prompt"]).groups())
        assert json.loads(row["label"])["target"] == str(a + b)
    rows = get_task("tiny-countdown-easy").generate(300, seed=0)
    for row in rows:
        *numbers, target = map(int, re.fullmatch(r"cd (\d+),(\d+)>(\d+):", row["prompt"]).groups())
        assert all(1 <= x <= 20 for x in numbers) and 1 <= target <= 50
        assert python_value(solve_countdown(numbers, target)) == target
    assert len({row["prompt"] for row in rows}) > 250  # enough distinct prompts for a held-out split


def test_tiny_arc_format():
    rows = get_task("tiny-arc").generate(200, seed=0)
    for row in rows:
        match = re.fullmatch(r"arc (\d{10})>(\d{10});(\d{10})>(\d{10});(\d{10})>", row["prompt"])
        assert match, row["prompt"]
        assert re.fullmatch(r"\d{10}", json.loads(row["label"])["target"])
    assert len({row["prompt"] for row in rows}) == len(rows)


@pytest.mark.parametrize(
    ("task", "label", "correct", "well_formed", "invalid"),
    [
        (
            "tiny-add",
            {"target": "83"},
            ["83", " 83\n"],
            ["84", "7", "183"],
            ["", "8 3", "83.0", "1000", "eighty"],
        ),
        (
            "tiny-countdown",
            {"numbers": [6, 7, 2], "target": 3},
            ["2+7-6", " (7-6)+2", "7-(6-2)", "2-6+7"],
            ["6+7+2", "6*7", "2+7-6+0", "3", "2 + 7 + 6", "2**7", "2.0+7-6"],
            ["", "2+7-6=3", "6/(7-7)", "2+", "(2+7-6", "x"],
        ),
        (
            "tiny-arc",
            {"target": "8880888000"},
            ["8880888000", "8880888000\n"],
            ["8880088000", "0000000000"],
            ["888088800", "88808880000", "888 888 00", "", "8880888OOO"],
        ),
    ],
)
def test_tiny_rewards(task, label, correct, well_formed, invalid):
    scorer = get_task(task)
    label = json.dumps({"task": task, **label})
    for response, train, evaluation in [
        *((r, 1.0, 1.0) for r in correct),
        *((r, 0.1, 0.0) for r in well_formed),
        *((r, 0.0, 0.0) for r in invalid),
    ]:
        assert scorer.score(response, label) == train, (task, response)
        assert scorer.score(response, label, train=False) == evaluation, (task, response)


@pytest.mark.parametrize("task", TINY)
def test_tiny_reference_responses_score_one(task):
    scorer = get_task(task)
    for row in scorer.generate(200, seed=3):
        assert scorer.score(scorer.reference_response(row["label"]), row["label"]) == 1.0


@pytest.mark.parametrize("task", TINY)
def test_tiny_generation_is_seeded_prefix_stable_and_fast(task):
    scorer = get_task(task)
    started = time.perf_counter()
    rows = scorer.generate(2000, seed=7)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"{task}: 2000 prompts took {elapsed:.1f} s"
    assert scorer.generate(50, seed=7) == rows[:50]
    assert scorer.generate_range(7, 1500, 1510) == rows[1500:1510]
    other = scorer.generate(50, seed=8)
    assert sum(a["prompt"] == b["prompt"] for a, b in zip(other, rows[:50], strict=True)) < 10
