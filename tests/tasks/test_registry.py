"""Task names: built-ins, rg:<dataset>, module-path and entry-point plug-ins, and clear errors."""

import json
import sys
from importlib import metadata
from pathlib import Path

import pytest

from openrlhf_mt.tasks import ENTRY_POINT_GROUP, Task, TaskDataError, get_task, list_tasks, register_task
from openrlhf_mt.tasks import registry as registry_module
from openrlhf_mt.tasks.reasoning_gym_task import UNSAFE_SCORERS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_list_tasks_has_the_paper_and_tiny_tasks_in_order():
    families = [
        f"{family}-{level}"
        for family in ("countdown", "zebra", "arc")
        for level in ("easy", "medium", "hard")
    ]
    names = list_tasks()
    assert set(families) | {"countdown-very_hard", "tiny-add", "tiny-countdown", "tiny-arc"} <= set(names)
    assert names.index("countdown-easy") < names.index("countdown-very_hard") < names.index("zebra-easy")


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("countdown-medum", "countdown-medium"), ("zebra_hard", "zebra-hard"), ("tiny_add", "tiny-add")],
)
def test_unknown_names_suggest_the_closest(name, suggestion):
    with pytest.raises(TaskDataError, match=f"unknown task '{name}'; did you mean '{suggestion}'"):
        get_task(name)


@pytest.mark.parametrize("name", ["", "   ", None])
def test_empty_names_are_refused(name):
    with pytest.raises(TaskDataError, match="non-empty"):
        get_task(name)


def test_reasoning_gym_task_generates_scores_and_routes():
    task = get_task("rg:basic_arithmetic?min_terms=2&max_terms=3&max_digits=2")
    rows = task.generate(20, seed=0)
    assert rows == task.generate(20, seed=0)
    for row in rows:
        label = json.loads(row["label"])
        assert label["task"] == task.name == row["datasource"]
        assert row["prompt"].endswith(
            "Return the final answer in \\boxed{}.\nAssistant: Let me solve this step by step."
        )
        assert task.score(f"\\boxed{{{label['answer']}}}", row["label"]) == 1.0
        assert task.score(f"\\boxed{{{label['answer']}1}}", row["label"]) == 0.1
        assert task.score(f"\\boxed{{{label['answer']}1}}", row["label"], train=False) == 0.0
        assert task.score(str(label["answer"]), row["label"]) == 0.0
        metadata = label["metadata"]  # the config reached the generator
        assert metadata["num_terms"] in (2, 3) and metadata["num_digits"] <= 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rg:basic_arithmetc", "did you mean rg:basic_arithmetic"),
        ("rg:countdown", "refused.*sympy parse_expr.*countdown-easy"),
        ("rg:n_queens", "eval"),
        ("rg:basic_arithmetic?colour=red", r"unknown config key\(s\) \['colour'\].*allowed: \["),
        ("rg:basic_arithmetic?min_terms=abc", "rejected the config"),
    ],
)
def test_reasoning_gym_errors(name, message):
    with pytest.raises(TaskDataError, match=message):
        get_task(name)


def test_every_refused_dataset_exists_in_reasoning_gym():
    from reasoning_gym.factory import DATASETS

    assert set(UNSAFE_SCORERS) <= set(DATASETS)


def test_module_path_plugin_from_examples(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    task = get_task("custom_task:make_task")
    rows = task.generate(30, seed=1)
    for row in rows:
        assert task.score(task.reference_response(row["label"]), row["label"]) == 1.0
        assert task.score("\\boxed{nope}", row["label"]) == 0.1
        assert task.score("nope", row["label"]) == 0.0
    assert json.loads(rows[0]["label"])["task"] == "custom_task:make_task"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
        ("json:no_such_factory", "has no callable 'no_such_factory'"),
        ("json:dumps", "factory returned str, not a Task"),
    ],
)
def test_module_path_errors(name, message):
    with pytest.raises(TaskDataError, match=message):
        get_task(name)


def test_register_task_and_entry_points(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import custom_task

    register_task("reverse-word-registered", custom_task.make_task)
    try:
        assert isinstance(get_task("reverse-word-registered"), Task)
        assert "reverse-word-registered" in list_tasks()
    finally:
        registry_module._FACTORIES.pop("reverse-word-registered")
        get_task.cache_clear()

    entry = metadata.EntryPoint(name="reverse-word", value="custom_task:make_task", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry_module, "_entry_points", lambda: {"reverse-word": entry})
    get_task.cache_clear()
    try:
        assert "reverse-word" in list_tasks()
        task = get_task("reverse-word")
        assert (
            task.name == "reverse-word"
            and json.loads(task.generate(1, 0)[0]["label"])["task"] == "reverse-word"
        )
    finally:
        get_task.cache_clear()
        sys.modules.pop("custom_task", None)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("not json", "label is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"target": "x"}', "no string field 'task'"),
        ('{"task": "countdown-easy", "numbers": [1, 2]}', r"lacks ground truth field\(s\) \['target'\]"),
    ],
)
def test_bad_labels_are_clear_errors(label, message):
    with pytest.raises(TaskDataError, match=message):
        get_task("countdown-easy").score("\\boxed{1+2}", label)


def test_a_broken_entry_point_is_a_clear_error(monkeypatch):
    entry = metadata.EntryPoint(name="broken", value="no_such_module_xyz:make", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry_module, "_entry_points", lambda: {"broken": entry})
    get_task.cache_clear()
    try:
        with pytest.raises(TaskDataError, match=r"entry point 'no_such_module_xyz:make'.*failed to load"):
            get_task("broken")
    finally:
        get_task.cache_clear()
