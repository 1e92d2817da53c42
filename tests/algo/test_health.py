"""ZeroGradientStreaks: consecutive steps in which a task's every group was zero-gradient, by hand."""

import pytest

from openrlhf_mt.algo.health import ZeroGradientStreaks


def test_streaks_by_hand():
    streaks = ZeroGradientStreaks(["a", "b", "c"], warn_after=2)
    assert streaks.observe({"a": 1.0, "b": 0.5}) == []
    assert streaks.observe({"a": 1.0, "b": 1.0}) == ["a"]  # a reaches 2: reported once
    assert streaks.observe({"a": 1.0, "b": 1.0}) == ["b"]  # a at 3 is not reported again
    assert streaks.observe({"b": 0.0, "c": 1.0}) == []  # a drew no prompt: its streak stands
    assert streaks.values() == {"a": 3, "b": 0, "c": 1}
    assert streaks.observe({"a": 0.9}) == [] and streaks.values()["a"] == 0
    restored = ZeroGradientStreaks(["a", "b", "c"], warn_after=2)
    restored.load_state_dict(streaks.state_dict())
    assert restored.values() == streaks.values()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown task 'd'"):
        ZeroGradientStreaks(["a"]).observe({"d": 1.0})
    with pytest.raises(ValueError, match="warn_after must be >= 1"):
        ZeroGradientStreaks(["a"], warn_after=0)
    with pytest.raises(ValueError, match="state_dict is for tasks"):
        ZeroGradientStreaks(["a"]).load_state_dict(ZeroGradientStreaks(["b"]).state_dict())
