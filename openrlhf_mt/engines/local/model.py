"""The policy: any HF causal LM from a local directory, or `builtin:tiny`, built here without a download.

`builtin:tiny` is a 2M-parameter Qwen2 (hidden 128, 8 layers, 4 heads, MLP 512, tied embeddings) with a
character tokenizer: a `tokenizers` BPE model whose vocabulary is 4 special tokens, printable ASCII and
"\\n" (space and newline in byte-level form), with no merges, so every character is one token. Both
are written in HF format (`save_pretrained`), and from then on loaded like any other model
(`AutoModelForCausalLM`, `AutoTokenizer`). `engines/local/warmup.py` trains it briefly before RL.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

BUILTIN_TINY = "builtin:tiny"
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
BYTE_LEVEL_SPACE, BYTE_LEVEL_NEWLINE = "\u0120", "\u010a"  # "Ġ", "Ċ": GPT-2 byte-level forms of " " and "\n"
TINY_SHAPE = {
    "hidden_size": 128,
    "num_hidden_layers": 8,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 512,
    "max_position_embeddings": 512,
}


@dataclass
class Policy:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    device: torch.device


def character_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character: 4 specials, printable ASCII (32..126) and newline, in byte-level form.

    transformers 5 loads any tokenizer saved beside a Qwen2 config as Qwen2Tokenizer, which puts a
    byte-level pre-tokenizer in front of the vocabulary: a plain " " entry would never be matched and
    spaces would vanish ("add 36+47=" becoming "add36+47="). Space and newline are therefore stored as
    GPT-2's byte-level "Ġ" and "Ċ", so the text survives whichever class loads it. Text never turns into a
    special token: a prompt or response that spells "</s>" or "<pad>" stays characters (split_special_tokens).
    """
    chars = [chr(c) for c in range(33, 127)] + [BYTE_LEVEL_SPACE, BYTE_LEVEL_NEWLINE]
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *chars])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    pad, bos, eos, unk = SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        split_special_tokens=True,
    )


def tiny_qwen2(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **shape: Any) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 over `tokenizer`'s vocabulary: builtin:tiny's shape, or `shape`'s."""
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **{"tie_word_embeddings": True, **TINY_SHAPE, **shape},
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def build_tiny(directory: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised builtin:tiny model and its tokenizer to `directory` (HF format)."""
    tokenizer = character_tokenizer()
    directory = Path(directory)
    tiny_qwen2(tokenizer, seed).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def parameter_count(path: str | Path) -> int:
    """Parameters of a model without loading it: builtin:tiny's shape, else a HF directory's safetensors
    headers (their tensor shapes), else its weight files' sizes at 2 bytes a parameter (an over-count for
    4-byte weights, which is the safe side for a disk check)."""
    if str(path) == BUILTIN_TINY:
        with torch.device("meta"):
            return sum(p.numel() for p in tiny_qwen2(character_tokenizer()).parameters())
    path = Path(path)
    count = 0
    for file in sorted(path.glob("*.safetensors")):
        with open(file, "rb") as handle:
            (header_bytes,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_bytes))
        count += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    if count:
        return count
    weights = (
        [f for f in path.iterdir() if f.suffix in (".bin", ".pt", ".pth", ".gguf")] if path.is_dir() else []
    )
    return sum(f.stat().st_size for f in weights) // 2


def resolve_device(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    """The config's device/dtype ("auto": CUDA + bfloat16 when a GPU is present, else CPU + float32)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("model.device: cuda was asked for, but torch sees no CUDA device (use auto or cpu)")
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" else "float32"
    return torch.device(device), getattr(torch, dtype)


def load_policy(path: str | Path, device: torch.device, dtype: torch.dtype) -> Policy:
    """Load an HF causal LM and its tokenizer from a local directory; left padding for batched sampling."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model.path: {path} is not a HF model directory (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    model.config.use_cache = True
    return Policy(model=model, tokenizer=tokenizer, device=device)
