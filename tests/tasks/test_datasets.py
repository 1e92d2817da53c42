"""Dataset building (train/test jsonl + parquet + manifest), reading with clear errors, and the CLI."""

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openrlhf_mt.tasks import TaskDataError, get_task
from openrlhf_mt.tasks.cli_data import main as data_main
from openrlhf_mt.tasks.cli_tasks import main as tasks_main
from openrlhf_mt.tasks.datasets import PRESETS, BuildConfig, build_datasets, read_rows, write_rows
from openrlhf_mt.tasks.paper_test import load_paper_test

TASKS = ["tiny-add", "tiny-countdown", "countdown-easy", "arc-easy"]
TRAIN, TEST = 250, 60


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    cache = tmp_path_factory.mktemp("cache")
    config = BuildConfig(TASKS, out / "a", TRAIN, TEST, seed=3, workers=2, cache_dir=cache, progress=False)
    manifest = build_datasets(config)
    return out, cache, manifest


def test_files_manifest_and_formats(built):
    out, _, manifest = built
    directory = out / "a"
    assert sorted(p.name for p in directory.iterdir()) == [
        "manifest.json",
        "test.jsonl",
        "test.parquet",
        "train.jsonl",
        "train.parquet",
    ]
    assert json.loads((directory / "manifest.json").read_text()) == manifest
    assert manifest["rows"] == {"train": dict.fromkeys(TASKS, TRAIN), "test": dict.fromkeys(TASKS, TEST)}
    assert (manifest["train_seed"], manifest["test_seed"], manifest["tasks"]) == (6, 7, TASKS)
    assert manifest["generator_versions"]["reasoning-gym"] == "0.1.25"
    for split in ("train", "test"):
        rows = _jsonl(directory / f"{split}.jsonl")
        assert rows == pq.read_table(directory / f"{split}.parquet").to_pylist()
        assert pq.read_schema(directory / f"{split}.parquet").names == ["prompt", "label", "datasource"]
        assert read_rows(directory / f"{split}.parquet") == rows
        for row in rows:
            assert json.loads(row["label"])["task"] == row["datasource"]


def test_train_and_test_never_overlap_and_collisions_are_counted_exactly(built):
    out, _, manifest = built
    train, test = _jsonl(out / "a" / "train.jsonl"), _jsonl(out / "a" / "test.jsonl")
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    for name in TASKS:
        task = get_task(name)
        task_test = [r for r in test if r["datasource"] == name]
        assert task_test == task.generate(TEST, seed=7)
        # Independent replay: walk the train stream, skipping test prompts, until TRAIN rows are kept.
        test_prompts, kept, skipped = {r["prompt"] for r in task_test}, [], 0
        for row in task.generate(2 * TRAIN, seed=6):
            if len(kept) == TRAIN:
                break
            if row["prompt"] in test_prompts:
                skipped += 1
            else:
                kept.append(row)
        assert [r for r in train if r["datasource"] == name] == kept
        assert manifest["train_test_collisions_removed"][name] == skipped
    assert manifest["train_test_collisions_removed"]["tiny-add"] > 0  # 8,100 prompts: collisions do happen


def test_build_is_the_same_without_workers_or_cache_and_the_cache_is_used(built, tmp_path):
    out, cache, _ = built
    assert list(cache.glob("*.jsonl"))
    config = BuildConfig(
        TASKS, tmp_path / "b", TRAIN, TEST, seed=3, workers=1, cache_dir=None, progress=False
    )
    build_datasets(config)
    for name in ("train.jsonl", "test.jsonl", "train.parquet"):
        assert (tmp_path / "b" / name).read_bytes() == (out / "a" / name).read_bytes()


