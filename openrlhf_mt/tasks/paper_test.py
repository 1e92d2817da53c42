"""Read the paper's test sets (verl layout parquet) into our rows, so evaluation can use them exactly.

verl layout: ``data_source`` like ``countdown-medium-test``, ``prompt`` (a chat list whose one user
message already holds the whole R1-Zero prompt), ``reward_model.ground_truth`` (countdown:
``{"numbers": "8,73,96", "target": 841}``; zebra, arc: ``{"target": str}``), ``extra_info``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from openrlhf_mt.tasks.base import BadRowHandler, Row, TaskDataError, bad_row
from openrlhf_mt.tasks.registry import get_task

REQUIRED_COLUMNS = ("data_source", "prompt", "reward_model")


def _paper_files(path: str | os.PathLike[str]) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise TaskDataError(f"{path}: no *.parquet files in this directory")
        return files
    if not path.exists():
        raise TaskDataError(f"{path}: no such file or directory")
    return [path]


def _ground_truth(task: str, truth: Any, where: str) -> dict[str, Any]:
    if not isinstance(truth, dict):
        raise TaskDataError(f"{where}: field reward_model.ground_truth must be a struct, got {truth!r}")
    if task.startswith("countdown-"):
        try:
            numbers = [int(number) for number in str(truth["numbers"]).split(",")]
            return {"numbers": numbers, "target": int(truth["target"])}
        except (KeyError, TypeError, ValueError) as error:
            raise TaskDataError(
                f"{where}: field reward_model.ground_truth needs 'numbers' (\"8,73,96\") and an integer "
                f"'target' ({error!r}); got {truth!r}"
            ) from None
    if not isinstance(truth.get("target"), str):
        raise TaskDataError(
            f"{where}: field reward_model.ground_truth.target must be a string, got {truth!r}"
        )
    return {"target": truth["target"]}


def _prompt_text(prompt: Any, where: str) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], dict):
        content = prompt[0].get("content")
        if isinstance(content, str):
            return content
    raise TaskDataError(
        f"{where}: field prompt must be one chat message {{role, content}}, got {str(prompt)[:120]}"
    )


def _row(record: dict[str, Any], where: str) -> Row:
    source = record["data_source"]
    if not isinstance(source, str) or not source:
        raise TaskDataError(f"{where}: field data_source is empty or not text: {source!r:.80}")
    try:
        task = get_task(source.removesuffix("-test").removesuffix("-train"))
    except TaskDataError as error:
        raise TaskDataError(f"{where}: field data_source: {error}") from None
    reward_model = record["reward_model"]
    truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    return task.make_row(_prompt_text(record["prompt"], where), _ground_truth(task.name, truth, where))


def load_paper_test(path: str | os.PathLike[str], on_bad_row: BadRowHandler | None = None) -> list[Row]:
    """Rows ``{"prompt", "label", "datasource"}`` from a verl-layout test parquet file (or a directory of
    them); ``datasource`` is our task name (``countdown-medium`` for ``countdown-medium-test``).

    A bad row raises TaskDataError naming the file, row and field; with `on_bad_row` it is passed the error
    instead and the row is skipped. A file that cannot be read at all always raises."""
    import pyarrow.parquet as pq

    rows: list[Row] = []
    for file in _paper_files(path):
        try:
            table = pq.read_table(file)
        except Exception as error:
            raise TaskDataError(f"{file}: not a readable parquet file ({error})") from None
        missing = [column for column in REQUIRED_COLUMNS if column not in table.column_names]
        if missing:
            raise TaskDataError(f"{file}: missing column(s) {missing}; has {table.column_names}")
        try:
            records = table.select(list(REQUIRED_COLUMNS)).to_pylist()
        except Exception as error:  # e.g. string cells that are not valid UTF-8
            raise TaskDataError(f"{file}: cannot read its rows ({error})") from None
        for index, record in enumerate(records):
            try:
                rows.append(_row(record, f"{file}, row {index}"))
            except TaskDataError as error:
                bad_row(error, on_bad_row)
    return rows
