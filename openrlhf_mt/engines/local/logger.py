"""Metrics sinks: OUT/metrics.jsonl (always), TensorBoard (optional), Weights & Biases (when asked).

One JSON object per line and step, with flat "section/name" keys. On resume the file is cut back to the
checkpoint's step, so rows written after the last checkpoint by an interrupted run are not duplicated.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from openrlhf_mt.config import LoggingConfig, RunConfig, to_dict


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file."""
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


class MetricsLogger:
    def __init__(self, out: Path, cfg: RunConfig, resume_step: int | None = None) -> None:
        self.path = out / "metrics.jsonl"
        if resume_step is None:
            self.path.write_text("")
        else:
            kept = [row for row in read_metrics(self.path) if row["step"] <= resume_step]
            self.path.write_text("".join(json.dumps(row) + "\n" for row in kept))
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
