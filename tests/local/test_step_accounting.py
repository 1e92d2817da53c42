"""Where a step's time goes (PhaseClock) and the eval standard errors, against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from openrlhf_mt.engines.local import trainer
from openrlhf_mt.engines.local.trainer import PhaseClock, mean_standard_error


def test_phases_are_exclusive_so_they_add_up(monkeypatch):
    now = iter([0.0, 1.0, 3.0, 3.5, 4.0, 7.0, 7.25, 9.0, 10.0])
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: next(now))
    clock = PhaseClock()  # 0.0
    with clock.phase("core"):  # enters at 1.0
        with clock.phase("generate"):  # 3.0: core has run 2.0 s
            pass  # 3.5
        with clock.phase("score"):  # 4.0: core + 0.5
            pass  # 7.0
    # core leaves at 7.25: + 0.25
    with clock.phase("train"):  # 9.0: the gap between phases is nobody's
        pass  # 10.0
    assert dict(clock.seconds) == {"core": 2.75, "generate": 0.5, "score": 3.0, "train": 1.0}
    assert sum(clock.seconds.values()) - clock.seconds["train"] == 7.25 - 1.0


def test_standard_error_of_a_mean():
    assert mean_standard_error(np.array([0.0, 1.0, 0.0, 1.0])) == pytest.approx(np.sqrt(1 / 3) / 2)
    assert mean_standard_error(np.array([0.25])) == 0.0
