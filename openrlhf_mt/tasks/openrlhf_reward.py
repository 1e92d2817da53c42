"""OpenRLHF reward function for every task of this library: ``--reward.remote_url <this file>``.

OpenRLHF 0.11.2 (``openrlhf/utils/agent.py``, ``SingleTurnAgentExecutor``) loads ``reward_func`` from a
``.py`` path and calls it once per sample as ``reward_func([query], [prompt], [label])``, where
``query = tokenizer.decode(prompt_ids + response_ids, skip_special_tokens=False)``. It reads
``rewards`` (used for training), ``scores`` (dynamic filtering; falls back to ``rewards``) and
``extra_logs`` (each value logged per sample, so every sample must carry the same keys). If the
function raises, upstream logs it and leaves the sample without a reward, which fails later, far from
the cause: so this function never raises; a failed sample (a label that is not a task's JSON, a task's
reward function that raises or returns NaN/inf: `tasks.guard.ScoreGuard`) scores 0, counts in
``reward_failed``, and the first failure of each task and cause is logged with its message.

Each sample is routed by the ``"task"`` field of its label. The response is the query after the prompt
(the query starts with the decoded prompt; else the text after the prompt's last 64 characters; else
the whole query), without the special tokens at its very end such as ``</s>`` or ``<|im_end|>``. Whitespace
before them is kept: the released scorer reads the decoded text with its special tokens, so a response
ending in ``"\n<|endoftext|>"`` has an empty last line there, and here too (docs/parity.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.base import decode_label
from openrlhf_mt.tasks.guard import ScoreGuard

# Special tokens as tokenizers print them: <|im_end|>, <|endoftext|>, <｜end▁of▁sentence｜>, </s>, <eos>, ...
_SPECIAL_TOKEN = re.compile(r"<\|[^<>\s]{1,40}\|>|<｜[^<>\s]{1,40}｜>|</?s>|<eos>|<pad>|<unk>")
_MAX_SPECIAL_TOKEN_CHARS = 48
_PROMPT_TAIL_CHARS = 64
GUARD = ScoreGuard()  # one per process (each Ray worker that scores): counts and logs its failures


def trailing_special_tokens_start(text: str, end: int | None = None, limit: int = 16) -> int:
    """Where the special tokens (up to `limit`) that end `text[:end]` begin; whitespace before them stays."""
    end = len(text) if end is None else end
    for _ in range(limit):
        start = text.rfind("<", max(0, end - _MAX_SPECIAL_TOKEN_CHARS), end)
        if start < 0 or not _SPECIAL_TOKEN.fullmatch(text, start, end):
            break
        end = start
    return end


def strip_trailing_special_tokens(text: str, limit: int = 16) -> str:
    """`text` without the special tokens (up to `limit`) that end it; whitespace is kept."""
    return text[: trailing_special_tokens_start(text, limit=limit)]


def split_response(query: str, prompt: str) -> str:
    """The response part of OpenRLHF's query text (prompt + response, special tokens kept): one slice of
    the query, however long it is."""
    if query.startswith(prompt):
        start = len(prompt)
    else:
        tail = prompt[-_PROMPT_TAIL_CHARS:]
        position = query.rfind(tail) if tail else -1
        start = position + len(tail) if position >= 0 else 0
    return query[start : max(start, trailing_special_tokens_start(query))]


def _score_one(query: Any, prompt: Any, label: Any) -> tuple[float, float, bool]:
    """(train reward, eval score, failed) for one sample; never raises."""
    try:
        task = get_task(decode_label(label)["task"])
        response = split_response(str(query), str(prompt))
    except Exception as error:  # never let one sample take the rollout down
        GUARD.record("(unknown)", "bad_sample", f"reward_func got {type(error).__name__}: {error}")
        return 0.0, 0.0, True
    reward = GUARD.try_score(task, response, label, train=True)
    if reward is None:
        return 0.0, 0.0, True
    return reward, (1.0 if reward == 1.0 else 0.0), False


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], **kwargs: Any) -> dict:
    """``rewards`` 1 / 0.1 / 0 (train), ``scores`` 1 / 0 (correct or not: upstream's dynamic filtering
    on scores then drops all-correct and all-wrong groups, the spec's "strict" filter), ``extra_logs``
    with ``accuracy`` and ``reward_failed`` per sample; all float tensors of shape (batch,)."""
    results = [_score_one(q, p, lab) for q, p, lab in zip(queries, prompts, labels, strict=False)]
    # A batch whose lists differ in length is a caller bug; the samples without a partner score 0.
    results += [(0.0, 0.0, True)] * (len(queries) - len(results))
    rewards = torch.tensor([r for r, _, _ in results], dtype=torch.float32)
    accuracy = torch.tensor([a for _, a, _ in results], dtype=torch.float32)
    failed = torch.tensor([float(f) for _, _, f in results], dtype=torch.float32)
    return {
        "rewards": rewards,
        "scores": accuracy,
        "extra_logs": {"accuracy": accuracy, "reward_failed": failed},
    }
