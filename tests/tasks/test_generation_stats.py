"""Generated prompts have the paper's difficulty parameters, wording and lengths (vs its test sets).

Zebra generation is slow (5x5 about 4 prompts/s on a core), so the zebra samples here are small; the
200-per-level comparison is benchmarks/task_statistics.py (results in benchmarks/results/).
"""

import json
import re
import statistics

import pytest

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.countdown_solver import solve_countdown
from openrlhf_mt.tasks.paper import ARC_PAPER_ENDING, ASSISTANT_START, PREAMBLE, ZEBRA_PAPER_ENDING
from openrlhf_mt.tasks.paper_test import load_paper_test

SAMPLES = {"countdown": 200, "arc": 200}
ZEBRA_SAMPLES = {"easy": 40, "medium": 12, "hard": 4, "very_hard": 2}
LEVEL_SIZE = {"easy": 0, "medium": 1, "hard": 2, "very_hard": 3}


@pytest.fixture(scope="module")
def paper_prompts(paper_test_dir_or_none):
    """The paper's prompts per task; without the files, only the length comparison is left out."""
    prompts = {}
    for row in load_paper_test(paper_test_dir_or_none) if paper_test_dir_or_none else []:
        prompts.setdefault(row["datasource"], []).append(row["prompt"])
    return prompts


def _words(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


def _check_lengths_against_paper(paper: dict, name: str, prompts: list[str], tolerance: float) -> None:
    if name not in paper:
        return
    for measure in (len, _words):
        ours = statistics.fmean(map(measure, prompts))
        theirs = statistics.fmean(map(measure, paper[name]))
        assert abs(ours - theirs) <= tolerance * theirs, (name, measure.__name__, ours, theirs)


@pytest.mark.parametrize("level", list(LEVEL_SIZE))
def test_countdown_levels(level, paper_prompts):
    name, count = f"countdown-{level}", 3 + LEVEL_SIZE[level]
    rows = get_task(name).generate(SAMPLES["countdown"], seed=0)
    for row in rows:
        label = json.loads(row["label"])
        assert row["prompt"].startswith(PREAMBLE) and row["prompt"].endswith(ASSISTANT_START)
        shown = re.search(
            r"Using the numbers \[([\d, ]+)\], create an equation that equals (\d+)\.", row["prompt"]
        )
        assert [int(x) for x in shown.group(1).split(", ")] == label["numbers"]
        assert int(shown.group(2)) == label["target"]
        assert len(label["numbers"]) == count
        assert all(1 <= x <= 100 for x in label["numbers"]) and 1 <= label["target"] <= 1000
        assert solve_countdown(label["numbers"], label["target"]) is not None
    _check_lengths_against_paper(paper_prompts, name, [r["prompt"] for r in rows], tolerance=0.02)
    targets = [json.loads(r["label"])["target"] for r in rows]
    assert 0.25 < sum(t < 100 for t in targets) / len(targets) < 0.75  # the paper's sets: 41-52 % below 100


@pytest.mark.parametrize("level", list(LEVEL_SIZE))
def test_zebra_levels(level, paper_prompts):
    name, houses = f"zebra-{level}", 3 + LEVEL_SIZE[level]
    rows = get_task(name).generate(ZEBRA_SAMPLES[level], seed=0)
    for row in rows:
        prompt, target = row["prompt"], json.loads(row["label"])["target"]
        assert f"There are {houses} houses" in prompt
        assert len(re.findall(r"^ - ", prompt, flags=re.MULTILINE)) == houses
        assert prompt.endswith(
            f"What is Name of the person who lives in House 1{ZEBRA_PAPER_ENDING}{ASSISTANT_START}"
        )
        names = re.search(r"Each person has a unique name: (.*)", prompt).group(1).split(", ")
        assert target in names
    _check_lengths_against_paper(paper_prompts, name, [r["prompt"] for r in rows], tolerance=0.15)


@pytest.mark.parametrize("level", list(LEVEL_SIZE))
def test_arc_levels(level, paper_prompts):
    name, length = f"arc-{level}", 10 * (1 + LEVEL_SIZE[level])
    rows = get_task(name).generate(SAMPLES["arc"], seed=0)
    for row in rows:
        prompt, target = row["prompt"], json.loads(row["label"])["target"]
        grids = re.findall(r"(?:Input|Output):\s+([\d ]+)\n", prompt + "\n")
        assert len(grids) == 7  # three train pairs and the test input
        assert {len(grid.split()) for grid in grids} == {length}
        assert len(target.split()) == length and re.fullmatch(r"\d( \d)*", target)
        assert ARC_PAPER_ENDING in prompt
    _check_lengths_against_paper(paper_prompts, name, [r["prompt"] for r in rows], tolerance=0.02)
