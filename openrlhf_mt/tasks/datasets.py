"""Build and read train/test datasets that OpenRLHF reads directly (``prompt``, ``label``, ``datasource``).

``build_datasets(BuildConfig(...))`` writes ``train.jsonl``, ``train.parquet``, ``test.jsonl``,
``test.parquet`` and ``manifest.json`` into one directory. For each task, train items come from seed
``2 * seed`` and test items from seed ``2 * seed + 1``; train rows whose prompt text also occurs in the
test split are dropped and replaced by further items (the manifest counts them). Generation runs in
worker processes over fixed chunks of item indices, so the result does not depend on the number of
workers, and chunks are cached on disk (zebra 5x5 makes ~4 prompts/s per core).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import functools
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from openrlhf_mt.tasks.base import (
    BadRowHandler,
    MissingTaskData,
    Row,
    TaskDataError,
    bad_row,
    decode_label,
)
from openrlhf_mt.tasks.reasoning_gym_utils import reasoning_gym_version
from openrlhf_mt.tasks.registry import get_task
from openrlhf_mt.tasks.streams import paper_test_rows

COLUMNS = ("prompt", "label", "datasource")
CHUNK_SIZE = 100
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openrlhf-mt" / "tasks"
LEVELS_EXP2 = ("easy", "medium", "hard")
PRESETS: dict[str, tuple[str, ...]] = {
    "exp1": ("countdown-medium", "zebra-medium", "arc-medium"),
    "exp2": tuple(f"{family}-{level}" for family in ("countdown", "zebra", "arc") for level in LEVELS_EXP2),
}


@dataclasses.dataclass
class BuildConfig:
    tasks: list[str]
    out: Path
    train_size: int = 10_000  # prompts per task
    test_size: int = 200  # prompts per task
    seed: int = 0
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    cache_dir: Path | None = DEFAULT_CACHE_DIR  # None: no cache
    progress: bool = True
    paper_test: Path | None = None  # take each task's test split from the paper's test parquet files

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.tasks = [name.strip() for name in self.tasks]
        if not self.tasks or any(not name for name in self.tasks):
            raise TaskDataError(f"--tasks: need a comma-separated list of task names, got {self.tasks}")
        duplicates = [name for name, count in Counter(self.tasks).items() if count > 1]
        if duplicates:
            raise TaskDataError(f"--tasks: {duplicates} listed more than once")
        for flag, value in (("--train-size", self.train_size), ("--test-size", self.test_size)):
            if value < 0:
                raise TaskDataError(f"{flag} must be >= 0, got {value}")
        if self.train_size + self.test_size == 0:
            raise TaskDataError("--train-size and --test-size are both 0: nothing to build")
        if self.workers < 1:
            raise TaskDataError(f"--workers must be >= 1, got {self.workers}")


def generator_versions() -> dict[str, str]:
    """Versions from package metadata (``reasoning_gym.__version__`` is wrong on 0.1.25)."""
    try:
        ours = metadata.version("openrlhf-mt")
    except metadata.PackageNotFoundError:
        from openrlhf_mt import __version__ as ours
    return {"openrlhf-mt": ours, "reasoning-gym": reasoning_gym_version()}


@functools.cache
def _code_fingerprint() -> str:
    """Hash of this package's task code: a cache entry made by other code is never reused."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _read_cache(path: Path) -> list[Row]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError):  # missing or damaged: generate again
        return []


def _chunk_rows(
    task_name: str, seed: int, block: int, start: int, stop: int, cache_dir: str | None
) -> list[Row]:
    """Rows `start`..`stop - 1` (inside the cache block that begins at item `block`) of one task;
    the cache file of a block grows as later items are asked for. Runs in worker processes."""
    task = get_task(task_name)
    if cache_dir is None or not type(task).__module__.startswith("openrlhf_mt."):  # plug-ins may change
        return task.generate_range(seed, start, stop)
    key = json.dumps([task_name, seed, block, generator_versions(), _code_fingerprint()], sort_keys=True)
    path = Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.jsonl"
    cached = _read_cache(path)
    if len(cached) < stop - block:
        cached += task.generate_range(seed, block + len(cached), stop)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in cached), encoding="utf-8"
        )
        temporary.replace(path)
    return cached[start - block : stop - block]


class _Generator:
    """Runs chunk requests on a process pool (or in this process) with one progress bar."""

    def __init__(self, config: BuildConfig, total: int) -> None:
        from tqdm.auto import tqdm

        self.cache_dir = None if config.cache_dir is None else str(config.cache_dir)
        parallel = config.workers > 1 and total > CHUNK_SIZE
        self.pool = concurrent.futures.ProcessPoolExecutor(config.workers) if parallel else None
        self.bar = tqdm(total=total, unit="prompt", desc="generating", disable=not config.progress)

    def rows(self, requests: Sequence[tuple[str, int, int, int]]) -> list[list[Row]]:
        """For each request (task, seed, start, stop), rows `start`..`stop - 1` of that task; all requests
        run together on the pool, in chunks that never cross a cache block."""
        calls, owners = [], []
        for owner, (task, seed, start, stop) in enumerate(requests):
            begin = start
            while begin < stop:
                block = begin - begin % CHUNK_SIZE
                end = min(block + CHUNK_SIZE, stop)
                calls.append((task, seed, block, begin, end, self.cache_dir))
                owners.append(owner)
                begin = end
        if self.pool is None or len(calls) < 2:
            results: Iterable[list[Row]] = (_chunk_rows(*call) for call in calls)
        else:
            results = self.pool.map(_chunk_rows, *zip(*calls, strict=True))
        rows: list[list[Row]] = [[] for _ in requests]
        for owner, chunk in zip(owners, results, strict=True):
            rows[owner] += chunk
            self.bar.update(len(chunk))
        return rows

    def close(self) -> None:
        self.bar.close()
        if self.pool is not None:
            self.pool.shutdown()


