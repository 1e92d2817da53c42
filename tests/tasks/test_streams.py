"""Per-task prompt streams and the train / held-out split both engines draw prompts from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.streams import PromptStream, split_rows


def test_every_pass_is_a_fresh_permutation_of_all_prompts():
    stream = PromptStream(size=7, seed=0, task_index=1)
    passes = [stream.take(7) for _ in range(3)]
    assert all(sorted(p) == list(range(7)) for p in passes)
    assert passes[0] != passes[1] != passes[2]  # reshuffled between passes
    # tasks (and seeds) get their own orders
    assert PromptStream(7, seed=0, task_index=2).take(7) != passes[0] != PromptStream(7, 1, 1).take(7)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 20),
    takes=st.lists(st.integers(0, 30), min_size=1, max_size=6),
    split=st.integers(0, 6),
)
def test_a_resumed_stream_draws_what_the_uninterrupted_one_would(size, takes, split):
    whole = PromptStream(size, seed=5, task_index=0)
    expected = [whole.take(n) for n in takes]
    first = PromptStream(size, seed=5, task_index=0)
    drawn = [first.take(n) for n in takes[:split]]
    resumed = PromptStream(size, seed=5, task_index=0)
    resumed.load_state_dict(first.state_dict())
    drawn += [resumed.take(n) for n in takes[split:]]
    assert drawn == expected
    assert [len(d) for d in drawn] == takes


def test_an_empty_stream_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one training prompt, got 0"):
        PromptStream(0, seed=0, task_index=0)


def test_held_out_prompts_never_appear_in_training():
    task = get_task("tiny-add")
    train, held_out = split_rows(task, train_size=200, eval_size=30, seed=0)
    assert len(held_out) == 30 and train
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held_out}
    assert split_rows(task, 200, 30, seed=0) == (train, held_out)
