"""The demo's findings: each point's numbers and whether the run showed it, from hand-made runs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from openrlhf_mt.engines.local.demo import findings
from openrlhf_mt.engines.local.report import load_run

TASKS = ["tiny-add-easy", "tiny-countdown"]


def make_run(directory: Path, method: str, end: dict[str, float], hard_weight: float, hard_signal: float):
    """Evals at steps 0 and 4 (standard error 1 point each); tiny-countdown is the hardest task."""
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump({"method": method, "data": {"tasks": TASKS}}))
    start = {"tiny-add-easy": 0.40, "tiny-countdown": 0.05}
    rows = []
    for step in range(5):
        row: dict = {"step": step}
        if step:
            row |= {
                "time/train_s": 1.0,
                "time/step_s": 2.0 if method == "grpo" else 3.0,
                "rollout/rounds": 1.5,
            }
            row |= {
                "weights/tiny-countdown": hard_weight, "weights/tiny-add-easy": 1 - hard_weight,
                "batch_share/tiny-countdown": hard_weight, "batch_share/tiny-add-easy": 1 - hard_weight,
                "signal_share/tiny-countdown": hard_signal, "signal_share/tiny-add-easy": 1 - hard_signal,
            }  # fmt: skip
        if step in (0, 4):
            accuracy = start if step == 0 else end
            for task in TASKS:
                row |= {f"eval/{task}/accuracy": accuracy[task], f"eval/{task}/accuracy_se": 0.01}
            row |= {
                "eval/worst_accuracy": min(accuracy.values()), "eval/worst_accuracy_se": 0.01,
                "eval/mean_accuracy": sum(accuracy.values()) / 2, "eval/mean_accuracy_se": 0.01 / 2**0.5,
            }  # fmt: skip
        rows.append(row)
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_run(directory)


def test_findings_say_what_the_runs_show(tmp_path):
    grpo = make_run(tmp_path / "grpo", "grpo", {"tiny-add-easy": 0.60, "tiny-countdown": 0.06}, 1 / 3, 0.1)
    mt = make_run(tmp_path / "mt", "mt-grpo", {"tiny-add-easy": 0.41, "tiny-countdown": 0.15}, 0.6, 0.58)
    text = findings([grpo, mt])
    # change ± 2 standard errors of the change (sqrt(2) points each): +20 shown, +1 not
    assert "grpo: tiny-add-easy +20.0 ± 2.8 (yes); tiny-countdown +1.0 ± 2.8 (not beyond noise)" in text
    assert "mt-grpo: tiny-add-easy +1.0 ± 2.8 (not beyond noise); tiny-countdown +10.0 ± 2.8 (yes)" in text
    assert "final worst-task accuracy 15.0 vs GRPO's 6.0 %: +9.0 ± 2.8 points (yes)" in text
    assert "hardest task (tiny-countdown)" in text
    assert "supplies 10 % of the groups that carry a signal (its weight: 50 %)" in text  # GRPO's 1/K
    assert "supplies 10 % of the groups" in text and "weight averages 60 %, its batch share 60 %" in text
    assert "3.0 s per step against GRPO's 2.0 s" in text

    worse = make_run(tmp_path / "worse", "mt-grpo", {"tiny-add-easy": 0.3, "tiny-countdown": 0.05}, 0.6, 0.05)
    text = findings([grpo, worse])
    assert "tiny-add-easy -10.0 ± 2.8 (no: it fell)" in text
    assert "-1.0 ± 2.8 points (not beyond noise)" in text
    assert "signal share 5 % (no)" in text
