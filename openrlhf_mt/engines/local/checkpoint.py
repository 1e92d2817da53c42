"""Atomic checkpoint directories: written under a temporary name, then swapped in by rename.

A checkpoint directory holds the model and tokenizer in HF format (so `model.path` can point at it) and
trainer_state.pt: optimizer, LR schedule, weighter, sampler, reward EMA, prompt streams, RNG states and the
step. A crash at any moment leaves either the old checkpoint or the new one, never a half-written one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

STATE_FILE = "trainer_state.pt"


def save_checkpoint(
    directory: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, state: dict[str, Any]
) -> None:
    """Write `directory` atomically (tmp dir, then rename; the previous version is removed last)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(directory.name + ".tmp")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save(state, tmp / STATE_FILE)
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(directory: Path) -> Path | None:
    """The complete checkpoint at `directory`, or its previous version if a save was interrupted mid-swap."""
    for candidate in (directory, directory.with_name(directory.name + ".old")):
        if (candidate / STATE_FILE).is_file():
            return candidate
    return None


def load_state(directory: Path) -> dict[str, Any]:
    return torch.load(directory / STATE_FILE, weights_only=False)
