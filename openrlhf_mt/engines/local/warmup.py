"""Supervised warm-up of `builtin:tiny`, cached: a random 2M-parameter model solves nothing, so RL has no
signal. A short run of next-token training on reference answers (the task mix in equal parts) gives every
task a non-zero but different success rate, which is the starting point the paper's failure mode needs.

The result is saved in HF format under `model.cache_dir/tiny-<hash>`, the hash covering everything that
decides the weights (model shape, vocabulary, tasks, data sizes, warm-up settings, seed), so later runs
with the same settings load it instead of training again. warmup.json beside it records the per-task
greedy accuracy on the held-out prompts and how long the warm-up took.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from openrlhf_mt.config import RunConfig
from openrlhf_mt.engines.local.model import TINY_SHAPE, build_tiny, character_tokenizer, load_policy
from openrlhf_mt.engines.local.rollout import pack, sample, score_responses
from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.base import Row, Task
from openrlhf_mt.tasks.guard import ScoreGuard
from openrlhf_mt.tasks.paper import PAPER_TASKS
from openrlhf_mt.tasks.streams import paper_test_rows, split_rows

WARMUP_VERSION = 4  # bump when the warm-up procedure changes, so stale caches are not reused
# 2: byte-level character tokenizer (version 1 caches hold one that drops spaces when reloaded)
# 4: float32 instead of bfloat16 autocast (for a 2M model on a CPU the casts cost more than they save)


def reference_response(task: Task, label: str) -> str:
    """The task library's reference response; warm-up data needs one for every row."""
    response = task.reference_response(label)
    if response is None:
        raise ValueError(
            f"task {task.name}: has no reference response, so builtin:tiny cannot be warmed up on it"
        )
    return response


def cache_key(cfg: RunConfig, paper_test_used: bool = True) -> str:
    settings = {
        "version": WARMUP_VERSION,
        "shape": TINY_SHAPE,
        "vocab": character_tokenizer().get_vocab(),
        "tasks": cfg.data.tasks,
        "train_size": cfg.data.train_size,
        "eval_size": cfg.data.eval_size,
        "steps": cfg.model.warmup_steps,
        "batch_size": cfg.model.warmup_batch_size,
        "lr": cfg.model.warmup_lr,
        "seed": cfg.data_seed,
    }
    if paper_test_used and cfg.eval.paper_test is not None and any(n in PAPER_TASKS for n in cfg.data.tasks):
        # its test prompts leave the warm-up data; keyed only then, so other caches keep their keys
        settings["paper_test"] = cfg.eval.paper_test
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def warmed_up_tiny(cfg: RunConfig, paper_rows: dict[str, list[Row]] | None = None) -> Path:
    """The directory of the warmed-up builtin:tiny model for `cfg`, training it first if not cached.

    `paper_rows`: the paper's test rows the run evaluates on (left out of the warm-up data), as the trainer
    loaded them; by default read from `eval.paper_test`."""
    if paper_rows is None:
        paper_rows = paper_test_rows(cfg.eval.paper_test, cfg.data.tasks)
    cache = Path(cfg.model.cache_dir).expanduser() / f"tiny-{cache_key(cfg, bool(paper_rows))}"
    if (cache / "warmup.json").is_file():
        return cache
    tmp = cache.with_name(cache.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_tiny(tmp, seed=cfg.data_seed)
    report = train_warmup(tmp, cfg, paper_rows)
    (tmp / "warmup.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)
    return cache


def train_warmup(directory: Path, cfg: RunConfig, paper_rows: dict[str, list[Row]]) -> dict[str, Any]:
    """Next-token training on (prompt, reference answer + EOS), loss on the answer tokens only; the paper's
    test rows in `paper_rows` are held out (never warmed up on)."""
    start = time.perf_counter()
    torch.manual_seed(cfg.data_seed)
    policy = load_policy(directory, torch.device("cpu"), torch.float32)
    model, tokenizer = policy.model, policy.tokenizer
    tasks = [get_task(name) for name in cfg.data.tasks]
    examples, held_out = [], {}
    for task in tasks:
        train_rows, eval_rows = split_rows(
            task, cfg.data.train_size, cfg.data.eval_size, cfg.data_seed, paper_rows.get(task.name)
        )
        prompts = [tokenizer(row["prompt"])["input_ids"] for row in train_rows]
        answers = [tokenizer(reference_response(task, row["label"]))["input_ids"] for row in train_rows]
        examples.append([(p, [*a, tokenizer.eos_token_id]) for p, a in zip(prompts, answers, strict=True)])
        held_out[task.name] = eval_rows

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.model.warmup_lr, weight_decay=0.01)
    steps = cfg.model.warmup_steps
    warm = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / max(steps, 1))),
    )
    rng = np.random.default_rng(cfg.data_seed)
    pad = tokenizer.pad_token_id
    model.train()
    bar = tqdm(range(steps), desc="warm-up builtin:tiny", unit="step", disable=not cfg.logging.progress)
    for _ in bar:
        task_of_row = rng.integers(len(tasks), size=cfg.model.warmup_batch_size)
        batch = [examples[k][rng.integers(len(examples[k]))] for k in task_of_row]
        # one forward per task: prompt lengths differ a lot between tasks, so this saves padding
        parts = [[batch[i] for i in np.flatnonzero(task_of_row == k)] for k in range(len(tasks))]
        packed = [
            pack([p for p, _ in part], [a for _, a in part], pad, policy.device) for part in parts if part
        ]
        tokens = sum(b.response_mask.sum().item() for b in packed)
        optimizer.zero_grad(set_to_none=True)
        loss_value = 0.0
        for b in packed:
            logits = model(
                input_ids=b.input_ids,
                attention_mask=b.attention_mask,
                position_ids=b.position_ids,
                logits_to_keep=b.response_width + 1,
            ).logits[:, :-1]
            targets = b.input_ids[:, -b.response_width :]
            token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            loss = (token_loss * b.response_mask).sum() / tokens
            loss.backward()
            loss_value += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss_value:.3f}")
    model.save_pretrained(directory)

    model.eval()
    accuracy = {}
    generator = torch.Generator().manual_seed(cfg.data_seed)
    for task in tasks:
        rows = held_out[task.name]
        responses = sample(
            model,
            [tokenizer(row["prompt"])["input_ids"] for row in rows],
            eos_id=tokenizer.eos_token_id,
            pad_id=tokenizer.pad_token_id,
            max_new_tokens=cfg.rollout.max_new_tokens,
            temperature=0.0,
            top_p=1.0,
            generator=generator,
        )
        labels = [row["label"] for row in rows]
        scores = score_responses(tokenizer, task, responses, labels, train=False, guard=ScoreGuard())
        accuracy[task.name] = float(np.mean(scores))
    return {
        "greedy_accuracy": accuracy,
        "final_loss": loss_value if steps else None,
        "seconds": time.perf_counter() - start,
        "steps": steps,
    }
