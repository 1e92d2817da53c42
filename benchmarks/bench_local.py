"""Throughput of the local engine: sampled tokens/s, trained tokens/s, seconds per training step.

    python benchmarks/bench_local.py                                   # builtin:tiny shape, CPU
    python benchmarks/bench_local.py --model-size 0.5b --device cuda   # Qwen2-0.5B shape, one GPU, bf16

Models have random weights (throughput does not depend on them); responses never stop early (EOS is
ignored), so every sequence is exactly prompt + new tokens long. Sampling and training go through the
engine's own code (rollout.sample, rollout.response_logprobs, loss.policy_loss, AdamW); "s/step" is a
full LocalTrainer GRPO step (generate, score, old log-probs, PPO mini-batches) on the tiny tasks (tiny
model only: a random 0.5B model has no tokenizer for them). Prints a table and writes
benchmarks/results/local[_<size>_<device>].json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from openrlhf_mt.engines.local.loss import policy_loss
from openrlhf_mt.engines.local.model import TINY_SHAPE, build_tiny
from openrlhf_mt.engines.local.rollout import pack, response_logprobs, sample

SHAPES = {
    "tiny": {**TINY_SHAPE, "vocab_size": 100},
    "0.5b": {  # Qwen2-0.5B
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "max_position_embeddings": 4096,
        "vocab_size": 151936,
    },
}
RESULTS = Path(__file__).resolve().parent / "results"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_sampling(
    model, device, prompts: int, rollouts: int, prompt_len: int, new_tokens: int, repeats: int
):
    vocab = model.config.vocab_size
    generator = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(4, vocab, (prompts, prompt_len), generator=torch.Generator().manual_seed(0)).tolist()

    def run():
        sample(
            model, ids, n=rollouts, eos_id=-1, pad_id=0, max_new_tokens=new_tokens,
            temperature=1.0, top_p=1.0, generator=generator,
        )  # fmt: skip

    seconds = timed(run, device, repeats)
    return {"seconds": seconds, "tokens_per_s": prompts * rollouts * new_tokens / seconds}


def bench_training(model, device, sequences: int, prompt_len: int, response_len: int, repeats: int):
    vocab = model.config.vocab_size
    rng = torch.Generator().manual_seed(1)
    prompts = torch.randint(4, vocab, (sequences, prompt_len), generator=rng).tolist()
    responses = torch.randint(4, vocab, (sequences, response_len), generator=rng).tolist()
    batch = pack(prompts, responses, 0, device)
    advantages = torch.randn(sequences, generator=rng).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    with torch.no_grad():
        old = response_logprobs(model, batch, 1.0)

    def run():
        optimizer.zero_grad(set_to_none=True)
        logprobs = response_logprobs(model, batch, 1.0)
        policy_loss(
            logprobs, old, advantages, batch.response_mask, clip_low=0.2, clip_high=0.28
        ).loss.backward()
        optimizer.step()

    seconds = timed(run, device, repeats)
    tokens = sequences * (prompt_len + response_len)
    return {
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "response_tokens_per_s": sequences * response_len / seconds,
    }


def bench_trainer_step(directory: Path, steps: int) -> dict[str, float]:
    """Seconds per full GRPO step of LocalTrainer on the tiny tasks (16 prompts x 8 rollouts)."""
    from openrlhf_mt.config import load_config
    from openrlhf_mt.engines.local.trainer import LocalTrainer

    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            None,
            method="grpo",
            overrides=[
                f"model.path={directory}", f"out={out}", f"train.steps={steps + 1}", "eval.every=0",
                "data.train_size=500", "logging.progress=false", "logging.tensorboard=false",
                "rollout.prompts_per_step=16", "rollout.rollouts_per_prompt=8", "rollout.max_new_tokens=12",
            ],
        )  # fmt: skip
        rows = LocalTrainer(cfg).train()[1:]  # the first step pays for one-time setup
    return {
        "s_per_step": statistics.median(r["time/step_s"] for r in rows),
        "generate_s": statistics.median(r["time/generate_s"] for r in rows),
        "train_s": statistics.median(r["time/train_s"] for r in rows),
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-size", choices=list(SHAPES), default="tiny")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--machine", default=None, help="machine description for the results file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = args.device == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    machine = args.machine or (
        torch.cuda.get_device_name()
        if gpu
        else f"{torch.get_num_threads()}-thread CPU ({platform.processor() or platform.machine()}), no GPU"
    )
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model_size == "tiny":
            directory = build_tiny(tmp)
            model = Qwen2ForCausalLM.from_pretrained(directory, dtype=dtype).to(device)
        else:
            model = Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=True, **SHAPES[args.model_size])).to(
                device, dtype
            )
        params = sum(p.numel() for p in model.parameters())
        precision = str(dtype).removeprefix("torch.")
        if args.model_size == "tiny":  # the demo's shapes: 16-48 prompts x 8 rollouts, ~40-token prompts
            cases = {"sampling": (48, 8, 40, 12), "training": (128, 40, 12)}
        else:  # the paper's 3-task shape, scaled to one GPU: 32 prompts x 8 rollouts, 256 + 256 tokens
            cases = {"sampling": (32, 8, 256, 256), "training": (16, 256, 256)}
        results = {
            "machine": machine,
            "model": f"{args.model_size} ({params / 1e6:.1f}M params, random weights, {precision})",
            "torch": torch.__version__,
            "sampling": {"prompts, rollouts, prompt_len, new_tokens": cases["sampling"]},
            "training": {"sequences, prompt_len, response_len": cases["training"]},
        }
        model.eval()
        results["sampling"] |= bench_sampling(model, device, *cases["sampling"], args.repeats)
        model.train()
        results["training"] |= bench_training(model, device, *cases["training"], args.repeats)
        if args.model_size == "tiny":
            results["trainer_step"] = bench_trainer_step(directory, steps=args.repeats + 2)

    sampled, trained = results["sampling"], results["training"]
    rows = [
        (
            "sampling (KV cache)",
            f"{sampled['tokens_per_s']:,.0f} generated tokens/s",
            f"{sampled['seconds']:.2f} s",
        ),
        (
            "training (fwd+bwd+AdamW)",
            f"{trained['tokens_per_s']:,.0f} tokens/s",
            f"{trained['seconds']:.2f} s",
        ),
    ]
    if "trainer_step" in results:
        step = results["trainer_step"]
        split = f"generate {step['generate_s']:.2f} s, train {step['train_s']:.2f} s"
        rows.append(("GRPO step, 16x8 rollouts", f"{step['s_per_step']:.2f} s/step", split))
    print(f"\n{results['model']} on {machine}\n")
    print(f"| {'what':<26} | {'throughput':<32} | {'time':<32} |\n|{'-' * 28}|{'-' * 34}|{'-' * 34}|")
    for what, throughput, seconds in rows:
        print(f"| {what:<26} | {throughput:<32} | {seconds:<32} |")
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if (args.model_size, args.device) == ("tiny", "cpu") else f"_{args.model_size}_{args.device}"
    path = RESULTS / f"local{suffix}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
