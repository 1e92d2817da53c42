"""`openrlhf-mt report RUN_DIR [RUN_DIR ...]`: compare runs in report.md and report.png.

report.md: per run, per-task eval accuracy at the start and at the end, worst-task and mean accuracy,
the best worst-task accuracy and its step; task weights, batch and signal shares; the zero-gradient
rates (early and late in training); time per step. report.png: per-task and worst-task eval accuracy
over steps (a line per run); task weights with signal shares, and zero-gradient rates (a panel per run).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from openrlhf_mt.engines.local.logger import read_metrics


@dataclass
class Run:
    label: str
    path: Path
    tasks: list[str]
    rows: list[dict[str, Any]]

    @property
    def evals(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if "eval/worst_accuracy" in row]

    @property
    def train_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["step"] > 0 and "time/train_s" in row]

    def series(
        self, key: str, rows: list[dict[str, Any]] | None = None, smooth: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of `key`; smooth > 1: a trailing mean over that many points."""
        rows = [row for row in (self.train_rows if rows is None else rows) if key in row]
        values = np.array([row[key] for row in rows], dtype=float)
        if smooth > 1 and len(values):
            cumulative = np.cumsum(np.insert(values, 0, 0.0))
            starts = np.maximum(np.arange(1, len(values) + 1) - smooth, 0)
            values = (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(values) + 1) - starts)
        return np.array([row["step"] for row in rows]), values

    def mean_of(self, key: str, rows: list[dict[str, Any]]) -> float:
        values = [row[key] for row in rows if key in row]
        return float(np.mean(values)) if values else float("nan")


def load_run(path: str | Path) -> Run:
    path = Path(path)
    metrics, config = path / "metrics.jsonl", path / "config.yaml"
    if not metrics.is_file() or not config.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (needs metrics.jsonl and config.yaml)")
    cfg = yaml.safe_load(config.read_text())
    return Run(label=cfg["method"], path=path, tasks=list(cfg["data"]["tasks"]), rows=read_metrics(metrics))


def _num(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.2f}"


def _pct(value: float) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.1f}"


def _pct_se(row: dict[str, Any], key: str) -> str:
    """row[key] in %, with ± its standard error (row[key + '_se']) when the row has one."""
    se = row.get(f"{key}_se")
    return _pct(row[key]) + ("" if se is None else f" ± {100 * se:.1f}")