def build_datasets(config: BuildConfig) -> dict[str, Any]:
    """Generate, de-overlap and write the datasets; returns the manifest (also written as JSON)."""
    for name in config.tasks:
        get_task(name)  # unknown names fail here, before any work
    train_seed, test_seed = 2 * config.seed, 2 * config.seed + 1
    paper_tests = _paper_test_rows(config) if config.paper_test is not None else None
    generator = _Generator(config, total=len(config.tasks) * (config.train_size + config.test_size))
    try:
        if paper_tests is None:
            generated = generator.rows([(name, test_seed, 0, config.test_size) for name in config.tasks])
            tests = dict(zip(config.tasks, generated, strict=True))
        else:
            tests = paper_tests
            generator.bar.update(sum(map(len, tests.values())))
        trains, collisions = _train_rows(config, generator, train_seed, tests)
    finally:
        generator.close()
    train = [row for name in config.tasks for row in trains[name]]
    test = [row for name in config.tasks for row in tests[name]]
    return _write(config, train, test, collisions, train_seed, test_seed)


def _train_rows(
    config: BuildConfig, generator: _Generator, seed: int, tests: dict[str, list[Row]]
) -> tuple[dict[str, list[Row]], dict[str, int]]:
    """Each task's train rows without any prompt of its test split; dropped rows are replaced by the
    task's next items. Returns (rows per task, number dropped per task)."""
    test_prompts = {name: {row["prompt"] for row in rows} for name, rows in tests.items()}
    trains: dict[str, list[Row]] = {name: [] for name in config.tasks}
    collisions = dict.fromkeys(config.tasks, 0)
    next_index = dict.fromkeys(config.tasks, 0)
    while short := {
        name: config.train_size - len(trains[name])
        for name in config.tasks
        if len(trains[name]) < config.train_size
    }:
        for name in short:
            if next_index[name] >= 2 * config.train_size + CHUNK_SIZE:
                raise TaskDataError(
                    f"task {name!r}: more than half of its train prompts also occur in its test split; "
                    f"the task has too few distinct prompts for --train-size {config.train_size}"
                )
        requests = [(name, seed, next_index[name], next_index[name] + want) for name, want in short.items()]
        for (name, _, _, stop), batch in zip(requests, generator.rows(requests), strict=True):
            kept = [row for row in batch if row["prompt"] not in test_prompts[name]]
            collisions[name] += len(batch) - len(kept)
            generator.bar.total += len(batch) - len(kept)
            trains[name] += kept
            next_index[name] = stop
    return trains, collisions


def _paper_test_rows(config: BuildConfig) -> dict[str, list[Row]]:
    """Each task's first --test-size rows of the paper's test files."""
    by_task = paper_test_rows(config.paper_test, config.tasks)
    for name in config.tasks:
        available = len(by_task.get(name, []))
        if available < config.test_size:
            not_paper = "" if name in by_task else " (--paper-test covers only the paper's tasks)"
            raise TaskDataError(
                f"{config.paper_test}: has {available} test rows for task {name!r}{not_paper}, "
                f"--test-size asks for {config.test_size}"
            )
    return {name: by_task.get(name, [])[: config.test_size] for name in config.tasks}


def _write(
    config: BuildConfig,
    train: list[Row],
    test: list[Row],
    collisions: dict[str, int],
    train_seed: int,
    test_seed: int,
) -> dict[str, Any]:
    config.out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, rows in (("train", train), ("test", test)):
        files[split] = write_rows(rows, config.out / f"{split}.jsonl") + write_rows(
            rows, config.out / f"{split}.parquet"
        )
    manifest = {
        "tasks": config.tasks,
        "train_size_per_task": config.train_size,
        "test_size_per_task": config.test_size,
        "seed": config.seed,
        "train_seed": train_seed,
        "test_seed": None if config.paper_test else test_seed,
        "test_source": str(config.paper_test) if config.paper_test else "generated",
        "rows": {
            "train": dict(Counter(r["datasource"] for r in train)),
            "test": dict(Counter(r["datasource"] for r in test)),
        },
        "train_test_collisions_removed": collisions,
        "generator_versions": generator_versions(),
        "files": files,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (config.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def write_rows(rows: Sequence[Row], path: str | os.PathLike[str]) -> list[str]:
    """Write rows as ``.jsonl`` or ``.parquet`` (by suffix); returns [the path written]."""
    path = Path(path)
    if path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(
                    json.dumps({column: row[column] for column in COLUMNS}, ensure_ascii=False) + "\n"
                )
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(column, pa.string()) for column in COLUMNS])
        pq.write_table(
            pa.Table.from_pylist([{c: row[c] for c in COLUMNS} for row in rows], schema=schema), path
        )
    else:
        raise TaskDataError(f"{path}: unknown file type {path.suffix!r}; use .jsonl or .parquet")
    return [str(path)]


