"""Small runs of the local engine on the built-in tiny model, shared by its end-to-end tests.

The warmed-up tiny model is cached under the system temp dir, so only the first test session pays for it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from openrlhf_mt.config import RunConfig, load_config

TASKS = ["tiny-add", "tiny-countdown", "tiny-arc"]
SMALL = [
    f"model.cache_dir={Path(tempfile.gettempdir()) / 'openrlhf-mt-test-cache'}",
    "model.warmup_steps=80",
    "model.warmup_batch_size=48",
    "model.threads=1",
    "data.train_size=300",
    "data.eval_size=8",
    "rollout.prompts_per_step=4",
    "rollout.rollouts_per_prompt=4",
    "rollout.max_new_tokens=12",
    "train.steps=2",
    "train.mini_batches=2",
    "eval.every=2",
    "eval.samples=2",
    "algo.max_rounds=2",
    "logging.progress=false",
    "logging.tensorboard=false",
]


def config(out: Path, method: str = "mt-grpo", *extra: str) -> RunConfig:
    return load_config(None, method=method, overrides=[*SMALL, f"out={out}", *extra])


def without_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def assert_same_final_weights(run_a: Path, run_b: Path) -> None:
    """The two runs' last checkpoints hold bit-identical model weights."""
    a = load_file(run_a / "checkpoints" / "last" / "model.safetensors")
    b = load_file(run_b / "checkpoints" / "last" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)
