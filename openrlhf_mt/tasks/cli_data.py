"""`openrlhf-mt data`: build train/test datasets, check a dataset file, convert the paper's test sets."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from openrlhf_mt.tasks.base import TaskDataError
from openrlhf_mt.tasks.datasets import (
    DEFAULT_CACHE_DIR,
    PRESETS,
    BuildConfig,
    build_datasets,
    read_rows,
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

    paper = commands.add_parser("paper-test", help="convert the paper's verl-layout test parquet files")
    paper.add_argument("path", type=Path, help="a parquet file or a directory of them")
    paper.add_argument("--out", type=Path, required=True, help="output .jsonl or .parquet")
    return parser


def check(path: Path, tasks: list[str] | None) -> None:
    """Validate one dataset file, or every .jsonl/.parquet file in a directory; print rows per task, and for
    a directory, how many test prompts also occur in the train split of the same format."""
    files = [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".parquet"))
    if not files:
        raise TaskDataError(f"{path}: no .jsonl or .parquet files in this directory")
    prompts = {}
    for file in files:
        rows = read_rows(file, tasks)
        counts = Counter(json.loads(row["label"])["task"] for row in rows)
        print(f"{file}: {len(rows)} valid rows; per task: {dict(sorted(counts.items()))}")
        prompts[file.stem, file.suffix] = {row["prompt"] for row in rows}
    for suffix in (".jsonl", ".parquet"):
        if ("train", suffix) in prompts and ("test", suffix) in prompts:
            shared = len(prompts["train", suffix] & prompts["test", suffix])
            print(f"test{suffix} prompts that are also in train{suffix}: {shared}")


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
            check(args.path, args.tasks.split(",") if args.tasks else None)
        else:
            rows = load_paper_test(args.path)
            write_rows(rows, args.out)
            counts = Counter(row["datasource"] for row in rows)
            print(f"wrote {len(rows)} rows to {args.out}; per task: {dict(sorted(counts.items()))}")
    except TaskDataError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return 0