def _jsonl_records(path: Path, on_bad_row: BadRowHandler | None) -> Iterator[tuple[str, Any]]:
    """(where, record) per non-blank line; a line that is not UTF-8 or not JSON is a bad row."""
    lines = path.read_bytes().split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{path}, line {number}"
        try:
            yield where, json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            bad_row(TaskDataError(f"{where}: not valid UTF-8 ({error})"), on_bad_row)
        except ValueError as error:
            truncated = " (the file ends here: truncated?)" if number == len(lines) else ""
            bad_row(TaskDataError(f"{where}: not valid JSON ({error}){truncated}"), on_bad_row)


def _parquet_records(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:
        raise TaskDataError(f"{path}: not a readable parquet file ({error})") from None
    missing = [column for column in ("prompt", "label") if column not in table.column_names]
    if missing:
        raise TaskDataError(f"{path}: missing column(s) {missing}; has {table.column_names}")
    try:
        records = table.to_pylist()
    except Exception as error:  # e.g. string cells that are not valid UTF-8
        raise TaskDataError(f"{path}: cannot read its rows ({error})") from None
    for index, record in enumerate(records):
        yield f"{path}, row {index}", record


def _checked_row(where: str, record: Any) -> tuple[Row, str]:
    """A record as a row (prompt text, label JSON with a known task and its ground truth), and its task."""
    if not isinstance(record, dict):
        raise TaskDataError(
            f"{where}: expected an object with fields {list(COLUMNS)}, got {type(record).__name__}"
        )
    for field in ("prompt", "label"):
        if not isinstance(record.get(field), str):
            raise TaskDataError(f"{where}: field {field!r} missing or not text")
    label = decode_label(record["label"], where=f"{where}, field 'label'")
    try:
        task = get_task(label["task"])
    except TaskDataError as error:
        raise TaskDataError(f"{where}, field 'label': {error}") from None
    task.truth(label, where=f"{where}, field 'label'")
    datasource = record.get("datasource") or task.name
    return {"prompt": record["prompt"], "label": record["label"], "datasource": datasource}, task.name


def checked_rows(
    path: str | os.PathLike[str], on_bad_row: BadRowHandler | None = None
) -> Iterator[tuple[str, Row, str]]:
    """(where, row, task) for each valid row of a ``.jsonl``/``.parquet`` dataset; see `read_rows`."""
    path = Path(path)
    if not path.exists():
        raise TaskDataError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        records = _jsonl_records(path, on_bad_row)
    elif path.suffix == ".parquet":
        records = _parquet_records(path)
    else:
        raise TaskDataError(f"{path}: unknown file type {path.suffix!r}; use .jsonl or .parquet")
    label_of_prompt: dict[str, tuple[str, str]] = {}  # prompt -> (its label, where it was first seen)
    for where, record in records:
        try:
            row, task = _checked_row(where, record)
            first = label_of_prompt.setdefault(row["prompt"], (row["label"], where))
            if first[0] != row["label"]:
                raise TaskDataError(
                    f"{where}, field 'label': the same prompt as {first[1]} with another label "
                    f"({row['label'][:80]!r} vs {first[0][:80]!r})"
                )
        except TaskDataError as error:
            bad_row(error, on_bad_row)
            continue
        yield where, row, task


def read_rows(
    path: str | os.PathLike[str],
    tasks: Sequence[str] | None = None,
    on_bad_row: BadRowHandler | None = None,
) -> list[Row]:
    """Rows of a ``.jsonl``/``.parquet`` dataset, each checked (UTF-8, JSON, prompt text, label JSON with a
    known task and its ground truth, no prompt given two different labels); with `tasks`, only those tasks,
    and each must have rows (else MissingTaskData).

    A bad row raises TaskDataError naming the file, the row (jsonl: line) and the field; with `on_bad_row`,
    the error is passed to it instead and the row is skipped (the caller counts and reports it).
    """
    rows: list[Row] = []
    present: Counter[str] = Counter()
    for _, row, task in checked_rows(path, on_bad_row):
        present[task] += 1
        if tasks is None or task in tasks:
            rows.append(row)
    require_tasks(path, present, tasks)
    return rows


def require_tasks(path: str | os.PathLike[str], present: Counter[str], tasks: Sequence[str] | None) -> None:
    """MissingTaskData unless each of `tasks` has rows in `present` (rows per task of the file `path`)."""
    empty = [name for name in tasks or () if not present[name]]
    if empty:
        raise MissingTaskData(f"{path}: no rows for task(s) {empty}; it has {dict(present) or 'no rows'}")
