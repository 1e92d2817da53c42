"""Bad data files: every bad row is an error naming file, row (jsonl: line) and field, or, when the user asks
to skip bad rows, a counted skip; never a silent drop, never a deep traceback."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openrlhf_mt.tasks import TaskDataError
from openrlhf_mt.tasks.base import MissingTaskData
from openrlhf_mt.tasks.cli_data import main as data_main
from openrlhf_mt.tasks.datasets import read_rows, write_rows
from openrlhf_mt.tasks.paper_test import load_paper_test
from openrlhf_mt.tasks.streams import paper_test_rows

GOOD = {"prompt": "add 1+2=", "label": '{"task":"tiny-add","target":"3"}', "datasource": "tiny-add"}
OTHER = {"prompt": "add 2+2=", "label": '{"task":"tiny-add","target":"4"}', "datasource": "tiny-add"}


def _lines(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def _json(record) -> bytes:
    return json.dumps(record).encode() + b"\n"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((_json(GOOD), b'{"prompt": "add 3+\xff=", "label": "x"}\n'), r"line 2: not valid UTF-8"),
        ((_json(GOOD), _json(OTHER)[:25]), r"line 2: not valid JSON .*\(the file ends here: truncated\?\)"),
        ((_json({**GOOD, "prompt": 7}),), r"line 1: field 'prompt' missing or not text"),
        ((_json({**GOOD, "label": {"task": "tiny-add"}}),), r"line 1: field 'label' missing or not text"),
        ((_json({**GOOD, "label": "[1, 2]"}),), r"line 1, field 'label': label must be a JSON object"),
        ((_json({**GOOD, "label": '{"task": 3}'}),), r"line 1, field 'label': label has no string field"),
        ((_json(GOOD), _json({**GOOD, "label": OTHER["label"]})), r"line 2, field 'label': the same prompt"),
        ((_json([GOOD]),), r"line 1: expected an object"),
    ],
)
def test_a_bad_jsonl_row_is_an_error_naming_it_or_a_counted_skip(lines, message, tmp_path):
    path = _lines(tmp_path / "rows.jsonl", *lines)
    with pytest.raises(TaskDataError, match=message):
        read_rows(path)
    skipped: list[TaskDataError] = []
    rows = read_rows(path, on_bad_row=skipped.append)
    assert len(skipped) == 1 and len(rows) == len(lines) - 1
    assert all(row in (GOOD, OTHER) for row in rows)


def test_files_that_cannot_be_read_at_all_are_errors_even_when_skipping(tmp_path):
    write_rows([GOOD, OTHER] * 50, tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    for path in (tmp_path / "cut.parquet", _lines(tmp_path / "x.parquet", b"not parquet")):
        with pytest.raises(TaskDataError, match=r"not a readable parquet file"):
            read_rows(path, on_bad_row=lambda error: None)
    pq.write_table(pa.table({"prompt": [b"\xff\xfe"], "label": [GOOD["label"]]}), tmp_path / "bytes.parquet")
    with pytest.raises(TaskDataError, match=r"bytes\.parquet, row 0: field 'prompt' missing or not text"):
        read_rows(tmp_path / "bytes.parquet")


def test_an_empty_task_and_identical_repeats(tmp_path, capsys):
    path = _lines(tmp_path / "rows.jsonl", _json(GOOD), _json(GOOD), _json(OTHER))
    assert read_rows(path) == [GOOD, GOOD, OTHER]  # a repeated row is kept: it is valid, and reported
    with pytest.raises(MissingTaskData, match=r"no rows for task\(s\) \['tiny-arc'\]"):
        read_rows(path, tasks=["tiny-add", "tiny-arc"])
    assert data_main(["check", str(path)], prog="data") == 0
    assert "1 row(s) repeat an earlier row's prompt and label" in capsys.readouterr().out


def test_data_check_reports_skipped_rows(tmp_path, capsys):
    path = _lines(tmp_path / "rows.jsonl", _json(GOOD), b"{oops\n", _json({"prompt": "p"}), _json(OTHER))
    assert data_main(["check", str(path)], prog="data") == 2
    assert "rows.jsonl, line 2: not valid JSON" in capsys.readouterr().err
    assert data_main(["check", str(path), "--skip-bad-rows"], prog="data") == 0
    out = capsys.readouterr().out
    assert "2 valid rows" in out and "skipped 2 bad row(s); the first: " in out and "line 3" in out


def _paper_row(**overrides) -> dict:
    record = {
        "data_source": "countdown-easy-test",
        "prompt": [{"content": "Using the numbers [1, 2]...", "role": "user"}],
        "reward_model": {"ground_truth": {"numbers": "1,2", "target": 3}, "style": "rule"},
    }
    return {**record, **overrides}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_paper_row(data_source=""), r"row 1: field data_source is empty or not text"),
        (_paper_row(data_source="countdown-eazy-test"), r"row 1: field data_source: unknown task"),
        (_paper_row(prompt=[{"content": "a"}, {"content": "b"}]), r"row 1: field prompt must be one chat"),
        (_paper_row(reward_model={"ground_truth": {"numbers": "1,x", "target": 3}}), r"row 1: field reward"),
        (_paper_row(reward_model={"style": "rule"}), r"row 1: field reward_model.ground_truth must be"),
    ],
)
def test_a_bad_verl_layout_row_is_an_error_naming_it_or_a_counted_skip(bad, message, tmp_path):
    path = tmp_path / "countdown_easy_test.parquet"
    pq.write_table(pa.Table.from_pylist([_paper_row(), bad, _paper_row()]), path)
    with pytest.raises(TaskDataError, match=message):
        load_paper_test(path)
    skipped: list[TaskDataError] = []
    assert len(load_paper_test(path, skipped.append)) == 2 and len(skipped) == 1
    assert len(paper_test_rows(path, ["countdown-easy"], skipped.append)["countdown-easy"]) == 2
    with pytest.raises(MissingTaskData, match=r"no test rows for paper task\(s\) zebra-easy"):
        paper_test_rows(path, ["countdown-easy", "zebra-easy"], skipped.append)
