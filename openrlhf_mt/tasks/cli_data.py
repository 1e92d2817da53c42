"""`openrlhf-mt data`: build train/test datasets, check a dataset file, convert the paper's test sets."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from openrlhf_mt.tasks.base import TaskDataError
from openrlhf_mt.tasks.datasets import (
    DEFAULT_CACHE_DIR,
    PRESETS,
    BuildConfig,
    build_datasets,
    checked_rows,
    require_tasks,
    write_rows,
)
from openrlhf_mt.tasks.paper_test import load_paper_test

DEFAULTS = BuildConfig(tasks=["unused"], out=Path("unused"))


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="generate train/test jsonl + parquet and a manifest")
    which = build.add_mutually_exclusive_group(required=True)
    which.add_argument("--tasks", help="comma-separated task names (see `openrlhf-mt tasks`)")
    which.add_argument(
        "--preset", choices=sorted(PRESETS), help="; ".join(f"{k}: {','.join(v)}" for k, v in PRESETS.items())
    )
    build.add_argument("--train-size", type=int, default=DEFAULTS.train_size, help="train prompts per task")
    build.add_argument("--test-size", type=int, default=DEFAULTS.test_size, help="test prompts per task")
    build.add_argument("--seed", type=int, default=DEFAULTS.seed)
    build.add_argument("--out", type=Path, required=True, help="output directory")
    build.add_argument("--workers", type=int, default=DEFAULTS.workers, help="generator processes")
    build.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    build.add_argument("--no-cache", action="store_true", help="neither read nor write the generation cache")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument(
        "--paper-test", type=Path, help="take test splits from the paper's test parquet dir/file"
    )

    check = commands.add_parser(
        "check", help="validate a .jsonl/.parquet dataset (or each one in a directory), count rows per task"
    )
    check.add_argument("path", type=Path, help="a .jsonl/.parquet file, or a directory such as `build --out`")
    check.add_argument("--tasks", help="comma-separated tasks that must be present (others are ignored)")
    check.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="count and report bad rows (and test prompts also in train) instead of stopping at the first",
    )

    paper = commands.add_parser("paper-test", help="convert the paper's verl-layout test parquet files")
    paper.add_argument("path", type=Path, help="a parquet file or a directory of them")
    paper.add_argument("--out", type=Path, required=True, help="output .jsonl or .parquet")
    paper.add_argument("--skip-bad-rows", action="store_true", help="leave bad rows out (counted, reported)")
    return parser


class BadRows:
    """Collects the rows skipped under --skip-bad-rows; `report` prints how many and the first few."""

    def __init__(self) -> None:
        self.errors: list[TaskDataError] = []

    def __call__(self, error: TaskDataError) -> None:
        self.errors.append(error)

    def report(self, what: str) -> None:
        if self.errors:
            print(
                f"{what}: skipped {len(self.errors)} bad row(s); the first: "
                + "; ".join(map(str, self.errors[:3]))
            )
        self.errors.clear()


def check(path: Path, tasks: list[str] | None, skip_bad_rows: bool = False) -> None:
    """Validate one dataset file, or every .jsonl/.parquet file in a directory; print rows per task and
    repeated prompts. For a directory, a test prompt that also occurs in the train split of the same format
    is an error naming both rows (with `skip_bad_rows`: counted). Bad rows: an error naming the file, row
    and field (with `skip_bad_rows`: counted and reported)."""
    files = [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".parquet"))
    if not files:
        raise TaskDataError(f"{path}: no .jsonl or .parquet files in this directory")
    bad = BadRows() if skip_bad_rows else None
    where_of = {}
    for file in files:
        rows = list(checked_rows(file, bad))
        require_tasks(file, Counter(task for _, _, task in rows), tasks)
        wanted = [(where, row, task) for where, row, task in rows if tasks is None or task in tasks]
        counts = Counter(task for _, _, task in wanted)
        print(f"{file}: {len(wanted)} valid rows; per task: {dict(sorted(counts.items()))}")
        repeats = len(wanted) - len({row["prompt"] for _, row, _ in wanted})
        if repeats:
            print(
                f"{file}: {repeats} row(s) repeat an earlier row's prompt and label (trained on more often)"
            )
        if bad is not None:
            bad.report(str(file))
        first_where = where_of[file.stem, file.suffix] = {}
        for where, row, _ in wanted:
            first_where.setdefault(row["prompt"], where)
    for suffix in (".jsonl", ".parquet"):
        train, test = where_of.get(("train", suffix)), where_of.get(("test", suffix))
        if train is None or test is None:
            continue
        shared = [prompt for prompt in test if prompt in train]
        print(f"test{suffix} prompts that are also in train{suffix}: {len(shared)}")
        if shared and not skip_bad_rows:
            raise TaskDataError(
                f"{test[shared[0]]}, field 'prompt': also in the train split, {train[shared[0]]} "
                f"({len(shared)} such test prompt(s) in all; a test prompt seen in training inflates the "
                "test accuracy)"
            )


def main(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    try:
        if args.command == "build":
            config = BuildConfig(
                tasks=list(PRESETS[args.preset]) if args.preset else args.tasks.split(","),
                out=args.out,
                train_size=args.train_size,
                test_size=args.test_size,
                seed=args.seed,
                workers=args.workers,
                cache_dir=None if args.no_cache else args.cache_dir,
                progress=not args.quiet,
                paper_test=args.paper_test,
            )
            manifest = build_datasets(config)
            print(
                f"wrote {', '.join(manifest['files']['train'] + manifest['files']['test'])} and manifest.json"
            )
            print(f"rows per task: train {manifest['rows']['train']}, test {manifest['rows']['test']}")
            removed = manifest["train_test_collisions_removed"]
            print(f"train prompts dropped because they are in the test split: {removed}")
        elif args.command == "check":
            check(args.path, args.tasks.split(",") if args.tasks else None, args.skip_bad_rows)
        else:
            bad = BadRows() if args.skip_bad_rows else None
            rows = load_paper_test(args.path, bad)
            if bad is not None:
                bad.report(str(args.path))
            write_rows(rows, args.out)
            counts = Counter(row["datasource"] for row in rows)
            print(f"wrote {len(rows)} rows to {args.out}; per task: {dict(sorted(counts.items()))}")
    except TaskDataError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return 0
