"""Our local engine against TRL's GRPOTrainer (issue 11 §4): seconds per GRPO step on the same work, where
each step's time goes against the model's raw throughput on this CPU, and our step's scaling curve.

    bash benchmarks/trl_env.sh                         # once: .venv-trl with trl 1.16
    python benchmarks/bench_trl.py                     # 1-thread compare + scaling (~20 min, one core)
    python benchmarks/bench_trl.py --parts compare --pairs 2 --steps 3 --warmup 1 --threads 2   # + 2 threads
    python benchmarks/bench_trl.py --parts compare --pairs 1 --steps 2 --warmup 1  # smoke, rewrites 1 thread

compare: the warmed-up builtin:tiny model (`openrlhf-mt tiny-model`), 16 prompts x 8 rollouts, 12 new tokens,
4 mini-batch updates per step, GRPO (no filter, clip 0.2, beta 0), fp32, lr 2e-4 constant, AdamW (0.9, 0.99),
grad clip 1. Ours is LocalTrainer (method grpo); TRL is GRPOTrainer (loss "dapo", no vLLM, bf16 and gradient
checkpointing off; benchmarks/trl_worker.py) fed the prompts our engine drew, step by step. Each run is its
own subprocess in its own venv; runs alternate (ours, TRL, ours, TRL, ...) so that the load of a shared
machine falls on both alike; 1-thread runs are pinned to one core (taskset). Seconds per step are wall
times between the ends of consecutive steps of each engine's own training loop, warm-up steps excluded.
Every step's work is checked: the same sequences generated and optimizer steps, the same prompt tokens;
response lengths are sampled, so they match only on average (their ratio is reported).

headroom (part of compare): at the end of each of our runs, in its process, the model alone at the step's
mean shapes, no engine code: forward and forward+backward tokens/s, an AdamW step, a minimal KV-cache
sampling loop (tokens/s), and the core's fp32 matmul rate; each phase of both engines' steps is set against
the time that raw work would take.

scaling: our step time as prompts per step, rollouts per prompt and response length double (from 16, 8,
12). It uses a randomly initialised builtin:tiny, which rarely emits EOS, so responses do grow with the
length limit (the warmed-up model answers in a few tokens whatever the limit).

Writes benchmarks/results/trl.json, trl.md and trl_scaling.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUR_PYTHON = sys.executable
TRL_ENV = ROOT / "benchmarks" / "trl_env.sh"
# The model these numbers were measured on: builtin:tiny warmed up as the demo config did on 2026-12-07,
# before it moved to the toy reproduction's tasks; the prompts are data.tasks' default (these three)
MODEL_WARMUP = (
    "data.tasks=[tiny-add,tiny-countdown,tiny-arc]",
    "model.warmup_steps=800",
    "data.eval_size=64",
)
RESPONSE_TOLERANCE = 0.10  # mean response tokens per step may differ this much (sampled) before we flag it


@dataclass(frozen=True)
class Workload:
    prompts: int = 16
    rollouts: int = 8
    new_tokens: int = 12
    mini_batches: int = 4
    lr: float = 2e-4


# -- the work-matching check (tested in tests/local/test_bench_trl.py) ------------------------------------


def work_differences(ours: list[dict[str, Any]], trl: list[dict[str, Any]]) -> list[str]:
    """What differs between two runs' per-step work (the same steps, warm-up included): every step must
    generate the same number of sequences, take the same optimizer steps and read the same prompt tokens;
    mean response tokens (sampled) may differ by RESPONSE_TOLERANCE. Empty: the same work."""
    differences = []
    if len(ours) != len(trl):
        differences.append(f"steps: ours {len(ours)}, trl {len(trl)}")
    common = min(len(ours), len(trl))
    for key in ("sequences", "optimizer_steps", "prompt_tokens"):
        for step, (a, b) in enumerate(zip(ours[:common], trl[:common], strict=True)):
            if a[key] != b[key]:
                differences.append(f"step {step} {key}: ours {a[key]}, trl {b[key]}")
                break
    mean_ours = statistics.mean(s["response_tokens"] for s in ours)
    mean_trl = statistics.mean(s["response_tokens"] for s in trl)
    if abs(mean_trl / mean_ours - 1) > RESPONSE_TOLERANCE:
        differences.append(
            f"response tokens per step: ours {mean_ours:.0f}, trl {mean_trl:.0f} "
            f"(more than {RESPONSE_TOLERANCE:.0%} apart)"
        )
    return differences


# -- workers: one timed run in a subprocess -----------------------------------------------------------------


def run_ours(args: argparse.Namespace) -> None:
    """One LocalTrainer run; per step: wall seconds, phases, work; optionally the prompts it drew."""
    import openrlhf_mt.engines.local.trainer as trainer_module
    from openrlhf_mt.config import load_config
    from openrlhf_mt.engines.local.trainer import LocalTrainer

    w = Workload(args.prompts, args.rollouts, args.new_tokens, args.mini_batches, args.lr)
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            None,
            method="grpo",
            overrides=[
                f"model.path={args.model}", f"model.threads={args.threads}", "model.device=cpu",
                "model.dtype=float32", f"out={out}", f"train.steps={args.steps}", "eval.every=0",
                "data.train_size=500", "logging.progress=false", "logging.tensorboard=false",
                "checkpoint.keep_best=false", f"rollout.prompts_per_step={w.prompts}",
                f"rollout.rollouts_per_prompt={w.rollouts}", f"rollout.max_new_tokens={w.new_tokens}",
                f"train.mini_batches={w.mini_batches}", f"train.lr={w.lr}", "seed=0",
            ],
        )  # fmt: skip
        trainer = LocalTrainer(cfg)
        drawn: list[dict[str, str]] = []
        counts = {"optimizer_steps": 0, "decoded_positions": 0, "padded_tokens": 0}

        def recording_take(task, take):
            def wrapper(n):
                indices = take(n)
                drawn.extend({"task": task, **trainer.train_rows[task][i]} for i in indices)
                return indices

            return wrapper

        for task, stream in trainer.streams.items():
            stream.take = recording_take(task, stream.take)
        trainer.optimizer.register_step_post_hook(
            lambda *_: counts.update(optimizer_steps=counts["optimizer_steps"] + 1)
        )
        sample = trainer_module.sample

        def counted_sample(model, prompts, **kwargs):  # decode iterations x rows: the sampling loop's work
            responses = sample(model, prompts, **kwargs)
            counts["decoded_positions"] += len(responses) * max(map(len, responses))
            return responses

        trainer_module.sample = counted_sample
        micro_batches = trainer._micro_batches

        def counted_micro_batches(samples):  # the tokens, padding included, each training pass runs over
            micro = micro_batches(samples)
            counts["padded_tokens"] += sum(batch.input_ids.numel() for _, batch in micro)
            return micro

        trainer._micro_batches = counted_micro_batches
        steps, schedule = [], []
        log = trainer.logger.log
        mark = time.perf_counter()

        def step_end(row):
            nonlocal mark
            log(row)
            groups = trainer.step_groups
            steps.append(
                {
                    "wall_s": time.perf_counter() - mark,
                    "generate_s": row["time/generate_s"],
                    "score_s": row["time/score_s"],
                    "sequences": sum(len(g.payload.responses) for g in groups),
                    "prompt_tokens": sum(len(g.payload.prompt) * len(g.payload.responses) for g in groups),
                    "response_tokens": sum(len(r) for g in groups for r in g.payload.responses),
                    **counts,
                }
            )
            schedule.append(list(drawn))
            drawn.clear()
            counts.update(optimizer_steps=0, decoded_positions=0, padded_tokens=0)
            mark = time.perf_counter()

        trainer.logger.log = step_end
        trainer.train()
        result = {"engine": "ours", "threads": args.threads, "steps": steps}
        if args.raw:
            result["raw"] = raw_throughput(trainer.model, steps, w)
    if args.record_schedule:
        Path(args.record_schedule).write_text(json.dumps(schedule))
    Path(args.out).write_text(json.dumps(result))


def raw_throughput(model, steps: list[dict[str, Any]], w: Workload) -> dict[str, Any]:
    """The model alone (no engine code) at this run's mean step shapes, measured in the run's own process
    right after its steps (the same threads and load): forward and forward+backward tokens/s over one
    mini-batch, an AdamW step, a minimal KV-cache sampling loop, and a 1024^3 fp32 matmul's FLOP rate."""
    import torch
    from transformers import DynamicCache

    sequences = statistics.mean(s["sequences"] for s in steps)
    prompt_len = round(statistics.mean(s["prompt_tokens"] for s in steps) / sequences)
    response_len = max(1, round(statistics.mean(s["response_tokens"] for s in steps) / sequences))
    rows, length = round(sequences / w.mini_batches), prompt_len + response_len
    config = model.config
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, config.vocab_size, (rows, length), generator=generator)
    prompt_ids = torch.randint(4, config.vocab_size, (w.prompts, prompt_len), generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-9)

    def median_time(fn, repeats=5):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def response_logprob_sum():
        logits = model(input_ids=ids, use_cache=False, logits_to_keep=response_len + 1).logits[:, :-1]
        return torch.log_softmax(logits, -1).gather(-1, ids[:, -response_len:, None]).sum()

    def forward_backward():
        optimizer.zero_grad(set_to_none=True)
        response_logprob_sum().backward()

    @torch.no_grad()
    def sample():  # shared prefill, then w.new_tokens tokens for prompts x rollouts; no padding, no EOS
        cache = DynamicCache()
        logits = model(input_ids=prompt_ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        cache.batch_repeat_interleave(w.rollouts)
        logits = logits[:, -1].repeat_interleave(w.rollouts, dim=0)
        for step in range(w.new_tokens):
            token = torch.multinomial(torch.softmax(logits, -1), 1)
            if step < w.new_tokens - 1:
                logits = model(input_ids=token, past_key_values=cache, use_cache=True).logits[:, -1]

    model.train()
    fwd_bwd_s = median_time(forward_backward)
    adamw_s = median_time(optimizer.step)
    model.eval()
    with torch.no_grad():
        fwd_s = median_time(response_logprob_sum)
    sample_s = median_time(sample)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    matmul_s = median_time(lambda: a @ b, repeats=20)
    # FLOPs per token: 2 x the weights of every linear layer (the tied output head is one) plus attention's
    # two (length x hidden) products per layer; backward about twice the forward
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    forward_flops = 2 * linear + 4 * config.num_hidden_layers * length * config.hidden_size
    tokens = rows * length
    return {
        "mini_batch_shape": {"sequences": rows, "prompt_tokens": prompt_len, "response_tokens": response_len},
        "forward_tokens_per_s": tokens / fwd_s,
        "forward_backward_tokens_per_s": tokens / fwd_bwd_s,
        "adamw_step_s": adamw_s,
        "sampling_tokens_per_s": w.prompts * w.rollouts * w.new_tokens / sample_s,
        "matmul_gflops": 2 * 1024**3 / matmul_s / 1e9,
        "forward_backward_gflops": 3 * forward_flops * tokens / fwd_bwd_s / 1e9,
    }


# -- the driver --------------------------------------------------------------------------------------------


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def launch(
    command: list[str], threads: int, core: int, log: Path, env: dict[str, str] | None = None
) -> float:
    """Run a worker (pinned to `core` when it uses one thread); returns its wall seconds. Its output goes to
    `log`, shown when it fails."""
    pinned = ["taskset", "-c", str(core)] if threads == 1 else []
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    start = time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(
            pinned + command, stdout=handle, stderr=subprocess.STDOUT, env=environment, cwd=ROOT
        )
    if done.returncode:
        sys.exit(f"worker failed ({done.returncode}): {' '.join(command)}\n{log.read_text()[-3000:]}")
    return time.perf_counter() - start


def ours_command(model: Path, steps: int, threads: int, out: Path, w: Workload, schedule: Path | None = None):
    command = [
        OUR_PYTHON, str(Path(__file__).resolve()), "--worker", "ours", "--model", str(model),
        "--steps", str(steps), "--threads", str(threads), "--out", str(out), "--prompts", str(w.prompts),
        "--rollouts", str(w.rollouts), "--new-tokens", str(w.new_tokens),
        "--mini-batches", str(w.mini_batches), "--lr", str(w.lr),
    ]  # fmt: skip
    return command + (["--record-schedule", str(schedule)] if schedule else [])


def spread(values: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {
        "median": statistics.median(values),
        "p25": quartiles[0],
        "p75": quartiles[2],
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(runs: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """Pooled over runs, warm-up steps left out: s/step spread and the median of each phase and count."""
    steps = [s for run in runs for s in run["steps"][warmup:]]

    def median(key):
        return statistics.median(s.get(key, 0.0) for s in steps)

    rest = [s["wall_s"] - s.get("generate_s", 0.0) - s.get("score_s", 0.0) for s in steps]
    return {
        "s_per_step": spread([s["wall_s"] for s in steps]),
        "run_medians": [statistics.median(s["wall_s"] for s in run["steps"][warmup:]) for run in runs],
        "generate_s": median("generate_s"),
        "score_s": median("score_s"),
        "train_and_rest_s": statistics.median(rest),
        "sequences": median("sequences"),
        "optimizer_steps": median("optimizer_steps"),
        "prompt_tokens": median("prompt_tokens"),
        "response_tokens": statistics.mean(s["response_tokens"] for s in steps),
        "decoded_positions": median("decoded_positions"),
        "padded_tokens": median("padded_tokens"),
        "load_1min": [run["load_before"] for run in runs],
    }


def compare(args: argparse.Namespace, model: Path, work: Path, trl_python: str) -> dict[str, Any]:
    """Alternating runs of both engines at each thread count; the first run of ours records the prompts."""
    w, total = Workload(), args.warmup + args.steps
    schedule = work / "schedule.json"
    results = {}
    for threads in args.threads:
        runs: dict[str, list] = {"ours": [], "trl": []}
        for pair in range(args.pairs):
            for engine in ("ours", "trl"):
                out = work / f"{engine}-{threads}-{pair}.json"
                if engine == "ours":
                    record = None if schedule.exists() else schedule
                    command = [*ours_command(model, total, threads, out, w, record), "--raw"]
                    env = None
                else:
                    command = [
                        trl_python, str(ROOT / "benchmarks" / "trl_worker.py"), "--model", str(model),
                        "--schedule", str(schedule), "--out", str(out), "--threads", str(threads),
                        "--steps", str(total), "--rollouts", str(w.rollouts),
                        "--new-tokens", str(w.new_tokens), "--mini-batches", str(w.mini_batches),
                        "--lr", str(w.lr),
                    ]  # fmt: skip
                    env = {"PYTHONPATH": str(ROOT)}
                load = load_average()
                seconds = launch(command, threads, args.core, out.with_suffix(".log"), env)
                run = json.loads(out.read_text()) | {"load_before": load, "load_after": load_average()}
                runs[engine].append(run)
                median = statistics.median(s["wall_s"] for s in run["steps"][args.warmup :])
                print(
                    f"  {threads} thread(s), pair {pair + 1}/{args.pairs}, {engine:>4}: {median:.2f} s/step "
                    f"(run {seconds:.0f} s, load {load} -> {run['load_after']})",
                    flush=True,
                )
        ours, trl = (summarize(runs[e], args.warmup) for e in ("ours", "trl"))
        paired = [
            statistics.median(s["wall_s"] for s in b["steps"][args.warmup :])
            / statistics.median(s["wall_s"] for s in a["steps"][args.warmup :])
            for a, b in zip(runs["ours"], runs["trl"], strict=True)
        ]
        results[str(threads)] = {
            "ours": ours,
            "trl": trl,
            "headroom": headroom(runs["ours"], ours, trl),
            "ratio_trl_over_ours": trl["s_per_step"]["median"] / ours["s_per_step"]["median"],
            "paired_ratios": paired,
            "work_differences": work_differences(runs["ours"][0]["steps"], runs["trl"][0]["steps"]),
        }
    return results


def headroom(ours_runs: list[dict[str, Any]], ours: dict[str, Any], trl: dict[str, Any]) -> dict[str, Any]:
    """Each engine's phases against the least time the model needs for the step's work at the raw rates
    (medians over our runs): old log-probs (a forward over the batch), a forward+backward over it and one
    AdamW step per mini-batch; sampling: the positions our decode loop ran."""
    w = Workload()
    raw = {key: statistics.median(run["raw"][key] for run in ours_runs) for key in ours_runs[0]["raw"]
           if key != "mini_batch_shape"}  # fmt: skip
    tokens = ours["prompt_tokens"] + ours["response_tokens"]
    train_floor = (
        tokens / raw["forward_tokens_per_s"]
        + tokens / raw["forward_backward_tokens_per_s"]
        + w.mini_batches * raw["adamw_step_s"]
    )
    generate_floor = ours["decoded_positions"] / raw["sampling_tokens_per_s"]
    return {
        "raw": raw | {"mini_batch_shape": ours_runs[0]["raw"]["mini_batch_shape"]},
        "floor_s": {"generate": generate_floor, "train_and_rest": train_floor},
        "ours_over_floor": {
            "generate": ours["generate_s"] / generate_floor,
            "train_and_rest": ours["train_and_rest_s"] / train_floor,
        },
        "trl_over_floor": {
            "generate": trl["generate_s"] / generate_floor,
            "train_and_rest": trl["train_and_rest_s"] / train_floor,
        },
    }


SCALING_BASE = {"prompts": 16, "rollouts": 8, "new_tokens": 12}
SCALING_AXES = {"prompts": [8, 16, 32, 64], "rollouts": [4, 8, 16, 32], "new_tokens": [12, 24, 48, 96]}


def scaling(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Our step time (1 thread, pinned) as each of B, N, L doubles; random-weights builtin:tiny."""
    from openrlhf_mt.engines.local.model import build_tiny

    model = build_tiny(work / "random-tiny")
    points = {}
    for axis, values in SCALING_AXES.items():
        for value in values:
            shape = SCALING_BASE | {axis: value}
            key = (shape["prompts"], shape["rollouts"], shape["new_tokens"])
            if key in points:
                continue
            out = work / f"scaling-{'-'.join(map(str, key))}.json"
            w = Workload(*key)
            load = load_average()
            launch(
                ours_command(model, args.scaling_steps + 1, 1, out, w), 1, args.core, out.with_suffix(".log")
            )
            summary = summarize([json.loads(out.read_text()) | {"load_before": load}], warmup=1)
            points[key] = {**shape, **summary}
            print(
                f"  scaling B={key[0]} N={key[1]} L={key[2]}: {summary['s_per_step']['median']:.2f} s/step",
                flush=True,
            )
    return list(points.values())


# -- results -----------------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Our local engine against TRL's GRPOTrainer",
        "",
        f"{results['machine']}; torch {results['versions']['torch']}, transformers "
        f"{results['versions']['transformers']}, trl {results['versions']['trl']}. Workload per step: "
        f"{results['workload']}.",
        "",
    ]
    for part, run in results["runs"].items():
        lines.append(f"- {part}: `{run['command']}`, {run['started']} to {run['finished']}")
    lines.append("")
    if "compare" in results:
        lines += [
            "## Seconds per GRPO step (median over steps of all runs, warm-up excluded; [p25, p75])",
            "",
            "| threads | ours s/step | TRL s/step | TRL / ours | paired ratios (per run pair) "
            "| ours generate / score / train+rest s | TRL generate / score / train+rest s "
            "| 1-min load during runs |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for threads, r in results["compare"].items():
            o, t = r["ours"], r["trl"]
            loads = o["load_1min"] + t["load_1min"]

            def cell(x):
                s = x["s_per_step"]
                return f"{s['median']:.2f} [{s['p25']:.2f}, {s['p75']:.2f}] (n={s['n']})"

            def phases(x):
                return f"{x['generate_s']:.2f} / {x['score_s']:.3f} / {x['train_and_rest_s']:.2f}"

            lines.append(
                f"| {threads} | {cell(o)} | {cell(t)} | **{r['ratio_trl_over_ours']:.2f}x** | "
                f"{', '.join(f'{p:.2f}' for p in r['paired_ratios'])} | {phases(o)} | {phases(t)} | "
                f"{min(loads):.1f}-{max(loads):.1f} |"
            )
        lines += ["", "Work per step (medians; response tokens: mean):", ""]
        lines += [
            "| threads | engine | sequences | optimizer steps | prompt tokens | response tokens "
            "| tokens per training pass, padding included |",
            "|---|---|---|---|---|---|---|",
        ]
        for threads, r in results["compare"].items():
            for engine in ("ours", "trl"):
                x = r[engine]
                lines.append(
                    f"| {threads} | {engine} | {x['sequences']:.0f} | {x['optimizer_steps']:.0f} | "
                    f"{x['prompt_tokens']:.0f} | {x['response_tokens']:.0f} | {x['padded_tokens']:.0f} |"
                )
            differences = r["work_differences"] or ["none"]
            lines.append(f"| {threads} | check | work differences: {'; '.join(differences)} | | | | |")
        lines += [
            "",
            "## Headroom: each phase against the model's raw throughput",
            "",
            "Raw: the model alone at the step's mean shapes, measured at the end of each of our runs in its "
            "process (same threads, same moment's load); floor: the least time the step's work takes at "
            "those rates (generate: the positions our decode loop ran; train: a forward for the old "
            "log-probs, a forward+backward and an AdamW step per mini-batch, over the step's tokens).",
            "",
            "| threads | forward tok/s | fwd+bwd tok/s | fwd+bwd GFLOP/s (matmul peak) | AdamW step ms "
            "| KV-cache sampling tok/s | generate: floor s, ours / floor, TRL / floor "
            "| train+rest: floor s, ours / floor, TRL / floor |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for threads, r in results["compare"].items():
            h, raw = r["headroom"], r["headroom"]["raw"]
            floor, o, t = h["floor_s"], h["ours_over_floor"], h["trl_over_floor"]
            lines.append(
                f"| {threads} | {raw['forward_tokens_per_s']:,.0f} "
                f"| {raw['forward_backward_tokens_per_s']:,.0f} | "
                f"{raw['forward_backward_gflops']:.1f} ({raw['matmul_gflops']:.0f}) | "
                f"{raw['adamw_step_s'] * 1000:.1f} | {raw['sampling_tokens_per_s']:,.0f} | "
                f"{floor['generate']:.2f}, {o['generate']:.1f}x, {t['generate']:.1f}x | "
                f"{floor['train_and_rest']:.2f}, {o['train_and_rest']:.1f}x, {t['train_and_rest']:.1f}x |"
            )
        shape = results["compare"][next(iter(results["compare"]))]["headroom"]["raw"]["mini_batch_shape"]
        lines += ["", f"Mini-batch shape of the raw measurement: {shape}."]
    if "scaling" in results:
        lines += [
            "",
            "## Scaling (ours, 1 thread, random-weights builtin:tiny so responses reach the length limit)",
            "",
            "| prompts B | rollouts N | max new tokens L | s/step | generate s | train+rest s "
            "| response tokens/seq | load |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in results["scaling"]:
            lines.append(
                f"| {p['prompts']} | {p['rollouts']} | {p['new_tokens']} | {p['s_per_step']['median']:.2f} | "
                f"{p['generate_s']:.2f} | {p['train_and_rest_s']:.2f} | "
                f"{p['response_tokens'] / p['sequences']:.1f} | {p['load_1min'][0]} |"
            )
        lines += ["", "![scaling](trl_scaling.png)"]
    return "\n".join(lines) + "\n"


def plot_scaling(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    labels = {
        "prompts": "prompts per step B",
        "rollouts": "rollouts per prompt N",
        "new_tokens": "max new tokens L",
    }
    for ax, (axis, values) in zip(axes, SCALING_AXES.items(), strict=True):
        rows = [
            next(
                p
                for p in points
                if p[axis] == v and all(p[k] == SCALING_BASE[k] for k in SCALING_BASE if k != axis)
            )
            for v in values
        ]
        step = [r["s_per_step"]["median"] for r in rows]
        ax.plot(values, step, "o-", label="step")
        ax.plot(values, [r["generate_s"] for r in rows], "s--", label="generate")
        ax.plot(values, [r["train_and_rest_s"] for r in rows], "^--", label="train + rest")
        ax.plot(
            values, [step[0] * v / values[0] for v in values], ":", color="grey", label="linear from first"
        )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
        ax.set_xlabel(labels[axis])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("seconds (1 thread)")
    axes[0].legend(fontsize=8)
    figure.suptitle("Local engine: GRPO step time as B, N, L double (others at 16, 8, 12)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def driver(args: argparse.Namespace) -> None:
    import torch
    import transformers

    trl_python = subprocess.run(
        ["bash", str(TRL_ENV)], check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    trl_version = subprocess.run(
        [trl_python, "-c", "import trl; print(trl.__version__)"], check=True, capture_output=True, text=True
    ).stdout.strip()
    # parts run separately (`--parts scaling`) update their own sections of the results file
    path = RESULTS / "trl.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    results |= {
        "machine": args.machine
        or f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), no GPU",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl_version,
        },
        "workload": asdict(Workload()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = Path(args.model) if args.model else work / "tiny-hf"
        if not args.model and "compare" in args.parts:
            print("writing the warmed-up builtin:tiny model (openrlhf-mt tiny-model)", flush=True)
            command = [OUR_PYTHON, "-m", "openrlhf_mt.cli", "tiny-model", "--out", str(model)]
            command += [arg for item in MODEL_WARMUP for arg in ("--set", item)]
            launch(command, 1, args.core, work / "tiny.log")
        for part in args.parts:
            print(f"{part}:", flush=True)
            started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            if part == "compare":  # one section per thread count: `--threads 2` alone keeps the 1-thread one
                results["compare"] = results.get("compare", {}) | compare(args, model, work, trl_python)
                part = f"compare, {' and '.join(map(str, args.threads))} thread(s)"
            else:
                results["scaling"] = scaling(args, work)
            results.setdefault("runs", {})[part] = {
                "command": f"python benchmarks/bench_trl.py {' '.join(sys.argv[1:])}",
                "started": started,
                "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (RESULTS / "trl.md").write_text(text)
    if "scaling" in results:
        plot_scaling(results["scaling"], RESULTS / "trl_scaling.png")
    print("\n" + text)
    print(f"wrote {path}, {RESULTS / 'trl.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["compare", "scaling"], choices=["compare", "scaling"])
    parser.add_argument(
        "--pairs", type=int, default=5, help="alternating (ours, TRL) run pairs per thread count"
    )
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of each run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--core", type=int, default=1, help="the core 1-thread runs are pinned to")
    parser.add_argument("--scaling-steps", type=int, default=4, help="timed steps per scaling point")
    parser.add_argument("--machine", default=None, help="machine description for the results file")
    # worker arguments (bench_trl.py starts itself with --worker)
    parser.add_argument("--worker", choices=["ours"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help="HF model directory (default: warmed-up builtin:tiny)")
    for flag in ("--out", "--record-schedule"):
        parser.add_argument(flag, default=None, help=argparse.SUPPRESS)
    for flag, default in (("--prompts", 16), ("--rollouts", 8), ("--new-tokens", 12), ("--mini-batches", 4)):
        parser.add_argument(flag, type=int, default=default, help=argparse.SUPPRESS)
    parser.add_argument("--lr", type=float, default=2e-4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        args.threads = args.threads[0]
        run_ours(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
