"""Metrics sinks: OUT/metrics.jsonl (always), TensorBoard (optional), Weights & Biases (when asked).

One JSON object per line and step, with flat "section/name" keys. On resume the file is cut back to the
checkpoint's step, so rows written after the last checkpoint by an interrupted run are not duplicated; a last
row that a killed run left half-written is dropped, and the cut file replaces the old one by a rename, so a
kill during the resume itself loses nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from openrlhf_mt.config import LoggingConfig, RunConfig, to_dict


def read_metrics(path: str | Path, allow_cut_last_line: bool = False) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file. With `allow_cut_last_line`, a last line that is not complete JSON
    (a run killed while writing it) is left out; anywhere else such a line is an error naming it."""
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except ValueError as error:
            if allow_cut_last_line and number == len(lines):
                break
            raise ValueError(f"{path}, line {number}: not a JSON metrics row ({error})") from None
    return rows


class MetricsLogger:
    def __init__(self, out: Path, cfg: RunConfig, resume_step: int | None = None) -> None:
        self.path = out / "metrics.jsonl"
        if resume_step is None:
            self.path.write_text("")
        else:
            rows = read_metrics(self.path, allow_cut_last_line=True) if self.path.exists() else []
            kept = [row for row in rows if row["step"] <= resume_step]
            cut = self.path.with_name(self.path.name + ".tmp")
            cut.write_text("".join(json.dumps(row) + "\n" for row in kept))
            cut.replace(self.path)
        settings: LoggingConfig = cfg.logging
        self.tensorboard = None
        if settings.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.tensorboard = SummaryWriter(str(out / "tensorboard"), purge_step=purge)
        self.wandb = None
        if settings.wandb:
            try:
                import wandb
            except ImportError as error:
                raise RuntimeError(
                    "logging.wandb: true needs the wandb package (pip install wandb)"
                ) from error
            self.wandb = wandb.init(
                project=settings.wandb_project,
                dir=str(out),
                mode=settings.wandb_mode,
                config=to_dict(cfg),
                name=out.name,
                resume="allow" if resume_step is not None else None,
            )

    def log(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        numbers = {
            k: float(v)
            for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and math.isfinite(float(v))
        }
        if self.tensorboard is not None:
            for key, value in numbers.items():
                self.tensorboard.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(numbers, step=step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
