"""trim_to_multiple: a short batch cut to a size the ranks can split, keeping the batch's task shares."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.algo.trim import trim_to_multiple
from openrlhf_mt.algo.types import Group


def batch(tasks: str) -> list[Group]:
    """One group per letter, its index as payload so that identity and order can be checked."""
    return [Group(task, (0.0, 1.0), payload=i) for i, task in enumerate(tasks)]


def test_a_batch_that_divides_is_kept_whole() -> None:
    groups = batch("aabbc" * 2)
    kept, dropped = trim_to_multiple(groups, 5)
    assert kept == groups and dropped == []


def test_hand_computed_trim_keeps_each_task_share_and_drops_its_last_groups() -> None:
    # 11 groups, a:6 b:3 c:2, multiple 4 -> keep 8: shares 6/11, 3/11, 2/11 of 8 = 4.36, 2.18, 1.45
    # -> floors 4, 2, 1 (7) and the largest remainder (c, .45) gets the 8th: a 4, b 2, c 2
    groups = batch("aabacabbaca")
    kept, dropped = trim_to_multiple(groups, 4)
    assert Counter(g.task for g in kept) == {"a": 4, "b": 2, "c": 2}
    assert [g.payload for g in kept] == [0, 1, 2, 3, 4, 5, 6, 9]  # each task's first groups, in order
    assert [g.payload for g in dropped] == [7, 8, 10]


def test_fewer_groups_than_the_multiple_leave_an_empty_batch() -> None:
    kept, dropped = trim_to_multiple(batch("abc"), 4)
    assert kept == [] and len(dropped) == 3


def test_a_multiple_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple must be >= 1"):
        trim_to_multiple(batch("ab"), 0)


@settings(max_examples=300, deadline=None)
@given(tasks=st.text(alphabet="abcd", max_size=60), multiple=st.integers(1, 16))
def test_trim_properties(tasks: str, multiple: int) -> None:
    groups = batch(tasks)
    kept, dropped = trim_to_multiple(groups, multiple)
    total = len(groups) // multiple * multiple
    assert len(kept) == total and len(kept) + len(dropped) == len(groups)
    assert sorted(g.payload for g in kept + dropped) == list(range(len(groups)))
    assert [g.payload for g in kept] == sorted(g.payload for g in kept)  # batch order survives
    counts, kept_counts = Counter(tasks), Counter(g.task for g in kept)
    for task, count in counts.items():  # within one group of the task's proportional share
        assert abs(kept_counts[task] - total * count / len(groups)) < 1