def test_huggingface_datasets_reads_the_files_as_openrlhf_does(built, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out, _, _ = built
    for suffix, loader in ((".parquet", "parquet"), (".jsonl", "json")):
        data = datasets.load_dataset(loader, data_files=str(out / "a" / f"train{suffix}"))["train"]
        assert data.column_names == ["prompt", "label", "datasource"]
        assert len(data) == TRAIN * len(TASKS) and isinstance(data[0]["label"], str)


def test_presets_are_the_papers_experiments():
    assert PRESETS["exp1"] == ("countdown-medium", "zebra-medium", "arc-medium")
    assert sorted(PRESETS["exp2"]) == sorted(
        f"{f}-{lv}" for f in ("countdown", "zebra", "arc") for lv in ("easy", "medium", "hard")
    )


def test_paper_test_splits_replace_generated_ones(tmp_path, paper_test_dir):
    paper = paper_test_dir
    config = BuildConfig(
        ["arc-easy"], tmp_path, 100, 200, workers=1, cache_dir=None, progress=False, paper_test=paper
    )
    manifest = build_datasets(config)
    assert _jsonl(tmp_path / "test.jsonl") == [
        r for r in load_paper_test(paper) if r["datasource"] == "arc-easy"
    ]
    assert manifest["test_source"] == str(paper) and manifest["test_seed"] is None
    too_many = BuildConfig(
        ["arc-easy"], tmp_path, 1, 201, workers=1, cache_dir=None, progress=False, paper_test=paper
    )
    with pytest.raises(
        TaskDataError, match="has 200 test rows for task 'arc-easy', --test-size asks for 201"
    ):
        build_datasets(too_many)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks": []}, "need a comma-separated list"),
        ({"tasks": ["tiny-add", ""]}, "need a comma-separated list"),
        ({"tasks": ["tiny-add", "tiny-add"]}, r"\['tiny-add'\] listed more than once"),
        ({"train_size": -1}, "--train-size must be >= 0"),
        ({"train_size": 0, "test_size": 0}, "nothing to build"),
        ({"workers": 0}, "--workers must be >= 1"),
    ],
)
def test_build_config_errors(kwargs, message, tmp_path):
    with pytest.raises(TaskDataError, match=message):
        BuildConfig(**{"tasks": ["tiny-add"], "out": tmp_path, **kwargs})


def test_unknown_task_fails_before_any_work(tmp_path):
    with pytest.raises(TaskDataError, match="did you mean 'zebra-medium'"):
        build_datasets(BuildConfig(["tiny-add", "zebra-medum"], tmp_path / "x", progress=False))
    assert not (tmp_path / "x").exists()


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


GOOD = {"prompt": "add 1+2=", "label": '{"task":"tiny-add","target":"3"}', "datasource": "tiny-add"}


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([GOOD, {"prompt": "p"}], r"rows\.jsonl, line 2: field 'label' missing or not text"),
        ([GOOD, {**GOOD, "label": "{oops"}], r"line 2, field 'label': label is not valid JSON"),
        (
            [{**GOOD, "label": '{"task":"tiny-add"}'}],
            r"line 1, field 'label': label of task 'tiny-add' lacks",
        ),
        (
            [{**GOOD, "label": '{"task":"tiny-ad","target":"3"}'}],
            r"line 1, field 'label': unknown task 'tiny-ad'",
        ),
        (["just a string"], r"line 1: expected an object"),
        (
            [GOOD, {**GOOD, "label": '{"task":"tiny-add","target":"4"}'}],
            r"line 2, field 'label': the same prompt as .*rows\.jsonl, line 1 with another label",
        ),
    ],
)
def test_read_rows_errors_name_file_row_and_field(records, message, tmp_path):
    with pytest.raises(TaskDataError, match=message):
        read_rows(_write_jsonl(tmp_path / "rows.jsonl", records))


