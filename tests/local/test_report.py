"""`openrlhf-mt report`: the tables against hand-made metrics, the figure, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from openrlhf_mt.engines.local.report import main, write_report

TASKS = ["tiny-add", "tiny-arc"]


def make_run(directory: Path, method: str, tasks: list[str] = TASKS, steps: int = 8) -> Path:
    """A run directory as the trainer writes it: config.yaml and metrics.jsonl (evals at 0 and the end)."""
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump({"method": method, "data": {"tasks": tasks}}))
    start, end = dict(zip(tasks, (0.5, 0.1), strict=True)), dict(zip(tasks, (0.75, 0.3), strict=True))
    rows = [{"step": 0, **{f"eval/{t}/accuracy": start[t] for t in tasks}}]
    for step in range(1, steps + 1):
        row = {"step": step, "time/train_s": 1.0, "time/step_s": 2.0, "rollout/rounds": 1 + step % 2}
        for k, task in enumerate(tasks):
            row |= {
                f"weights/{task}": 0.25 + 0.5 * k,  # tiny-add 0.25, tiny-arc 0.75
                f"batch_share/{task}": 0.5,
                f"signal_share/{task}": 0.5,
                f"train/{task}/zero_gradient_rate": 0.2 if step <= steps // 2 else 0.6,
            }
        rows.append(row)
    rows[-1] |= {f"eval/{t}/accuracy": end[t] for t in tasks}
    for row in (rows[0], rows[-1]):
        accuracy = [row[f"eval/{t}/accuracy"] for t in tasks]
        row |= {"eval/worst_accuracy": min(accuracy), "eval/mean_accuracy": sum(accuracy) / len(accuracy)}
    (directory / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return directory


def test_report_tables_and_figure(tmp_path):
    runs = [make_run(tmp_path / "a", "grpo"), make_run(tmp_path / "b", "mt-grpo")]
    md, png = write_report(runs, tmp_path / "out", preamble="Two hand-made runs.")
    text = md.read_text()
    assert text.startswith("# Run report\n\nTwo hand-made runs.")
    # start -> end per task, worst and mean (in %), best worst-task accuracy and its step
    assert (
        "| grpo | 50.0 → **75.0** | 10.0 → **30.0** | 10.0 → **30.0** | 30.0 → **52.5** | 30.0 (step 8) |"
        in text
    )
    # mean weight / batch share / signal share / final weight
    assert "| mt-grpo | 0.25 / 0.50 / 0.50 / 0.25 | 0.75 / 0.50 / 0.50 / 0.75 |" in text
    # zero-gradient rate, first quarter -> last quarter; 1.5 rounds and 2 s per step
    assert "| grpo | 0.20 → 0.60 | 0.20 → 0.60 | 1.50 | 2.00 |" in text
    height, width, _ = matplotlib.image.imread(png).shape
    assert width == 4 * (len(TASKS) + 1) * 110 and height == 10 * 110


def test_two_runs_of_one_method_are_told_apart_by_directory(tmp_path):
    runs = [make_run(tmp_path / "seed0", "mt-grpo"), make_run(tmp_path / "seed1", "mt-grpo")]
    text = write_report(runs, tmp_path / "out")[0].read_text()
    assert "| mt-grpo (seed0) |" in text and "| mt-grpo (seed1) |" in text


def test_bad_run_directories_are_clear_errors(tmp_path, capsys):
    make_run(tmp_path / "a", "grpo")
    make_run(tmp_path / "c", "grpo", tasks=["tiny-add", "tiny-countdown"])
    assert main([str(tmp_path / "a"), str(tmp_path / "missing")], "openrlhf-mt report") == 2
    assert "missing: not a run directory (needs metrics.jsonl and config.yaml)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="tasks \\['tiny-add', 'tiny-countdown'\\] differ"):
        write_report([tmp_path / "a", tmp_path / "c"], tmp_path / "out")
