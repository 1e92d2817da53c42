"""Faults the local engine survives (docs/reliability.md), the fast ones: disk problems found before any model
loads, checkpoints that are never half-written, SIGTERM / SIGINT, and a run that goes on through failing
rewards, non-finite losses, dry tasks, exhausted prompts and an unreadable eval set, counting each and
logging it once. The many-SIGKILL test is in test_reliability.py (bash scripts/test.sh --reliability)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tiny_runs import SMALL, assert_same_final_weights, config, without_times

from openrlhf_mt.engines.local import checkpoint as checkpoint_module
from openrlhf_mt.engines.local.checkpoint import (
    CheckpointError,
    checkpoint_candidates,
    checkpoint_step,
    load_state,
    save_checkpoint,
)
from openrlhf_mt.engines.local.logger import MetricsLogger, read_metrics
from openrlhf_mt.engines.local.model import build_tiny, load_policy
from openrlhf_mt.engines.local.train import main as train_main
from openrlhf_mt.engines.local.trainer import LocalTrainer
from openrlhf_mt.engines.local.warmup import warmed_up_tiny
from openrlhf_mt.tasks import Grade, Task, register_task

pytestmark = pytest.mark.slow


# -- the disk, before any model loads ----------------------------------------------------------------------


def test_an_output_directory_that_cannot_be_written_fails_before_any_model_loads(tmp_path):
    (tmp_path / "a_file").write_text("")
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError, match=r"out: cannot write to .*a_file/run \(\[Errno 20\] Not a dir"):
        LocalTrainer(config(tmp_path / "a_file" / "run", "mt-grpo", f"model.cache_dir={cache}"))
    assert not cache.exists()  # no warm-up started


def test_too_little_free_space_for_the_checkpoints_fails_before_any_model_loads(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpoint_module.shutil, "disk_usage", lambda _: usage._replace(free=10 << 20))
    cache = tmp_path / "cache"
    cfg = config(tmp_path / "run", "mt-grpo", f"model.cache_dir={cache}")
    with pytest.raises(CheckpointError, match=r"0.01 GiB free, but the checkpoints need about 0.07 GiB") as e:
        LocalTrainer(cfg)
    assert (
        "3 at once of 0.02 GiB each: last, best and the one being written; 2,115,200 parameters x 4"
        in str(e.value)
    )
    assert not cache.exists()
    # without a best checkpoint two copies fit: 2 x 25.4 MiB in 60 MiB
    monkeypatch.setattr(checkpoint_module.shutil, "disk_usage", lambda _: usage._replace(free=60 << 20))
    with pytest.raises(CheckpointError):
        LocalTrainer(cfg)
    LocalTrainer(config(tmp_path / "run", "mt-grpo", "checkpoint.keep_best=false"))


# -- checkpoints are never half-written ----------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL: no `except Exception` clean-up runs."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    policy = load_policy(build_tiny(tmp_path_factory.mktemp("tiny")), torch.device("cpu"), torch.float32)
    return policy.model, policy.tokenizer


def _save(directory: Path, tiny, step: int) -> None:
    save_checkpoint(directory, *tiny, {"step": step, "payload": torch.arange(1000)})


def test_a_save_killed_while_writing_leaves_the_previous_checkpoint(tmp_path, tiny, monkeypatch):
    last = tmp_path / "last"
    _save(last, tiny, 1)

    def half_then_killed(state, path):
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        raise Killed

    monkeypatch.setattr(checkpoint_module.torch, "save", half_then_killed)
    with pytest.raises(Killed):
        _save(last, tiny, 2)
    assert (tmp_path / "last.tmp" / "trainer_state.pt").is_file()  # the half-written one is there ...
    assert checkpoint_candidates(last) == [last]  # ... and never chosen
    assert load_state(last)["step"] == 1


def test_a_save_killed_during_the_swap_leaves_a_complete_checkpoint(tmp_path, tiny, monkeypatch):
    last = tmp_path / "last"
    _save(last, tiny, 1)
    real_rename = Path.rename

    def rename_once(self, target):
        if self.name == "last.tmp":
            raise Killed  # after `last` became `last.old`, before `last.tmp` became `last`
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_once)
    with pytest.raises(Killed):
        _save(last, tiny, 2)
    monkeypatch.undo()
    assert not last.exists()
    assert checkpoint_candidates(last) == [tmp_path / "last.tmp", tmp_path / "last.old"]  # newest first
    assert [load_state(path)["step"] for path in checkpoint_candidates(last)] == [2, 1]
    _save(last, tiny, 3)  # the next save tidies up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_a_damaged_or_unfinished_checkpoint_is_never_chosen(tmp_path, tiny):
    last = tmp_path / "last"
    _save(last, tiny, 1)
    shutil.copytree(last, tmp_path / "last.old")
    with open(last / "model.safetensors", "r+b") as handle:  # a file cut short
        handle.truncate(1000)
    assert checkpoint_step(last) is None
    assert checkpoint_candidates(last) == [tmp_path / "last.old"]
    (tmp_path / "last.old").rename(tmp_path / "last.tmp")
    (tmp_path / "last.tmp" / "checkpoint.json").unlink()  # no manifest: its files may not be complete
    assert checkpoint_candidates(last) == []
    (tmp_path / "last.tmp").rename(tmp_path / "last.old")  # one under a final name, from before manifests
    assert checkpoint_candidates(last) == [tmp_path / "last.old"]


def test_a_full_disk_during_a_save_is_a_clear_error_and_keeps_the_last_checkpoint(
    tmp_path, tiny, monkeypatch
):
    last = tmp_path / "last"
    _save(last, tiny, 1)

    def no_space(state, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", no_space)
    with pytest.raises(CheckpointError, match=r"No space left on device.*last \(step 1\) is still complete"):
        _save(last, tiny, 2)
    assert not (tmp_path / "last.tmp").exists()
    assert checkpoint_candidates(last) == [last]


# -- SIGTERM / SIGINT ---------------------------------------------------------------------------------------

STEPS = [
    "train.steps=4",
    "eval.every=2",
    "checkpoint.every=0",
]  # no checkpoint but the one the signal asks for


def _signal_at_step(monkeypatch, step: int, signum: int, times: int = 1) -> None:
    train_step = LocalTrainer.train_step

    def train_step_then_signal(self):
        row = train_step(self)
        if self.step == step:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return row

    monkeypatch.setattr(LocalTrainer, "train_step", train_step_then_signal)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[Path, list[dict[str, Any]]]:
    """An uninterrupted run of STEPS: its directory and metrics rows."""
    out = tmp_path_factory.mktemp("straight")
    return out, LocalTrainer(config(out, "mt-grpo", *STEPS)).train()


def test_sigterm_finishes_the_step_writes_a_checkpoint_and_exits_0(tmp_path, monkeypatch, capsys, straight):
    """As SLURM sends before a time limit: the step in progress (step 2, with its eval) is finished and
    checkpointed, the command exits 0 saying how to resume, and the resumed run ends where an uninterrupted
    one does, metrics and weights."""
    out = tmp_path / "stopped"
    argv = ["--method", "mt-grpo", "--out", str(out)] + [
        a for item in [*SMALL, *STEPS] for a in ("--set", item)
    ]
    _signal_at_step(monkeypatch, 2, signal.SIGTERM)
    assert train_main(argv, prog="openrlhf-mt train") == 0
    printed = capsys.readouterr().out
    assert f"stopped by SIGTERM after step 2 of 4; checkpoint: {out / 'checkpoints' / 'last'}" in printed
    assert "Resume with:\n  openrlhf-mt train --method mt-grpo" in printed and printed.rstrip().endswith(
        "--resume"
    )
    assert [row["step"] for row in read_metrics(out / "metrics.jsonl")] == [0, 1, 2]
    assert checkpoint_step(out / "checkpoints" / "last") == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are gone again
    monkeypatch.undo()
    LocalTrainer(config(out, "mt-grpo", *STEPS), resume=True).train()
    assert without_times(read_metrics(out / "metrics.jsonl")) == without_times(straight[1])
    assert_same_final_weights(straight[0], out)


def test_a_second_signal_stops_at_once(tmp_path, monkeypatch):
    """Ctrl-C twice: SIGINT is handled as SIGTERM is, and the second one does not wait for the step."""
    _signal_at_step(monkeypatch, 1, signal.SIGINT, times=2)
    with pytest.raises(SystemExit) as stopped:
        LocalTrainer(config(tmp_path, "mt-grpo", *STEPS)).train()
    assert stopped.value.code == 128 + signal.SIGINT
    assert checkpoint_candidates(tmp_path / "checkpoints" / "last") == []  # none of a half-finished step


# -- the run goes on: failing rewards, non-finite losses, dry tasks, prompts that run out -----------------


class Erratic(Task):
    """Never right: its reward function raises on some responses, returns NaN on others, else 0. Every group
    is zero-gradient, every step."""

    def examples(self, seed: int, start: int, stop: int) -> list[tuple[str, dict[str, Any]]]:
        return [(f"say {seed % 97}.{i}:", {}) for i in range(start, stop)]

    def grade(self, response: str, truth: Mapping[str, Any]) -> Grade:
        return Grade.INVALID

    def score(self, response: str, label: Any, train: bool = True) -> float:
        if len(response) % 3 == 0:
            raise KeyError("a plug-in bug")
        return math.nan if len(response) % 3 == 1 else 0.0


def test_the_run_goes_on_counts_each_fault_and_logs_it_once(tmp_path, monkeypatch, caplog):
    register_task("test-erratic", lambda name: Erratic(name, "raises, NaN or 0"))
    cfg = config(
        tmp_path,
        "mt-grpo",
        f"model.path={warmed_up_tiny(config(tmp_path))}",  # the usual warm-up: Erratic has no answers
        "data.tasks=[tiny-add, test-erratic]",
        "data.train_size=6",  # 6 prompts, 4 a step and more in refill rounds: the prompts run out
        "algo.filter_mode=lenient",  # keep tiny-add's 0 / 0.1 groups: there is something to train on
        "train.steps=4",
        "eval.every=4",
    )
    trainer = LocalTrainer(cfg)
    trainer.zero_gradient_streaks.warn_after = 2
    loss, calls = trainer._loss, []

    def nan_in_the_third_mini_batch(*args, **kwargs):
        calls.append(1)
        out = loss(*args, **kwargs)
        return dataclasses.replace(out, loss=out.loss * math.nan) if len(calls) == 3 else out

    monkeypatch.setattr(trainer, "_loss", nan_in_the_third_mini_batch)
    with caplog.at_level("WARNING"):
        rows = trainer.train()
    last = rows[-1]
    assert last["step"] == 4 and last["faults/nonfinite_minibatches"] == 1
    assert last["faults/reward_raised/test-erratic"] > 0 and last["faults/reward_non_finite/test-erratic"] > 0
    assert last["train/test-erratic/zero_gradient_streak"] == 4 and last["data/tiny-add/passes"] >= 1
    assert 0 <= last["eval/test-erratic/accuracy"] <= 1
    for row in rows[1:]:
        weights = [row["weights/tiny-add"], row["weights/test-erratic"]]
        assert min(weights) >= 0 and sum(weights) == pytest.approx(1.0)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    messages = [record.getMessage() for record in caplog.records]
    for cause in (
        "its reward function raised KeyError",
        "its reward function returned nan",
        "mini-batch's loss or gradient is not finite",
        "task test-erratic: every group had zero gradient for 2 steps in a row (this step: no rollout right",
        "task tiny-add: all 6 training prompts used",
    ):
        assert sum(cause in message for message in messages) == 1, (cause, messages)


# -- an eval set that fails to load -------------------------------------------------------------------------


def _paper_file(path: Path, rows: int, bad_row: int | None = None) -> Path:
    records = [
        {
            "data_source": "countdown-easy-test",
            "prompt": [{"content": f"Using the numbers [{i}, 2]...", "role": "user"}],
            "reward_model": {"ground_truth": {"numbers": f"{i},2", "target": i + 2}},
        }
        for i in range(rows)
    ]
    if bad_row is not None:
        records[bad_row]["data_source"] = "countdown-eazy-test"
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def test_an_eval_set_that_fails_to_load_is_replaced_by_generated_prompts(tmp_path, caplog):
    """The run goes on (counted, logged); with data.skip_bad_rows only the bad row is left out; a paper task
    the files lack is an error before any model loads."""
    model = build_tiny(tmp_path / "model")
    base = [f"model.path={model}", "data.tasks=[tiny-add, countdown-easy]", "data.train_size=20"]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 and then nothing")
    with caplog.at_level("WARNING"):
        trainer = LocalTrainer(config(tmp_path / "a", "mt-grpo", *base, f"eval.paper_test={broken}"))
    assert trainer.eval_sources["countdown-easy"]["source"] == "generated"
    assert trainer.faults.metrics() == {"faults/eval_load_failed": 1}
    assert (
        "evaluating on generated prompts instead" in caplog.text and "not a readable parquet" in caplog.text
    )

    one_bad = _paper_file(tmp_path / "one_bad.parquet", rows=5, bad_row=2)
    cfg = config(tmp_path / "b", "mt-grpo", *base, f"eval.paper_test={one_bad}", "data.skip_bad_rows=true")
    trainer = LocalTrainer(cfg)
    assert trainer.eval_sources["countdown-easy"] == {
        "source": str(one_bad),
        "eval_prompts": 4,
        "train_prompts_removed_as_eval": 0,
    }
    assert trainer.faults.metrics() == {"faults/eval_rows_skipped": 1}
    assert (
        json.loads((tmp_path / "b" / "eval_sources.json").read_text())["countdown-easy"]["eval_prompts"] == 4
    )

    three = "data.tasks=[tiny-add, countdown-easy, zebra-easy]"
    cfg = config(
        tmp_path / "c", "mt-grpo", *base, three, f"eval.paper_test={one_bad}", "data.skip_bad_rows=true"
    )
    with pytest.raises(ValueError, match=r"no test rows for paper task\(s\) zebra-easy"):
        LocalTrainer(cfg)
    assert not (tmp_path / "c" / "config.yaml").exists()  # stopped before the model and the run's files


# -- metrics.jsonl after a kill -----------------------------------------------------------------------------


def test_a_half_written_metrics_row_is_dropped_on_resume_and_is_an_error_elsewhere(tmp_path):
    """A run killed while appending a row leaves it cut; the resume keeps the rows up to its checkpoint."""
    rows = "".join(json.dumps({"step": step, "train/reward": step / 10}) + "\n" for step in range(4))
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(rows + '{"step": 4, "train/rew')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 5: not a JSON metrics row"):
        read_metrics(metrics)
    MetricsLogger(tmp_path, config(tmp_path), resume_step=2)
    assert read_metrics(metrics) == [{"step": step, "train/reward": step / 10} for step in range(3)]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.jsonl"]  # no .tmp left behind