def test_read_rows_other_errors(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(TaskDataError, match=r"bad\.jsonl, line 2: not valid JSON"):
        read_rows(tmp_path / "bad.jsonl")
    pq.write_table(pa.table({"prompt": ["p"]}), tmp_path / "no_label.parquet")
    with pytest.raises(TaskDataError, match=r"no_label\.parquet: missing column\(s\) \['label'\]"):
        read_rows(tmp_path / "no_label.parquet")
    with pytest.raises(TaskDataError, match=r"unknown file type '\.csv'"):
        read_rows(_write_jsonl(tmp_path / "rows.csv", [GOOD]))
    with pytest.raises(TaskDataError, match="no such file"):
        read_rows(tmp_path / "missing.jsonl")
    path = _write_jsonl(tmp_path / "rows.jsonl", [GOOD])
    with pytest.raises(
        TaskDataError, match=r"no rows for task\(s\) \['tiny-arc'\]; it has \{'tiny-add': 1\}"
    ):
        read_rows(path, tasks=["tiny-add", "tiny-arc"])
    assert read_rows(path, tasks=["tiny-add"]) == [GOOD]


def _paper_like(path: Path, **overrides) -> Path:
    record = {
        "data_source": "countdown-easy-test",
        "prompt": [{"content": "Using the numbers [1, 2]...", "role": "user"}],
        "reward_model": {"ground_truth": {"numbers": "1,2", "target": 3}, "style": "rule"},
    }
    record.update(overrides)
    pq.write_table(pa.Table.from_pylist([record]), path)
    return path


def test_load_paper_test_errors(tmp_path):
    rows = load_paper_test(_paper_like(tmp_path / "ok.parquet"))
    assert rows == [
        get_task("countdown-easy").make_row("Using the numbers [1, 2]...", {"numbers": [1, 2], "target": 3})
    ]
    pq.write_table(pa.table({"data_source": ["x"], "prompt": ["p"]}), tmp_path / "cols.parquet")
    with pytest.raises(TaskDataError, match=r"cols\.parquet: missing column\(s\) \['reward_model'\]"):
        load_paper_test(tmp_path / "cols.parquet")
    with pytest.raises(TaskDataError, match=r"row 0: field data_source: unknown task 'countdown-eazy'"):
        load_paper_test(_paper_like(tmp_path / "src.parquet", data_source="countdown-eazy-test"))
    bad_truth = {"ground_truth": {"numbers": "1,x", "target": 3}, "style": "rule"}
    with pytest.raises(TaskDataError, match=r"row 0: field reward_model.ground_truth needs 'numbers'"):
        load_paper_test(_paper_like(tmp_path / "truth.parquet", reward_model=bad_truth))
    with pytest.raises(TaskDataError, match="no such file or directory"):
        load_paper_test(tmp_path / "nowhere")


def test_cli_build_check_paper_test_and_tasks(tmp_path, capsys):
    build = ["build", "--tasks", "tiny-add,tiny-arc", "--train-size", "30", "--test-size", "10", "--quiet"]
    assert data_main([*build, "--out", str(tmp_path / "d"), "--no-cache", "--workers", "1"], prog="data") == 0
    assert "rows per task: train {'tiny-add': 30, 'tiny-arc': 30}" in capsys.readouterr().out
    assert (
        data_main(["check", str(tmp_path / "d" / "train.parquet"), "--tasks", "tiny-arc"], prog="data") == 0
    )
    assert "30 valid rows" in capsys.readouterr().out
    assert data_main(["check", str(tmp_path / "d")], prog="data") == 0  # a whole `build --out` directory
    out = capsys.readouterr().out
    assert out.count("valid rows") == 4 and "test.parquet prompts that are also in train.parquet: 0" in out
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    rows = read_rows(tmp_path / "d" / "train.jsonl")
    write_rows(rows, leaky / "train.jsonl")
    write_rows(rows[:3], leaky / "test.jsonl")
    assert data_main(["check", str(leaky)], prog="data") == 2  # a test prompt seen in training: an error
    captured = capsys.readouterr()
    assert "test.jsonl prompts that are also in train.jsonl: 3" in captured.out
    assert re.search(r"test\.jsonl, line 1, field 'prompt': also in the train split, .*train\.jsonl, line 1 "
                     r"\(3 such test prompt\(s\) in all", captured.err)  # fmt: skip
    assert data_main(["check", str(leaky), "--skip-bad-rows"], prog="data") == 0  # counted, reported
    assert "test.jsonl prompts that are also in train.jsonl: 3" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert data_main(["check", str(tmp_path / "empty")], prog="data") == 2
    assert "empty: no .jsonl or .parquet files in this directory" in capsys.readouterr().err
    assert (
        data_main(["build", "--tasks", "tiny-ad", "--out", str(tmp_path / "e")], prog="openrlhf-mt data") == 2
    )
    assert (
        "openrlhf-mt data: error: unknown task 'tiny-ad'; did you mean 'tiny-add'" in capsys.readouterr().err
    )
    write_rows([GOOD], tmp_path / "one.jsonl")
    assert data_main(["check", str(tmp_path / "one.jsonl"), "--tasks", "zebra-easy"], prog="data") == 2
    assert tasks_main(["tiny-add", "--sample"], prog="tasks") == 0
    assert "add " in capsys.readouterr().out
    assert tasks_main(["zebra-mediun"], prog="tasks") == 2
    assert "did you mean 'zebra-medium'" in capsys.readouterr().err
