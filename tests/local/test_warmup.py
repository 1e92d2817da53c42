"""builtin:tiny warm-up: the cache key follows the tokenizer; the data are the task library's references."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

from openrlhf_mt.config import RunConfig
from openrlhf_mt.engines.local import warmup
from openrlhf_mt.engines.local.model import SPECIAL_TOKENS
from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.base import Task


def plain_character_tokenizer() -> PreTrainedTokenizerFast:
    """The pre-fix tokenizer (" " and "\\n" as plain vocabulary entries), whose reload dropped spaces."""
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *chars])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")


def test_cache_key_changes_with_the_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = RunConfig()
    key = warmup.cache_key(cfg)
    assert key == warmup.cache_key(RunConfig())
    monkeypatch.setattr(warmup, "character_tokenizer", plain_character_tokenizer)
    assert warmup.cache_key(cfg) != key


def test_cache_key_changes_with_the_warmup_version(monkeypatch: pytest.MonkeyPatch) -> None:
    key = warmup.cache_key(RunConfig())
    monkeypatch.setattr(warmup, "WARMUP_VERSION", warmup.WARMUP_VERSION + 1)
    assert warmup.cache_key(RunConfig()) != key


def test_runs_that_share_data_seed_share_the_warmup_and_the_prompts() -> None:
    """Run-level seeds (sampling, data order) over one warm-up and one eval set: `data.seed` fixes both."""
    from openrlhf_mt.config import load_config

    def cfg(*overrides: str) -> RunConfig:
        return load_config(None, overrides=["data.train_size=50", "data.eval_size=5", *overrides])

    assert cfg("seed=3", "data.seed=0").data_seed == 0 and cfg("seed=3").data_seed == 3
    assert warmup.cache_key(cfg("seed=3", "data.seed=0")) == warmup.cache_key(cfg("seed=0"))
    assert warmup.cache_key(cfg("seed=3")) != warmup.cache_key(cfg("seed=0"))


@pytest.mark.parametrize(
    "name", ["tiny-add", "tiny-add-easy", "tiny-countdown", "tiny-countdown-easy", "tiny-arc"]
)
def test_warmup_targets_are_the_task_librarys_references_and_score_one(name: str) -> None:
    task = get_task(name)
    for row in task.generate(20, seed=3):
        response = warmup.reference_response(task, row["label"])
        assert response == task.reference_response(row["label"])
        assert task.score(response, row["label"]) == 1.0


def test_a_task_without_reference_response_is_a_clear_error() -> None:
    class NoReference(Task):
        truth_keys = ("target",)

        def examples(self, seed, start, stop):
            return [("q", {"target": "a"})]

        def grade(self, response, truth):
            raise AssertionError("not graded")

    task = NoReference("no-reference", "a task without a reference response")
    label = task.generate(1)[0]["label"]
    with pytest.raises(ValueError, match="no-reference: has no reference response"):
        warmup.reference_response(task, label)
