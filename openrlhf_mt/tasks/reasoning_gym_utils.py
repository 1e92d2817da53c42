"""Seeded, time-guarded item generation with reasoning-gym (TASKS_AND_TINY_MODEL.md has the hazards).

reasoning-gym makes item ``i`` of a dataset with seed ``s`` from ``Random(s + i)``, so seeds 0 and 1 would
share all but one item. Our item ``i`` of seed ``s`` is reasoning-gym's item ``i`` of seed
``s * SEED_STRIDE + attempt * ATTEMPT_STRIDE``: different seeds never share a generator seed. An item
that runs past its deadline (arc_1d's ``recolor_blocks_from_palette`` can loop forever) is retried
with the next attempt, so every item stays a function of (seed, i) alone, whichever worker makes it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any

MAX_ATTEMPTS = 4
ATTEMPT_STRIDE = 1 << 18  # items per seed
SEED_STRIDE = MAX_ATTEMPTS * ATTEMPT_STRIDE
#: arc_1d items take well under a millisecond unless a sub-rule loops forever.
ARC_ITEM_TIMEOUT_S = 2.0


class GenerationTimeout(Exception):
    pass


def reasoning_gym_version() -> str:
    """The installed distribution's version (``reasoning_gym.__version__`` says 0.1.19 on 0.1.25)."""
    try:
        return metadata.version("reasoning-gym")
    except metadata.PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def _alarm_available() -> Iterator[bool]:
    """Install a SIGALRM handler for per-item deadlines where possible (POSIX main thread); restore any
    timer that was running (pytest-timeout uses one) afterwards."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield False
        return

    def _raise_timeout(signum: int, frame: Any) -> None:
        raise GenerationTimeout

    previous_handler = signal.signal(signal.SIGALRM, _raise_timeout)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, 0)
    started = time.monotonic()
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:
            remaining = max(previous_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, remaining, previous_interval)


def generate_entries(
    dataset: str,
    config: dict[str, Any],
    seed: int,
    start: int,
    stop: int,
    item_timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    """reasoning-gym entries ``{"question", "answer", "metadata"}`` number `start` to `stop - 1`; with
    `item_timeout_s` (and SIGALRM, i.e. POSIX main thread), a slower attempt is abandoned and retried."""
    import reasoning_gym

    if stop > ATTEMPT_STRIDE:
        raise ValueError(
            f"reasoning-gym {dataset!r}: at most {ATTEMPT_STRIDE} items per seed, asked for {stop}"
        )
    attempts: dict[int, Any] = {}  # made when first needed: some datasets load files when created

    def attempt_dataset(attempt: int) -> Any:
        if attempt not in attempts:
            attempt_seed = seed * SEED_STRIDE + attempt * ATTEMPT_STRIDE
            attempts[attempt] = reasoning_gym.create_dataset(dataset, size=stop, seed=attempt_seed, **config)
        return attempts[attempt]

    entries: list[dict[str, Any]] = []
    with _alarm_available() if item_timeout_s else contextlib.nullcontext(False) as alarm:
        guarded = alarm and item_timeout_s is not None
        for index in range(start, stop):
            for attempt in range(MAX_ATTEMPTS if guarded else 1):
                try:
                    data = attempt_dataset(attempt)
                    if guarded:
                        signal.setitimer(signal.ITIMER_REAL, item_timeout_s)
                    entries.append(data[index])
                    break
                except GenerationTimeout:
                    continue
                finally:
                    if guarded:
                        signal.setitimer(signal.ITIMER_REAL, 0)
            else:
                raise RuntimeError(
                    f"reasoning-gym {dataset!r} {config}: item {index} (seed {seed}) took over "
                    f"{item_timeout_s} s in each of {MAX_ATTEMPTS} attempts; the generator looks stuck here"
                )
    return entries
