"""The per-item deadline around reasoning-gym generators (arc_1d can loop forever at large sizes)."""

import signal
import time

import pytest
import reasoning_gym

from openrlhf_mt.tasks import reasoning_gym_utils
from openrlhf_mt.tasks.reasoning_gym_utils import ATTEMPT_STRIDE, MAX_ATTEMPTS, SEED_STRIDE, generate_entries


class _Hanging:
    """A fake dataset: item `hang_index` loops forever for the first `hanging_attempts` seeds."""

    def __init__(self, seed: int, hang_index: int, hanging_attempts: int) -> None:
        self.attempt = (seed % SEED_STRIDE) // ATTEMPT_STRIDE
        self.hang_index, self.hanging_attempts = hang_index, hanging_attempts

    def __getitem__(self, index: int) -> dict:
        if index == self.hang_index and self.attempt < self.hanging_attempts:
            while True:
                time.sleep(0.001)
        return {"index": index, "attempt": self.attempt}


def _fake(monkeypatch, hang_index: int, hanging_attempts: int) -> None:
    monkeypatch.setattr(
        reasoning_gym,
        "create_dataset",
        lambda name, size, seed, **config: _Hanging(seed, hang_index, hanging_attempts),
    )


def test_a_stuck_item_is_retried_with_the_next_attempt(monkeypatch):
    _fake(monkeypatch, hang_index=2, hanging_attempts=1)
    entries = generate_entries("fake", {}, seed=5, start=0, stop=4, item_timeout_s=0.05)
    assert entries == [{"index": i, "attempt": 1 if i == 2 else 0} for i in range(4)]


def test_an_item_stuck_in_every_attempt_is_a_clear_error(monkeypatch):
    _fake(monkeypatch, hang_index=1, hanging_attempts=MAX_ATTEMPTS)
    with pytest.raises(RuntimeError, match=r"item 1 \(seed 0\) took over 0.02 s in each of 4 attempts"):
        generate_entries("fake", {}, seed=0, start=0, stop=3, item_timeout_s=0.02)


def test_an_outer_timer_survives(monkeypatch):
    _fake(monkeypatch, hang_index=0, hanging_attempts=1)
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        generate_entries("fake", {}, seed=0, start=0, stop=2, item_timeout_s=0.05)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 4.0 < remaining < 5.0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_more_items_than_one_seed_holds_are_refused():
    with pytest.raises(ValueError, match="at most"):
        reasoning_gym_utils.generate_entries("arc_1d", {}, seed=0, start=0, stop=ATTEMPT_STRIDE + 1)
