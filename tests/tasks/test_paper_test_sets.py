"""Every one of the paper's 2,400 test rows: a correct boxed answer scores 1, and the same answer in the
wrong place, unboxed or altered scores as MTGRPO_SPEC.md §5 says."""

import json
import re

import pyarrow.parquet as pq
import pytest

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.countdown_solver import solve_countdown
from openrlhf_mt.tasks.paper import (
    ARC_PAPER_ENDING,
    ASSISTANT_START,
    COUNTDOWN_QUESTION,
    LEVELS,
    PREAMBLE,
    ZEBRA_PAPER_ENDING,
    r1_zero_prompt,
)
from openrlhf_mt.tasks.paper_test import load_paper_test


@pytest.fixture(scope="module")
def rows(paper_test_dir):
    return load_paper_test(paper_test_dir)


def _float_reference(expression: str) -> float:
    """An independent float64 value of our own solver's output (trusted text, never model output)."""
    return eval(expression, {"__builtins__": {}}, {})


def test_loader_reproduces_every_row_of_the_parquet_files(rows, paper_test_dir):
    assert len(rows) == 2400
    originals = []
    for file in sorted(paper_test_dir.glob("*.parquet")):
        originals += pq.read_table(file).to_pylist()
    for row, original in zip(rows, originals, strict=True):
        assert row["prompt"] == original["prompt"][0]["content"]
        assert row["datasource"] == original["data_source"].removesuffix("-test")
        label = json.loads(row["label"])
        truth = original["reward_model"]["ground_truth"]
        assert label["task"] == row["datasource"]
        if row["datasource"].startswith("countdown"):
            assert label["numbers"] == [int(x) for x in truth["numbers"].split(",")]
            assert label["target"] == truth["target"]
        else:
            assert label["target"] == truth["target"]
    per_task = {name: sum(r["datasource"] == name for r in rows) for name in {r["datasource"] for r in rows}}
    assert per_task == {
        f"{family}-{level}": 200 for family in ("countdown", "zebra", "arc") for level in LEVELS
    }


def _altered(task_name: str, label: dict, answer: str) -> str:
    """A wrong answer in the expected format."""
    if task_name.startswith("countdown"):
        return answer + "+1"  # still a valid expression, now off by one and using an extra number
    if task_name.startswith("zebra"):
        return "nobody" if answer.lower() != "nobody" else "somebody"
    cells = answer.split()
    cells[0] = "1" if cells[0] != "1" else "2"
    return " ".join(cells)


def test_correct_answers_score_one_and_misplaced_or_altered_answers_do_not(rows):
    for row in rows:
        task = get_task(row["datasource"])
        label = json.loads(row["label"])
        if task.name.startswith("countdown"):
            answer = solve_countdown(label["numbers"], label["target"])
            assert answer is not None, label
            assert abs(_float_reference(answer) - label["target"]) < 1e-6
            spaced = re.sub(r"([-+*/()])", r" \1 ", answer)  # spaces are allowed between tokens
            variants_correct = [answer, f" {answer} ", spaced]
        else:
            answer = label["target"]
            variants_correct = [answer, f"  {answer.upper()} ", answer.title()]
        cases = [(f"Some reasoning.\nSo the answer is \\boxed{{{v}}}", 1.0, 1.0) for v in variants_correct]
        cases += [
            (f"Some reasoning.\nThe answer: \\boxed{{{answer}}}.", 1.0, 1.0),
            (f"Some reasoning.\nThe answer: \\boxed{{{answer}}}.\n", 0.0, 0.0),  # an empty last line
            (f"\\boxed{{{answer}}}\nI hope this helps.", 0.0, 0.0),  # not on the last line
            (f"Some reasoning.\nThe answer is {answer}", 0.0, 0.0),  # unboxed
            (f"\\boxed{{{_altered(task.name, label, answer)}}}", 0.1, 0.0),  # altered
            (f"\\boxed{{{answer}}} or maybe \\boxed{{{_altered(task.name, label, answer)}}}", 0.1, 0.0),
            (f"\\boxed{{{_altered(task.name, label, answer)}}} no, \\boxed{{{answer}}}", 1.0, 1.0),
            ("\\boxed{}", 0.1, 0.0),  # an empty box still earns the format credit
            (f"\\boxed{{{answer}", 0.0, 0.0),  # unbalanced
        ]
        for response, train, evaluation in cases:
            assert task.score(response, row["label"]) == train, (task.name, response)
            assert task.score(response, row["label"], train=False) == evaluation, (task.name, response)


def test_countdown_spec_rules_on_paper_rows(rows):
    task = get_task("countdown-medium")
    for row in [r for r in rows if r["datasource"] == "countdown-medium"][:20]:
        label = json.loads(row["label"])
        answer = solve_countdown(label["numbers"], label["target"])
        first_literal = re.search(r"\d+", answer)
        decimal = answer[: first_literal.end()] + ".0" + answer[first_literal.end() :]
        for response, expected in [
            (f"\\boxed{{{answer}}}", 1.0),
            (f"\\boxed{{({answer})*1}}", 0.1),  # a number that is not given
            (f"\\boxed{{({answer})*{label['numbers'][0]}}}", 0.1),  # a given number used twice
            (f"\\boxed{{{answer}+0*({answer})}}", 0.1),  # every number used twice, value still right
            (f"\\boxed{{{answer} = {label['target']}}}", 0.1),  # '=' is not allowed: format credit only
            (f"\\boxed{{{decimal}}}", 0.1),  # "7.0" is the digit runs 7 and 0: a number too many
            (f"\\boxed{{{answer}/0}}", 0.1),  # division by zero still earns the format credit
            (f"\\boxed{{{answer}}}\n", 0.0),  # a trailing newline leaves an empty last line
            (f"\\boxed{{{answer}}}\r", 1.0),  # \r is not a line end
        ]:
            assert task.score(response, row["label"]) == expected, response


def test_reference_responses_of_paper_rows_score_one(rows):
    for row in rows[::40]:
        task = get_task(row["datasource"])
        assert task.score(task.reference_response(row["label"]), row["label"]) == 1.0


def test_our_prompt_templates_rebuild_the_papers_prompts(rows):
    for row in rows:
        prompt, label = row["prompt"], json.loads(row["label"])
        assert prompt.startswith(PREAMBLE) and prompt.endswith(ASSISTANT_START)
        if row["datasource"].startswith("countdown"):
            question = COUNTDOWN_QUESTION.format(
                numbers=", ".join(map(str, label["numbers"])), target=label["target"]
            )
            assert prompt == r1_zero_prompt(question)
        elif row["datasource"].startswith("zebra"):
            assert prompt.endswith(ZEBRA_PAPER_ENDING + ASSISTANT_START)
        else:
            assert ARC_PAPER_ENDING + "\n\nInput:\n" in prompt
