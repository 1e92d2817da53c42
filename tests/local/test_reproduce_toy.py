"""benchmarks/reproduce_toy.py: the statistics and the summaries against hand-computed numbers, the paper's
shape checks, and the results files from hand-made run directories (no training: seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks.reproduce_toy import (
    ROOT,
    TOYS,
    cost_vs_dapo,
    difference,
    interval,
    main,
    paper_shape,
    summarize_run,
    t_quantile,
    toy_of,
)
from openrlhf_mt.config import load_config

TASKS = ["tiny-add", "tiny-arc"]


def rows_of(worst: list[float], steps: int = 4, arc_zero_gradient: float = 0.5) -> list[dict]:
    """Metrics rows: an eval every 2 steps with the given worst-task accuracies (tiny-arc is the worst,
    tiny-add is 0.5 above it); per step 6 generated groups, 4 trained, 3 of them with a signal."""
    rows = []
    for step in range(steps + 1):
        row: dict = {"step": step}
        if step:
            row |= {
                "time/train_s": 1.0, "time/step_s": 2.0, "time/core_s": 0.01, "time/generate_s": 0.5,
                "time/step_cpu_s": 1.5 + step,
                "rollout/rounds": 2, "rollout/generated_groups": 6, "rollout/selected": 4,
                "rollout/signal_groups": 3, "rollout/shortfall": 0, "rollout/ideal_generated": 6.0,
                "rollout/desired/tiny-add": 2, "rollout/desired/tiny-arc": 2,
                "rollout/zero_gradient_rate/tiny-add": 0.0,
                "rollout/zero_gradient_rate/tiny-arc": arc_zero_gradient,
                "train/tiny-add/zero_gradient_rate": 0.0,
                "train/tiny-arc/zero_gradient_rate": arc_zero_gradient,
                "weights/tiny-add": 0.25, "weights/tiny-arc": 0.75,
                "batch_share/tiny-add": 0.5, "batch_share/tiny-arc": 0.5,
                "signal_share/tiny-add": 0.6, "signal_share/tiny-arc": 0.4,
                "weighter/abs_improvement/tiny-add": 0.2, "weighter/abs_improvement/tiny-arc": 0.05,
                "weighter/clip_bound/tiny-add": float(step % 2), "weighter/clip_bound/tiny-arc": 0.0,
                "weighter/lam_reward/tiny-add": 0.1, "weighter/lam_reward/tiny-arc": 0.02,
            }  # fmt: skip
        if step % 2 == 0:
            w = worst[step // 2]
            row |= {
                "eval/tiny-add/accuracy": w + 0.5, "eval/tiny-arc/accuracy": w,
                "eval/worst_accuracy": w, "eval/mean_accuracy": w + 0.25,
            }  # fmt: skip
        rows.append(row)
    return rows


def test_t_interval_by_hand():
    assert t_quantile(4) == 2.776 and t_quantile(1) == 12.706 and t_quantile(200) == 1.96
    assert t_quantile(4.9) == 2.776  # fractional (Welch) degrees of freedom round down: wider, not narrower
    cell = interval([1.0, 2.0, 3.0])
    assert cell["mean"] == 2.0 and cell["n"] == 3
    assert cell["ci95"] == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert interval([0.4, None]) == {"mean": 0.4, "ci95": None, "n": 1}
    assert interval([None]) == {"mean": None, "ci95": None, "n": 0}


def test_welch_difference_by_hand():
    d = difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])  # all spread in a: df = 2
    assert d["diff"] == pytest.approx(2.0)
    assert d["low"] == pytest.approx(2.0 - 4.303 / math.sqrt(3))


def test_t_interval_covers_the_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.3, 0.1, size=(4000, 5))
    covered = [abs(interval(list(row))["mean"] - 0.3) <= interval(list(row))["ci95"] for row in draws]
    assert 0.935 < np.mean(covered) < 0.965


def test_run_summary_by_hand():
    summary = summarize_run(rows_of([0.1, 0.2, 0.3]), TASKS, thresholds=[0.15, 0.5])
    assert summary["final_worst"] == 0.3 and summary["best_worst"] == 0.3 and summary["start_worst"] == 0.1
    assert summary["final_task"] == {"tiny-add": 0.8, "tiny-arc": 0.3}
    assert summary["steps_to"] == {"0.15": 2, "0.5": None}
    assert summary["generated_per_trained"] == 6 / 4 and summary["generated_per_signal_group"] == 2.0
    # ideal per step: 2 / (1 - 0) + 2 / (1 - 0.5) = 6 groups for 4 trained
    assert summary["ideal_per_trained"] == pytest.approx(1.5)
    assert summary["s_per_step"] == 2.0 and summary["core_fraction"] == pytest.approx(0.005)
    assert summary["cpu_s_per_step"] == 3.5  # median of the steps without an eval: 1 and 3
    no_cpu_time = [
        {k: v for k, v in row.items() if k != "time/step_cpu_s"} for row in rows_of([0.1, 0.2, 0.3])
    ]
    assert summarize_run(no_cpu_time, TASKS, thresholds=[0.15])["cpu_s_per_step"] is None  # older runs
    assert summary["weight"]["tiny-arc"] == 0.75 and summary["batch_share"]["tiny-arc"] == 0.5
    assert summary["zero_gradient_rate"]["tiny-arc"] == 0.5
    # the clip bound on tiny-add in steps 1 and 3 of 4
    assert summary["signals"]["clip_bound"] == {"tiny-add": 0.5, "tiny-arc": 0.0}
    assert summary["signals"]["abs_improvement"]["tiny-add"] == pytest.approx(0.2)


def test_paper_shape_holds_only_beyond_the_seed_spread():
    def runs(finals: list[float], mean_offset: float = 0.0) -> list[dict]:
        return [
            summarize_run(rows_of([0.0, f / 2, f]), TASKS, [0.1]) | {"final_mean": f + mean_offset}
            for f in finals
        ]

    per_variant = {
        "grpo": runs([0.10, 0.12, 0.11]),
        "dapo": runs([0.14, 0.15, 0.16]),
        "mt-grpo-lam0.2": runs([0.20, 0.21, 0.22]),
        "mt-grpo-lam1.0": runs([0.05, 0.25, 0.16]),  # as high on average, but spread over the others
    }
    checks = {(c["variant"], c["claim"]): c["holds"] for c in paper_shape(per_variant, [0.1])}
    assert checks["mt-grpo-lam0.2", "final worst-task accuracy above dapo's"]
    assert not checks["mt-grpo-lam1.0", "final worst-task accuracy above dapo's"]
    assert checks["mt-grpo-lam0.2", "mean accuracy within 2 points of the best baseline (dapo)"]
    # 10 % at step 2 (the middle eval is half the final) against DAPO's step 4: 2 <= 0.6 x 4
    assert checks["mt-grpo-lam0.2", "worst task reaches 10 % in <= 0.6x DAPO's steps"]
    per_variant["dapo"] = runs([0.2, 0.2, 0.2])  # now DAPO is there at step 2 as well
    checks = {(c["variant"], c["claim"]): c["holds"] for c in paper_shape(per_variant, [0.1])}
    assert not checks["mt-grpo-lam0.2", "worst task reaches 10 % in <= 0.6x DAPO's steps"]


def test_cost_against_dapo_pairs_seeds_and_compares_accuracy_with_the_released_sampling():
    def runs(s_per_step: list[float], finals: list[float]) -> list[dict]:
        return [
            summarize_run(rows_of([0.0, 0.0, f]), TASKS, [0.1]) | {"seed": seed, "s_per_step": s}
            for seed, (s, f) in enumerate(zip(s_per_step, finals, strict=True))
        ]

    per_variant = {
        "dapo": runs([2.0, 4.0, 3.0], [0.1, 0.1, 0.1]),
        "mt-grpo-lam0.2": runs([4.0, 8.0, 6.0], [0.20, 0.22, 0.24]),  # twice DAPO's time on every seed
        "mt-grpo-adaptive": runs([2.2, 4.4, 3.3], [0.21, 0.23, 0.22]),
        "mt-grpo-lam1.0": runs([2.0, 4.0, 3.0], [0.40, 0.41, 0.42]),
    }
    rows = {row["variant"]: row for row in cost_vs_dapo(per_variant)}
    assert rows["mt-grpo-lam0.2"]["s_per_step_over_dapo"] == {"mean": 2.0, "ci95": 0.0, "n": 3}
    assert rows["mt-grpo-adaptive"]["s_per_step_over_dapo"]["mean"] == pytest.approx(1.1)
    # 6 generated for an ideal of 6 per step (rows_of)
    assert rows["mt-grpo-adaptive"]["generated_over_ideal"]["mean"] == pytest.approx(1.0)
    assert "worst_vs_released" not in rows["mt-grpo-lam0.2"]  # the reference itself
    same = rows["mt-grpo-adaptive"]["worst_vs_released"]
    assert same["low"] <= 0 <= same["high"] and same["diff"] == pytest.approx(0.0)
    assert rows["mt-grpo-lam1.0"]["worst_vs_released"]["low"] > 0  # 20 points above, beyond the spread


def test_results_files_from_finished_runs(tmp_path: Path, capsys):
    out = tmp_path / "runs"
    for name in ("grpo", "mt-grpo-lam0.2"):
        for seed in (0, 1):
            run = out / name / f"seed{seed}"
            run.mkdir(parents=True)
            rows = rows_of([0.1, 0.1 + 0.05 * seed, 0.2 + (0.1 if name != "grpo" else 0.0)])
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"tasks": TASKS}, "train": {"steps": 4}}))
    argv = [
        "--config",
        str(config),
        "--out",
        str(out),
        "--results",
        str(tmp_path / "results"),
        "--seeds",
        "2",
    ]
    assert main([*argv, "--variants", "grpo", "mt-grpo-lam0.2", "--aggregate-only"]) == 0
    results = json.loads((tmp_path / "results" / "reproduce_toy.json").read_text())
    assert results["variants"]["mt-grpo-lam0.2"]["final_worst"]["mean"] == pytest.approx(0.3)
    assert results["variants"]["grpo"]["final_worst"]["ci95"] == 0.0
    text = (tmp_path / "results" / "reproduce_toy.md").read_text()
    # a config without notes in TOYS: its file name in the title, the first toy's thresholds, no tuning record
    assert text.startswith("# The paper's shape at toy scale (config.yaml)\n")
    assert results["thresholds"] == [0.15, 0.20] and "no tuning record for config.yaml" in text
    assert "| mt-grpo-lam0.2 | 30.0 ± 0.0 |" in text
    assert "final worst-task accuracy above grpo's | +10.0 points" in text
    assert "| mt-grpo-lam0.2 | 0.200 / 0.500 / 0.100 | 0.050 / 0.000 / 0.020 |" in text
    for png in ("reproduce_toy_accuracy.png", "reproduce_toy_weights.png"):
        assert (tmp_path / "results" / png).stat().st_size > 10_000
    assert "Incomplete" not in text and "no load record" in text
    # the load log of the training sessions: samples an hour apart
    (out / "load.log").write_text("1000 3.0\n4600 5.0\n2800 4.5\n")
    # a run still going (not at the last step) is left out, and the results say so
    unfinished = out / "grpo" / "seed1" / "metrics.jsonl"
    unfinished.write_text("".join(unfinished.read_text().splitlines(keepends=True)[:3]))
    assert main([*argv, "--variants", "grpo", "mt-grpo-lam0.2", "--aggregate-only"]) == 0
    results = json.loads((tmp_path / "results" / "reproduce_toy.json").read_text())
    assert results["seeds_finished"] == {"grpo": [0], "mt-grpo-lam0.2": [0, 1]}
    assert (
        "**Incomplete**: 2 seeds were asked for, but only these runs finished: grpo: seeds [0]"
        in (tmp_path / "results" / "reproduce_toy.md").read_text()
    )
    # no finished run at all is a clear error naming the directory, not a crash deep inside
    assert main([*argv, "--variants", "dapo", "--aggregate-only"]) == 1
    assert "no finished run of dapo (4 steps)" in capsys.readouterr().err


def test_every_committed_toy_config_loads_and_has_its_notes():
    configs = sorted((ROOT / "benchmarks").glob("reproduce_toy*.yaml"))
    assert [c.name for c in configs] == sorted(TOYS)
    for config in configs:
        cfg = load_config(config)  # what every training run of this toy reads, so it must be valid
        toy = toy_of(config)
        assert toy is TOYS[config.name] and 0 < toy.thresholds[0] < toy.thresholds[1] < 1
        assert f"{cfg.model.warmup_steps} steps" in toy.tuning  # the record names the warm-up it chose