def markdown(runs: list[Run], preamble: str = "") -> str:
    tasks = runs[0].tasks
    lines = ["# Run report", ""]
    if preamble:
        lines += [preamble, ""]
    lines += [f"Runs: {', '.join(f'`{r.label}` ({r.path})' for r in runs)}. Accuracy in %.", ""]

    lines += [
        "## Eval accuracy (mean@k on held-out prompts): start → end",
        "",
        "± one standard error over the held-out prompts (where the run logged it): a difference between "
        "two cells is beyond noise when it exceeds about twice their standard errors combined.",
        "",
    ]
    header = ["method", *tasks, "worst task", "mean", "best worst-task (step)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        if not run.evals:
            lines.append(f"| {run.label} | " + " | ".join("–" for _ in header[1:]) + " |")
            continue
        first, last = run.evals[0], run.evals[-1]
        best = max(run.evals, key=lambda row: row["eval/worst_accuracy"])
        keys = [*(f"eval/{t}/accuracy" for t in tasks), "eval/worst_accuracy", "eval/mean_accuracy"]
        cells = [f"{_pct_se(first, key)} → **{_pct_se(last, key)}**" for key in keys]
        cells.append(f"{_pct(best['eval/worst_accuracy'])} (step {best['step']})")
        lines.append(f"| {run.label} | " + " | ".join(cells) + " |")
    lines.append("")

    lines += [
        "## Task weights, batch shares, and signal shares (mean over all steps; final weight)",
        "",
        "Signal share: of the training batch's groups with both right and wrong rollouts (the ones that "
        "push towards right answers), the task's fraction.",
        "",
    ]
    header = ["method", *(f"{t}: weight / batch / signal / final weight" for t in tasks)]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        rows = run.train_rows
        cells = [
            " / ".join(
                _num(run.mean_of(f"{key}/{t}", rows)) for key in ("weights", "batch_share", "signal_share")
            )
            + f" / {rows[-1][f'weights/{t}']:.2f}"
            if rows
            else "–"
            for t in tasks
        ]
        lines.append(f"| {run.label} | " + " | ".join(cells) + " |")
    lines.append("")

    lines += [
        "## Zero-gradient rate of generated groups (all rollouts right, or all wrong): first → last quarter",
        "",
    ]
    header = ["method", *tasks, "generation rounds / step", "s / step"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        rows = run.train_rows
        quarter = max(1, len(rows) // 4)
        cells = [
            f"{_num(run.mean_of(f'train/{t}/zero_gradient_rate', rows[:quarter]))} → "
            f"{_num(run.mean_of(f'train/{t}/zero_gradient_rate', rows[-quarter:]))}"
            for t in tasks
        ]
        cells += [_num(run.mean_of("rollout/rounds", rows)), _num(run.mean_of("time/step_s", rows))]
        lines.append(f"| {run.label} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = runs[0].tasks
    columns = max(len(tasks) + 1, len(runs))
    # one row of panels per figure part, each as wide as it needs: no blank panels
    fig = plt.figure(figsize=(4 * columns, 10), layout="constrained")
    accuracy_part, *run_parts = fig.subfigures(3, 1)
    accuracy_axes = accuracy_part.subplots(1, len(tasks) + 1, squeeze=False)[0]
    for ax, key, title in [
        *((accuracy_axes[i], f"eval/{t}/accuracy", f"eval accuracy: {t}") for i, t in enumerate(tasks)),
        (accuracy_axes[-1], "eval/worst_accuracy", "eval accuracy: worst task"),
    ]:
        for run in runs:
            ax.plot(*run.series(key, run.evals), marker="o", markersize=3, label=run.label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    smooth = max(1, max(len(run.train_rows) for run in runs) // 15)
    for row, (part, (prefix, name)) in enumerate(
        zip(
            run_parts,
            [
                ("weights/{}", "weights, signal shares (dotted)"),
                ("train/{}/zero_gradient_rate", "zero-gradient rate"),
            ],
            strict=True,
        ),
        start=1,
    ):
        for run, ax in zip(runs, part.subplots(1, len(runs), squeeze=False)[0], strict=True):
            for color, task in enumerate(tasks):
                ax.plot(
                    *run.series(prefix.format(task), smooth=smooth if row == 2 else 1),
                    color=f"C{color}",
                    label=task,
                )
                if row == 1:  # beside each weight, the task's share of the groups that carry a signal
                    shares = run.series(f"signal_share/{task}", smooth=smooth)
                    ax.plot(*shares, color=f"C{color}", linestyle=":", alpha=0.8)
            ax.set_title(
                f"{name}: {run.label}" + (f" ({smooth}-step mean)" if smooth > 1 and row == 2 else "")
            )
            ax.set_xlabel("step")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(run_dirs: list[str | Path], out: str | Path, preamble: str = "") -> tuple[Path, Path]:
    """Write OUT/report.md (starting with `preamble`) and OUT/report.png for the runs; returns their paths."""
    runs = [load_run(d) for d in run_dirs]
    tasks = runs[0].tasks
    for run in runs[1:]:
        if run.tasks != tasks:
            raise ValueError(f"{run.path}: tasks {run.tasks} differ from {runs[0].path}'s {tasks}")
    labels = [r.label for r in runs]
    for run in runs:  # two runs of one method: tell them apart by directory
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.path.name})"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, png = out / "report.md", out / "report.png"
    md.write_text(markdown(runs, preamble) + f"\n![accuracy, weights and zero-gradient rates]({png.name})\n")
    plot(runs, png)
    return md, png


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (with metrics.jsonl and config.yaml)")
    parser.add_argument("--out", help="where report.md and report.png go (default: the first run's parent)")
    args = parser.parse_args(argv)
    try:
        md, png = write_report(args.runs, args.out or Path(args.runs[0]).resolve().parent)
    except (FileNotFoundError, ValueError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    print(md.read_text())
    print(f"wrote {md} and {png}")
    return 0
