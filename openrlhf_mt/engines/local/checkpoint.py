"""Atomic checkpoint directories: written under a temporary name, made durable, then swapped in by rename.

A checkpoint directory holds the model and tokenizer in HF format (so `model.path` can point at it),
trainer_state.pt (optimizer, LR schedule, weighter, sampler, reward EMA, prompt streams, RNG states, fault
counters, the step) and, written last, checkpoint.json: the step and every file's size. A directory without
a checkpoint.json that matches its files is never used (except one written before checkpoint.json existed,
under its final name: the rename made those complete too). Every file is fsync'ed before the rename, so a
killed process or a crashed machine leaves either the old checkpoint or the new one complete, never a
half-written one; `checkpoint_candidates` finds the newest complete one (the swap keeps the previous one
as `<name>.old` until the new one is in place).

Disk problems are found before training (`check_writable`, `check_free_space`), and a write that fails
anyway (the disk filled up meanwhile) raises CheckpointError saying which checkpoint is still complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

STATE_FILE = "trainer_state.pt"
MANIFEST_FILE = "checkpoint.json"
GIB = 1 << 30


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written (a directory not writable, no room): the message says what to do."""


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_checkpoint(
    directory: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, state: dict[str, Any]
) -> None:
    """Write `directory` atomically and durably (tmp dir, fsync, rename; the previous version is kept as
    `<name>.old` during the swap and removed last)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(directory.name + ".tmp")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save(state, tmp / STATE_FILE)
        files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        for name in files:
            _fsync(tmp / name)
        manifest = tmp / MANIFEST_FILE
        manifest.write_text(json.dumps({"step": state["step"], "files": files}, indent=1) + "\n")
        _fsync(manifest)
        _fsync(tmp)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = checkpoint_candidates(directory)
        still = f"{kept[0]} (step {checkpoint_step(kept[0])}) is still complete" if kept else "none is kept"
        raise CheckpointError(
            f"writing the checkpoint {directory} failed ({error}); of the previous checkpoints {still}. "
            "Free some disk space, then resume with --resume"
        ) from error
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
    tmp.rename(directory)
    _fsync(directory.parent)
    shutil.rmtree(old, ignore_errors=True)


LEGACY_STEP = -1  # a checkpoint without checkpoint.json: complete, its step is in its trainer_state.pt


def checkpoint_step(directory: Path) -> int | None:
    """The step of the complete checkpoint at `directory`, or None if it is missing or incomplete."""
    if not (directory / MANIFEST_FILE).exists():
        legacy = directory.suffix != ".tmp" and (directory / STATE_FILE).is_file()
        return LEGACY_STEP if legacy else None
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        complete = all((directory / name).stat().st_size == size for name, size in manifest["files"].items())
        return int(manifest["step"]) if complete and STATE_FILE in manifest["files"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def checkpoint_candidates(directory: Path) -> list[Path]:
    """The complete checkpoints among `directory`, `<name>.old` and `<name>.tmp` (a save killed after its
    last write but before the rename), newest step first."""
    found = []
    for candidate in (directory, *(directory.with_name(directory.name + s) for s in (".old", ".tmp"))):
        step = checkpoint_step(candidate)
        if step is not None:
            found.append((step, candidate))
    return [path for _, path in sorted(found, key=lambda item: -item[0])]


def load_state(directory: Path) -> dict[str, Any]:
    return torch.load(directory / STATE_FILE, weights_only=False)


def check_writable(directory: Path, flag: str) -> None:
    """Create `directory` and write a file in it; CheckpointError naming `flag` if that fails."""
    probe = directory / f".write-test-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise CheckpointError(
            f"{flag}: cannot write to {directory} ({error}); choose a directory this user can write"
        ) from None


def directory_bytes(directory: Path) -> int:
    """Bytes of the files under `directory` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.is_dir() else 0


def check_free_space(directory: Path, checkpoint_bytes: int, copies: int, why: str) -> None:
    """CheckpointError unless the file system of `directory` has room for `copies` checkpoints of
    `checkpoint_bytes` each, counting the space the existing ones under `directory` already take."""
    needed = copies * checkpoint_bytes - directory_bytes(directory)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise CheckpointError(
            f"{directory}: {free / GIB:.2f} GiB free, but the checkpoints need about {needed / GIB:.2f} GiB "
            f"more ({copies} at once of {checkpoint_bytes / GIB:.2f} GiB each: {why}). Free some space, "
            "choose another --out, or set checkpoint.keep_best=false"
        )
