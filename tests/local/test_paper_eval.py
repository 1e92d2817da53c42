"""`eval.paper_test`: a paper task is evaluated on the paper's exact test rows, other tasks on generated ones.

Builds the trainer only (train.steps=0, no eval run) on a randomly initialised builtin:tiny model, so no
warm-up is trained.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from openrlhf_mt.config import ConfigError, load_config
from openrlhf_mt.engines.local.model import build_tiny
from openrlhf_mt.engines.local.trainer import LocalTrainer
from openrlhf_mt.tasks import TaskDataError, get_task
from openrlhf_mt.tasks.streams import EVAL_SEED_OFFSET, split_rows

DEFAULT_PAPER_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "paper_test"
PAPER_TEST = Path(os.environ.get("OPENRLHF_MT_PAPER_TEST", DEFAULT_PAPER_TEST))
needs_paper_test = pytest.mark.skipif(
    not PAPER_TEST.is_dir(), reason=f"the paper's test parquet files are not at {PAPER_TEST}"
)


@pytest.fixture(scope="module")
def random_tiny(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny"), seed=0)


def trainer(out: Path, model: Path, tasks: str, paper_test: Path | str) -> LocalTrainer:
    cfg = load_config(
        None,
        overrides=[
            f"model.path={model}",
            "model.threads=1",
            f"data.tasks={tasks}",
            "data.train_size=40",
            "data.eval_size=6",
            "train.steps=0",
            "logging.progress=false",
            "logging.tensorboard=false",
            f"eval.paper_test={paper_test}",
            f"out={out}",
        ],
    )
    return LocalTrainer(cfg)


@needs_paper_test
def test_a_paper_task_is_evaluated_on_the_parquet_rows_and_a_tiny_task_on_generated_ones(
    tmp_path, random_tiny
):
    run = trainer(tmp_path, random_tiny, "[tiny-add,countdown-easy]", PAPER_TEST)
    table = pq.read_table(PAPER_TEST / "data_combined_test_countdown.parquet").to_pylist()
    parquet_prompts = [r["prompt"][0]["content"] for r in table if r["data_source"] == "countdown-easy-test"]
    assert len(parquet_prompts) == 200  # all of them, not data.eval_size
    assert [row["prompt"] for row in run.eval_rows["countdown-easy"]] == parquet_prompts

    generated = get_task("tiny-add").generate(6, seed=EVAL_SEED_OFFSET + 0)
    assert run.eval_rows["tiny-add"] == generated

    for task in ("tiny-add", "countdown-easy"):
        held_out = {row["prompt"] for row in run.eval_rows[task]}
        assert not held_out & {row["prompt"] for row in run.train_rows[task]}
    sources = json.loads((tmp_path / "eval_sources.json").read_text())
    assert sources["countdown-easy"]["source"] == str(PAPER_TEST)
    assert sources["countdown-easy"]["eval_prompts"] == 200
    assert sources["tiny-add"] == {
        "source": "generated",
        "eval_prompts": 6,
        "train_prompts_removed_as_eval": 40 - len(run.train_rows["tiny-add"]),
    }


def test_training_prompts_that_are_eval_prompts_are_dropped():
    task = get_task("tiny-add")
    train = task.generate(30, seed=0)
    test_rows = [train[3], train[7], *task.generate(5, seed=99)]
    kept, eval_rows = split_rows(task, 30, eval_size=1, seed=0, eval_rows=test_rows)
    assert eval_rows == test_rows
    dropped = {train[3]["prompt"], train[7]["prompt"]}
    assert kept == [row for row in train if row["prompt"] not in dropped]
    assert 30 - len(kept) >= 2


def test_a_paper_test_path_that_does_not_exist_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"eval\.paper_test: .*nope: no such file or directory"):
        load_config(None, overrides=[f"eval.paper_test={tmp_path / 'nope'}"])


@needs_paper_test
def test_a_paper_task_missing_from_the_files_is_an_error_naming_task_and_path(tmp_path, random_tiny):
    arc_only = PAPER_TEST / "data_combined_test_arc.parquet"
    with pytest.raises(TaskDataError, match=rf"{arc_only}: no test rows for paper task\(s\) countdown-easy"):
        trainer(tmp_path, random_tiny, "[tiny-add,countdown-easy]", arc_only)


@needs_paper_test
def test_the_paper_exp1_example_loads_with_the_paper_settings(monkeypatch):
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)  # eval.paper_test is relative to the directory the user runs in
    if not (repo / "../shared/data/paper_test").is_dir():
        pytest.skip("the example's eval.paper_test location ../shared/data/paper_test is absent")
    cfg = load_config(repo / "examples" / "paper_exp1_local.yaml")
    assert cfg.data.tasks == ["countdown-medium", "zebra-medium", "arc-medium"]
    assert (cfg.rollout.prompts_per_step, cfg.rollout.rollouts_per_prompt, cfg.train.steps) == (32, 72, 720)
    assert (cfg.train.lr, cfg.eval.samples, cfg.algo.weighter) == (1e-6, 8, "iwu")
