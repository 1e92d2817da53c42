"""The paper's test parquet files (../shared/data/paper_test, or $OPENRLHF_MT_PAPER_TEST)."""

import os
from pathlib import Path

import pytest

DEFAULT_PAPER_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "paper_test"


@pytest.fixture(scope="session")
def paper_test_dir_or_none() -> Path | None:
    path = Path(os.environ.get("OPENRLHF_MT_PAPER_TEST", DEFAULT_PAPER_TEST))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def paper_test_dir(paper_test_dir_or_none) -> Path:
    if paper_test_dir_or_none is None:
        pytest.skip(
            f"the paper's test parquet files are not at {DEFAULT_PAPER_TEST} (or $OPENRLHF_MT_PAPER_TEST)"
        )
    return paper_test_dir_or_none
