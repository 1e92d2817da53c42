"""What the local trainer survives, and how it says so (docs/reliability.md has the whole list).

    faults = FaultLog()
    faults.count("nonfinite_minibatches")          # cumulative counters, logged every step as faults/<name>
    faults.warn_once("nonfinite", "loss is nan")   # the first of each key goes to the log, with its cause
    faults.metrics() -> {"faults/nonfinite_minibatches": 1, ...}; state_dict() / load_state_dict()

    with StopSignals() as stop:                    # SIGTERM / SIGINT (SLURM's warning before a time limit)
        while ...:
            if stop.requested: ...                 # "SIGTERM": finish the step, checkpoint, stop cleanly

The log is the `openrlhf_mt.local` logger (printed on stderr when nothing else is configured).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Mapping
from types import FrameType
from typing import Any

logger = logging.getLogger("openrlhf_mt.local")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class FaultLog:
    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log
        self.counts: Counter[str] = Counter()
        self.warned: set[str] = set()

    def count(self, name: str, increment: int = 1) -> None:
        self.counts[name] += increment

    def warn_once(self, key: str, message: str) -> None:
        """Log `message` the first time `key` is seen in this process."""
        if key not in self.warned:
            self.warned.add(key)
            self.log.warning("%s", message)

    def metrics(self) -> dict[str, int]:
        return {f"faults/{name}": count for name, count in sorted(self.counts.items()) if count}

    def state_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.counts = Counter({name: int(count) for name, count in state.items()})


class StopSignals:
    """While active, SIGTERM and SIGINT ask the run to stop at the next step boundary: `requested` holds the
    first signal's name. A second signal stops at once: the step in progress is abandoned (the checkpoints
    on disk stay complete) and the process exits with status 128 + the signal number. Outside the main
    thread (where Python cannot handle signals) nothing is installed."""

    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log
        self.requested: str | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self.handle) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            self.log.warning("second %s: stopping now; the step in progress is abandoned", name)
            raise SystemExit(128 + signum)
        self.requested = name
        self.log.warning(
            "%s: finishing the current step, then writing a checkpoint and stopping (send it again to stop "
            "at once, without a checkpoint of this step)",
            name,
        )
