"""smoke_check (what scripts/gpu_smoke.sh passes or fails on), on logs and models made here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from openrlhf_mt.engines.openrlhf.smoke_check import check_model_moved, check_runs, main

TASKS = ("a", "b")


def step_line(step: int, weight: float, next_weight: float, **overrides: float) -> str:
    status = {"actor_grad_norm": 0.5, "mt/optimizer_steps": 2.0}
    for task, sign in zip(TASKS, (1, -1), strict=True):
        status |= {
            f"mt/{task}/weight": 0.5 + sign * weight,
            f"mt/{task}/next_weight": 0.5 + sign * next_weight,
            f"mt/{task}/batch_share": 0.5,
            f"mt/{task}/accuracy": 0.25,
            f"mt/{task}/zero_gradient_rate": 0.1,
            f"mt/{task}/selected_groups": 4.0,
        }
    return f"INFO ppo_trainer.py:551] ✨ Global step {step}: {status | overrides}\n"


EVAL = (
    "Evaluation completed in 0:00:01, global_step 2, "
    "eval_metrics: {'eval_a_pass1': 0.5, 'eval_b_pass1': 0.25}\n"
)


def logs(**resumed_overrides: float) -> tuple[str, str]:
    first = step_line(1, 0.0, 0.01) + step_line(2, 0.01, 0.02) + EVAL
    resumed = step_line(3, 0.02, 0.03, **resumed_overrides)
    return first, resumed


def test_a_good_run_and_resume_pass_every_check() -> None:
    checks = check_runs(*logs())
    assert [c.name for c in checks if not c.passed] == []
    assert len(checks) == 10


@pytest.mark.parametrize(
    ("overrides", "failing"),
    [
        ({"mt/optimizer_steps": 0.0}, "optimizer steps every step"),
        ({"actor_grad_norm": float("nan")}, "finite non-zero gradient"),
        ({"mt/a/weight": 0.5}, "resumed with the saved task weights"),
    ],
)
def test_each_miss_fails_its_check(overrides: dict, failing: str) -> None:
    checks = check_runs(*logs(**overrides))
    assert [c.name for c in checks if not c.passed] == [failing]


def test_a_resume_that_restarts_from_step_one_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, _ = logs()
    (tmp_path / "first.log").write_text(first)
    (tmp_path / "resumed.log").write_text(step_line(1, 0.0, 0.01))  # started over: no checkpoint found
    assert main(["--log", str(tmp_path / "first.log"), "--log", str(tmp_path / "resumed.log")]) == 1
    out = capsys.readouterr().out
    assert re.search(r"resume continues the step count +FAIL +2 -> 1", out)


def test_policy_parameters_moved_or_not(tmp_path: Path) -> None:
    before, after, same = (tmp_path / name for name in ("before", "after", "same"))
    for directory, delta in ((before, 0.0), (after, 1e-3), (same, 0.0)):
        directory.mkdir()
        save_file({"w": torch.ones(3) + delta}, str(directory / "model.safetensors"))
    assert check_model_moved(before, after).passed
    assert not check_model_moved(before, same).passed
