"""TRL's GRPOTrainer on the prompts our engine trained on: one timed run, for bench_trl.py.

Runs inside the TRL venv (benchmarks/trl_env.sh), never the project's: bench_trl.py starts it with that
venv's python and the repository on PYTHONPATH (only `openrlhf_mt.tasks` is imported: the same rewards).

    .venv-trl/bin/python benchmarks/trl_worker.py --model DIR --schedule FILE --out FILE --threads 1

The schedule holds, per step, the prompts (text, task, label) our engine drew; the dataset is those rows in
that order with TRL's shuffling off, so step k of both engines samples the same 16 prompts. One of our steps
(generate 16 x 8, then 4 mini-batch updates) is one TRL generation batch of 128 sequences split into
`steps_per_generation` = 4 optimizer steps of 32. Writes per step: wall seconds, generate and score seconds,
sequences, optimizer steps, prompt and response tokens (the same record as bench_trl.py's own worker).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from openrlhf_mt.tasks import get_task
from openrlhf_mt.tasks.guard import ScoreGuard


class StepRecorder(TrainerCallback):
    """Per generation batch (= one of our steps): wall time from the previous batch's last optimizer step to
    this one's, plus the phase times and work counts that the wrapped trainer methods add to `current`."""

    def __init__(self, updates_per_step: int) -> None:
        self.updates_per_step = updates_per_step
        self.steps: list[dict[str, float]] = []
        self.current: dict[str, float] = {}
        self.optimizer_steps = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.mark = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.optimizer_steps += 1
        if self.optimizer_steps % self.updates_per_step == 0:
            now = time.perf_counter()
            self.steps.append({"wall_s": now - self.mark, **self.current})
            self.steps[-1]["optimizer_steps"] = self.updates_per_step
            self.mark, self.current = now, {}

    def timed(self, fn, phase: str):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            self.current[phase] = self.current.get(phase, 0.0) + time.perf_counter() - start
            return result

        return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--schedule", required=True, help="JSON: per step, a list of {prompt, task, label}")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, required=True, help="steps to run (warm-up included)")
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--mini-batches", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    schedule = json.loads(Path(args.schedule).read_text())[: args.steps]
    prompts_per_step = len(schedule[0])
    rows = [row for step in schedule for row in step]
    guard = ScoreGuard()

    def reward(prompts, completions, task, label, **kwargs):  # our reward functions, as our engine scores
        return [
            guard.score(get_task(t), c, lab, True) for t, c, lab in zip(task, completions, label, strict=True)
        ]

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    sequences = prompts_per_step * args.rollouts
    recorder = StepRecorder(args.mini_batches)
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out,
            use_cpu=True,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            use_vllm=False,
            loss_type="dapo",
            beta=0.0,
            epsilon=0.2,  # our GRPO preset's clip (epsilon_high defaults to it)
            num_generations=args.rollouts,
            num_iterations=1,
            per_device_train_batch_size=sequences // args.mini_batches,
            gradient_accumulation_steps=1,
            steps_per_generation=args.mini_batches,
            max_completion_length=args.new_tokens,
            temperature=1.0,
            top_p=1.0,
            learning_rate=args.lr,
            lr_scheduler_type="constant",
            adam_beta2=0.99,  # our engine's AdamW betas (0.9, 0.99)
            weight_decay=0.0,
            max_grad_norm=1.0,
            max_steps=len(schedule) * args.mini_batches,
            shuffle_dataset=False,
            logging_steps=args.mini_batches,  # a metrics row per generation batch (ours: one per step)
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[recorder],
        )
        generate_and_score = trainer._generate_and_score_completions

        def counted(inputs):
            output = generate_and_score(inputs)
            recorder.current["sequences"] = int(output["completion_ids"].shape[0])
            recorder.current["prompt_tokens"] = int(output["prompt_mask"].sum())
            recorder.current["response_tokens"] = int(output["completion_mask"].sum())
            # every mini-batch keeps the whole generation batch's width: the tokens a training pass runs over
            width = output["prompt_ids"].shape[1] + output["completion_ids"].shape[1]
            recorder.current["padded_tokens"] = int(output["completion_ids"].shape[0]) * width
            return output

        trainer._generate_and_score_completions = counted
        trainer.model.generate = recorder.timed(trainer.model.generate, "generate_s")
        trainer._calculate_rewards = recorder.timed(trainer._calculate_rewards, "score_s")
        trainer.train()
    Path(args.out).write_text(json.dumps({"engine": "trl", "threads": args.threads, "steps": recorder.steps}))


if __name__ == "__main__":
    main()
