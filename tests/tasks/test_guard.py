"""A reward function that raises or returns NaN/inf never stops a run: the response scores 0, the event is
counted per task and cause and logged once, in both engines' scoring paths (ScoreGuard, reward_func)."""

from collections.abc import Mapping
from typing import Any

import pytest

import openrlhf_mt.tasks.openrlhf_reward as reward_module
from openrlhf_mt.tasks import Grade, Task, get_task, register_task
from openrlhf_mt.tasks.base import encode_label
from openrlhf_mt.tasks.guard import ScoreGuard


class Flaky(Task):
    """Scores by the response: "ok" 1.0, "raise" raises, "nan" / "inf" / "text" return those."""

    truth_keys = ()

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        return [(f"flaky {i}:", {}) for i in range(start, stop)]

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        return Grade.CORRECT

    def score(self, response: str, label: Any, train: bool = True) -> Any:
        values = {"ok": 1.0, "nan": float("nan"), "inf": float("inf"), "text": "high"}
        if response == "raise":
            raise ZeroDivisionError("a plug-in bug")
        return values[response]


@pytest.fixture(scope="module")
def flaky() -> Task:
    register_task("test-flaky", lambda name: Flaky(name, "raises or returns junk on request"))
    return get_task("test-flaky")


def test_a_failing_reward_scores_zero_is_counted_and_logged_once(flaky, caplog):
    guard, label = ScoreGuard(), encode_label("test-flaky", {})
    responses = ["ok", "raise", "nan", "raise", "inf", "text", "ok"]
    with caplog.at_level("WARNING", logger="openrlhf_mt.tasks"):
        rewards = [guard.score(flaky, response, label) for response in responses]
    assert rewards == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert guard.counts == {"reward_raised/test-flaky": 2, "reward_non_finite/test-flaky": 3}
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2  # once per task and cause, with the cause
    assert "raised ZeroDivisionError: a plug-in bug" in messages[0]
    assert "returned nan" in messages[1]
    restored = ScoreGuard()
    restored.load_state_dict(guard.state_dict())
    assert restored.counts == guard.counts


def test_the_library_scorers_are_unchanged_through_the_guard():
    guard = ScoreGuard()
    for name in ("tiny-add", "countdown-easy", "zebra-easy"):
        task = get_task(name)
        for row in task.generate(3, seed=0):
            for response in (task.reference_response(row["label"]), "\\boxed{x}", "", None):
                if response is None:
                    continue
                assert guard.score(task, response, row["label"]) == task.score(response, row["label"])
    assert not guard.counts


def test_the_openrlhf_reward_function_survives_a_failing_reward(flaky, caplog, monkeypatch):
    monkeypatch.setattr(reward_module, "GUARD", ScoreGuard())
    label = encode_label("test-flaky", {})
    with caplog.at_level("WARNING", logger="openrlhf_mt.tasks"):
        for _ in range(3):
            queries = ["P" + response for response in ("ok", "nan", "raise")]
            result = reward_module.reward_func(queries, ["P"] * 3, [label] * 3)
            assert result["rewards"].tolist() == [1.0, 0.0, 0.0]
            assert result["extra_logs"]["reward_failed"].tolist() == [0.0, 1.0, 1.0]
        reward_module.reward_func(["x"], ["x"], ["not json"])
    assert reward_module.GUARD.counts == {
        "reward_non_finite/test-flaky": 3,
        "reward_raised/test-flaky": 3,
        "bad_sample/(unknown)": 1,
    }
    assert len(caplog.records) == 3  # one line per task and cause, not one per sample
