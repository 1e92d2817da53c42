"""`openrlhf-mt demo`: the quickstart. GRPO and MT-GRPO on three tiny tasks, on a CPU, in about 10 minutes.

1. Warm up `builtin:tiny` on tiny-add / tiny-countdown / tiny-arc (cached: later demos skip this).
2. Train GRPO and MT-GRPO from that same warm-up and seed (examples/tiny_cpu.yaml), by default as two
   processes with one CPU thread each, which on a 2-core machine beats one process after the other.
3. Write OUT/report.md and OUT/report.png (openrlhf-mt report) and print the table.

What it shows: under GRPO the hardest task (1-D ARC) produces mostly zero-gradient groups and the smallest
share of the learning signal; MT-GRPO shifts weight and batch share toward the task that lags.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from openrlhf_mt.config import ConfigError, RunConfig, load_config
from openrlhf_mt.engines.local.logger import read_metrics
from openrlhf_mt.engines.local.report import write_report

DEMO_CONFIG = Path(__file__).resolve().parents[3] / "examples" / "tiny_cpu.yaml"
DEMO_METHODS = ("grpo", "mt-grpo")
WHAT_TO_LOOK_FOR = """\
GRPO and MT-GRPO trained from the same warmed-up `builtin:tiny` model and seed ({seconds:.0f} s in all on
this machine, warm-up {warmup:.0f} s). What to compare: GRPO weights tasks uniformly and keeps every group,
so the tasks it already solves sometimes supply most of the groups that carry a learning signal ("signal
share"), while the hardest task's groups are mostly all-wrong (zero-gradient rate near 1). MT-GRPO drops
zero-gradient groups, gives more weight to the tasks whose reward and improvement lag (IWU), and refills
the batch task by task (RPS), so its batch and signal shares follow its weights. Single seed, small eval
sets (mean@k on 64 prompts per task): differences of a point or two are noise."""


def _train_command(config: Path, method: str, out: Path, overrides: list[str], threads: int) -> list[str]:
    command = [sys.executable, "-m", "openrlhf_mt.cli", "train", "--config", str(config)]
    command += ["--method", method, "--out", str(out)]
    for item in [*overrides, f"model.threads={threads}", "logging.progress=false"]:
        command += ["--set", item]
    return command


def _latest(metrics: Path) -> tuple[int, str]:
    """(last step, 'worst/mean' of the last eval) of a run in progress."""
    if not metrics.is_file():
        return 0, ""
    try:
        rows = read_metrics(metrics)
    except ValueError:  # a line being written right now
        return 0, ""
    evals = [r for r in rows if "eval/worst_accuracy" in r]
    last_eval = (
        f"worst {evals[-1]['eval/worst_accuracy']:.2f} mean {evals[-1]['eval/mean_accuracy']:.2f}"
        if evals
        else ""
    )
    return (rows[-1]["step"] if rows else 0), last_eval


def run_parallel(cfg: RunConfig, config: Path, out: Path, overrides: list[str], jobs: int) -> None:
    """Train the demo methods as subprocesses, `jobs` at a time, with one progress bar per method."""
    threads = 1 if jobs > 1 else 0
    pending = list(DEMO_METHODS)
    running: dict[str, tuple[subprocess.Popen, object]] = {}
    bars = {
        m: tqdm(total=cfg.train.steps, desc=f"{m:>8}", unit="step", position=i)
        for i, m in enumerate(DEMO_METHODS)
    }
    failed = []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                method = pending.pop(0)
                (out / method).mkdir(parents=True, exist_ok=True)
                log = open(out / method / "train.log", "w")  # noqa: SIM115 (closed when the process ends)
                command = _train_command(config, method, out / method, overrides, threads)
                running[method] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
            time.sleep(2)
            for method, (process, log) in list(running.items()):
                step, text = _latest(out / method / "metrics.jsonl")
                if step != bars[method].n:  # redraw only on progress (keeps logs of non-terminals short)
                    bars[method].n = step
                    bars[method].set_postfix_str(text)
                if process.poll() is not None:
                    log.close()
                    del running[method]
                    if process.returncode != 0:
                        failed.append(method)
    finally:
        for process, log in running.values():
            process.kill()
            log.close()
        for bar in bars.values():
            bar.close()
    if failed:
        logs = ", ".join(str(out / m / "train.log") for m in failed)
        raise RuntimeError(f"demo: training failed for {', '.join(failed)}; see {logs}")


def main(argv: list[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(DEMO_CONFIG), help="base config (default: %(default)s)")
    parser.add_argument("--out", default="runs/demo", help="output directory (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="training steps per method (default: the config's)")
    parser.add_argument("--jobs", type=int, default=2, help="methods trained at once (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    config = Path(args.config)
    try:
        cfg = load_config(config, overrides=overrides)
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    start = time.perf_counter()
    if cfg.model.path == "builtin:tiny":
        from openrlhf_mt.engines.local.warmup import warmed_up_tiny

        print("[demo] warm-up of builtin:tiny (cached after the first run)")
        warmed_up_tiny(cfg)
    warmup_seconds = time.perf_counter() - start
    print(f"[demo] training {', '.join(DEMO_METHODS)}: {cfg.train.steps} steps each, {args.jobs} at a time")
    run_parallel(cfg, config, out, overrides, max(1, args.jobs))
    total = time.perf_counter() - start
    preamble = WHAT_TO_LOOK_FOR.format(seconds=total, warmup=warmup_seconds)
    md, png = write_report([out / m for m in DEMO_METHODS], out, preamble)
    print(md.read_text())
    print(f"[demo] warm-up {warmup_seconds:.0f} s, total {total:.0f} s; wrote {md} and {png}")
    return 0
