"""Batched sampling with a KV cache, response log-probs for training, and scoring sampled responses.

Layout shared by sampling and training: prompts left-padded to one width P, responses right-padded to one
width R, so every response starts at column P and its log-probs are the last R+1 logits (shifted by one).
A hand-written decode loop over a `DynamicCache` is used instead of `model.generate`: it is faster for
small models (PERFORMANCE_NOTES.md) and its randomness comes from one seeded `torch.Generator`, which the
trainer checkpoints so a resumed run samples exactly what the uninterrupted run would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from openrlhf_mt.tasks.base import Task
from openrlhf_mt.tasks.guard import ScoreGuard


@dataclass
class TokenBatch:
    """Prompt+response sequences in the shared layout, ready for a forward pass."""

    input_ids: torch.Tensor  # (B, P + R)
    attention_mask: torch.Tensor  # (B, P + R), 0 on left and right padding
    position_ids: torch.Tensor  # (B, P + R)
    response_mask: torch.Tensor  # (B, R), 1 on response tokens (EOS included)

    @property
    def response_width(self) -> int:
        return self.response_mask.shape[1]

    def select(self, rows: torch.Tensor) -> TokenBatch:
        """The batch's rows `rows` (in that order), in the same layout."""
        return TokenBatch(
            self.input_ids[rows], self.attention_mask[rows], self.position_ids[rows], self.response_mask[rows]
        )


def pack(
    prompts: list[list[int]], responses: list[list[int]], pad_id: int, device: torch.device
) -> TokenBatch:
    """Left-pad prompts and right-pad responses into one TokenBatch (responses may all be empty)."""
    width_p = max(len(p) for p in prompts)
    width_r = max(len(r) for r in responses)
    rows = len(prompts)
    input_ids = torch.full((rows, width_p + width_r), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((rows, width_p + width_r), dtype=torch.long)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        input_ids[i, width_p - len(prompt) : width_p] = torch.tensor(prompt)
        attention_mask[i, width_p - len(prompt) : width_p] = 1
        if response:
            input_ids[i, width_p : width_p + len(response)] = torch.tensor(response)
            attention_mask[i, width_p : width_p + len(response)] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return TokenBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        response_mask=attention_mask[:, width_p:].to(device),
    )


def response_logprobs(model: PreTrainedModel, batch: TokenBatch, temperature: float) -> torch.Tensor:
    """log π(y_t | x, y_<t) of each response token, (B, R) float32, logits divided by the temperature."""
    width_r = batch.response_width
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
        logits_to_keep=width_r + 1,
    ).logits[:, :-1]
    targets = batch.input_ids[:, -width_r:]
    logprobs = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the top token always stays)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    prompts: list[list[int]],
    *,
    n: int = 1,
    eos_id: int,
    pad_id: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
) -> list[list[int]]:
    """`n` sampled responses per prompt, prompt-major (token ids, ending with EOS unless cut at
    `max_new_tokens`). Temperature 0 is greedy decoding.

    Each prompt is encoded once and its KV cache repeated n times, so the prefill (most of the work when
    prompts are longer than responses) does not grow with the number of rollouts.
    """
    device = next(model.parameters()).device
    batch = pack(prompts, [[] for _ in prompts], pad_id, device)
    cache = DynamicCache()
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]
    if n > 1:
        cache.batch_repeat_interleave(n)
        logits = logits.repeat_interleave(n, dim=0)
    attention_mask = batch.attention_mask.repeat_interleave(n, dim=0)
    position_ids = batch.position_ids.repeat_interleave(n, dim=0)
    finished = torch.zeros(len(prompts) * n, dtype=torch.bool, device=device)
    steps = []
    for step in range(max_new_tokens):
        token = _sample_token(logits, temperature, top_p, generator).to(device)
        token = token.masked_fill(finished, pad_id)
        steps.append(token)
        finished |= token == eos_id
        if finished.all() or step == max_new_tokens - 1:
            break
        attention_mask = torch.cat([attention_mask, (~finished).long().unsqueeze(-1)], dim=-1)
        position_ids = position_ids[:, -1:] + 1
        logits = model(
            input_ids=token.unsqueeze(-1),
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
    tokens = torch.stack(steps, dim=-1).tolist()
    responses = []
    for row in tokens:
        end = row.index(eos_id) + 1 if eos_id in row else len(row)
        responses.append(row[:end])
    return responses


def score_responses(
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    responses: list[list[int]],
    labels: list[str],
    train: bool,
    guard: ScoreGuard,
) -> list[float]:
    """Decode sampled responses and score each against its label (train: 1 / 0.1 / 0; eval: 1 / 0); a reward
    function that raises or returns NaN/inf scores 0, counted by `guard`."""
    texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
    return [guard.score(task, text, label, train) for text, label in zip(texts, labels, strict=True)]
