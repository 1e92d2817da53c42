"""Many SIGKILLs of a local run, at random moments and inside a checkpoint write and an evaluation: each time
the newest complete checkpoint is found and resumed, no checkpoint on disk is half-written or unreadable, and
the final metrics and weights equal an uninterrupted run's. Minutes, so opt-in:

    bash scripts/test.sh --reliability          # OPENRLHF_MT_RELIABILITY=1; ..._KILLS=N for more or fewer

(tests/local/test_engine.py kills one run once in the default suite; test_faults.py covers the rest.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from safetensors.torch import load_file
from tiny_runs import SMALL, assert_same_final_weights, config, without_times

from openrlhf_mt.engines.local.checkpoint import checkpoint_candidates, load_state
from openrlhf_mt.engines.local.logger import read_metrics
from openrlhf_mt.engines.local.trainer import LocalTrainer

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(
        not os.environ.get("OPENRLHF_MT_RELIABILITY"), reason="minutes: bash scripts/test.sh --reliability"
    ),
]

KILLS = int(os.environ.get("OPENRLHF_MT_RELIABILITY_KILLS", "20"))
STEPS = ["train.steps=40", "eval.every=3", "checkpoint.every=1"]

# Runs `openrlhf-mt train` and SIGKILLs itself at the n-th checkpoint write (half of trainer_state.pt on
# disk) or the n-th scoring of an evaluation (half-way through evaluating): argv is WHERE N TRAIN-ARGS...
KILL_INSIDE = """
import os, signal, sys
from openrlhf_mt.engines.local import checkpoint, trainer

where, nth, calls = sys.argv[1], int(sys.argv[2]), [0]

def killed_at_nth(original, before):
    def wrapped(*args, **kwargs):
        if not kwargs.get("train"):  # torch.save has no `train`; score_responses is evaluating
            calls[0] += 1
            if calls[0] == nth:
                before(*args)
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    return wrapped

def half_written(state, path):
    with open(path, "wb") as handle:
        handle.write(b"PK\\x03\\x04" + bytes(4096))

if where == "save":
    checkpoint.torch.save = killed_at_nth(checkpoint.torch.save, half_written)
else:
    trainer.score_responses = killed_at_nth(trainer.score_responses, lambda *args: None)
from openrlhf_mt.cli import main
sys.exit(main(["train", *sys.argv[3:]]))
"""


def _train_args(out: Path, resume: bool) -> list[str]:
    args = ["--method", "mt-grpo", "--out", str(out)]
    args += [token for item in [*SMALL, *STEPS] for token in ("--set", item)]
    return args + (["--resume"] if resume else [])


def _assert_every_checkpoint_is_complete(out: Path) -> int | None:
    """Every checkpoint the run would resume from (or keep as best) loads; returns the newest step."""
    steps = []
    for name in ("last", "best"):
        for candidate in checkpoint_candidates(out / "checkpoints" / name):
            state = load_state(candidate)
            assert load_file(candidate / "model.safetensors")  # the weights read back
            if name == "last":
                steps.append(state["step"])
    return max(steps, default=None)


def _newest_logged_step(metrics: Path) -> int:
    return max((row["step"] for row in read_metrics(metrics, allow_cut_last_line=True)), default=-1)


def _kill_at_a_random_moment(process: subprocess.Popen, metrics: Path, rng: random.Random) -> None:
    """A random moment of start-up (about one kill in five), else of training: once the run has logged a
    step beyond what the file held at launch (so each kill lets the run move on, however busy the machine),
    0-1.5 s later, in the next step's rollouts, update, checkpoint write or evaluation."""
    if rng.random() < 0.2:
        time.sleep(rng.uniform(0.5, 4.0))
    else:
        before, deadline = _newest_logged_step(metrics) if metrics.is_file() else -1, time.time() + 300
        while process.poll() is None and time.time() < deadline:
            if metrics.is_file() and _newest_logged_step(metrics) > before:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
    process.send_signal(signal.SIGKILL)


def test_many_sigkills_lose_nothing(tmp_path):
    rng = random.Random(0)
    straight = LocalTrainer(config(tmp_path / "straight", "mt-grpo", *STEPS)).train()
    out = tmp_path / "killed"
    plans = ["save", "eval", *(["random"] * (KILLS - 2))]
    rng.shuffle(plans)
    kills: Counter[str] = Counter()
    resumed_steps = []
    for plan in plans:
        resume = bool(checkpoint_candidates(out / "checkpoints" / "last"))
        if plan == "random":
            command = [sys.executable, "-m", "openrlhf_mt.cli", "train", *_train_args(out, resume)]
        else:
            nth = rng.randint(1, 3)
            command = [sys.executable, "-c", KILL_INSIDE, plan, str(nth), *_train_args(out, resume)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if plan == "random":
            _kill_at_a_random_moment(process, out / "metrics.jsonl", rng)
        _, stderr = process.communicate(timeout=300)
        if process.returncode == 0:
            break  # the run finished before this kill
        assert process.returncode == -signal.SIGKILL, stderr[-3000:]
        kills[plan] += 1
        resumed_steps.append(_assert_every_checkpoint_is_complete(out))
    assert kills["save"] == kills["eval"] == 1 and sum(kills.values()) >= KILLS // 2, kills

    LocalTrainer(config(out, "mt-grpo", *STEPS), resume=True).train()
    assert without_times(read_metrics(out / "metrics.jsonl")) == without_times(straight)
    assert_same_final_weights(tmp_path / "straight", out)
    print(f"\n{sum(kills.values())} SIGKILLs {dict(kills)}; newest checkpoint after each: {resumed_steps}")
