"""`openrlhf-mt demo`: the quickstart. GRPO and MT-GRPO on three tiny tasks, on a CPU, in about 10 minutes.

1. Warm up `builtin:tiny` on the config's tasks (examples/tiny_cpu.yaml: tiny-add-easy, tiny-countdown,
   tiny-countdown-easy; cached: later demos skip this).
2. Train GRPO and MT-GRPO from that same warm-up and seed, by default as two processes with one CPU thread
   each, which on a 2-core machine beats one process after the other.
3. Write OUT/report.md and OUT/report.png (openrlhf-mt report) and print the table.

What it shows: under GRPO the hardest task (three-number countdown) produces the most zero-gradient groups
and the smallest share of the learning signal; MT-GRPO shifts weight and batch share toward the task that
lags. One seed of benchmarks/reproduce_toy.py (the same config), which has the seeds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from openrlhf_mt.config import ConfigError, load_config
from openrlhf_mt.engines.local.logger import read_metrics
from openrlhf_mt.engines.local.report import Run, load_run, write_report

DEMO_CONFIG = Path(__file__).resolve().parents[3] / "examples" / "tiny_cpu.yaml"
DEMO_METHODS = ("grpo", "mt-grpo")
MAX_JOB_BARS = 4  # more jobs than this share one progress bar
WHAT_TO_LOOK_FOR = """\
GRPO and MT-GRPO trained from the same warmed-up `builtin:tiny` model and seed ({seconds:.0f} s in all on
this machine, warm-up {warmup:.0f} s). What to compare: GRPO weights tasks uniformly and keeps every group,
so the tasks it already solves supply most of the groups that carry a learning signal ("signal share"),
while many of the hardest task's groups are all wrong (its zero-gradient rate is the highest). MT-GRPO drops
zero-gradient groups, gives more weight to the tasks whose reward and improvement lag (IWU), and refills
the batch task by task (RPS), so its batch and signal shares follow its weights. One seed: the standard
errors (±) are over the held-out prompts of this run, not over seeds (benchmarks/reproduce_toy.py has
those)."""
NOISE_SE = 2.0  # a difference counts as shown when it exceeds this many standard errors


@dataclass
class TrainJob:
    """One `openrlhf-mt train` run: its label, output directory, method and config overrides."""

    label: str
    out: Path
    method: str
    overrides: list[str] = field(default_factory=list)

    def command(self, config: Path, threads: int) -> list[str]:
        command = [sys.executable, "-m", "openrlhf_mt.cli", "train", "--config", str(config)]
        command += ["--method", self.method, "--out", str(self.out)]
        for item in [*self.overrides, f"model.threads={threads}", "logging.progress=false"]:
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


def run_parallel(jobs: list[TrainJob], config: Path, steps: int, parallel: int) -> None:
    """Train `jobs` as subprocesses, `parallel` at a time (one CPU thread each when more than one), in the
    given order; a progress bar per job for a few jobs, else one bar over all their steps. Each job's
    output goes to OUT/train.log. Raises RuntimeError naming the jobs that failed and their logs."""
    threads = 1 if parallel > 1 else 0
    pending = list(jobs)
    running: dict[str, tuple[TrainJob, subprocess.Popen, object]] = {}
    progress: dict[str, int] = {}
    per_job = len(jobs) <= MAX_JOB_BARS
    bars = (
        {
            job.label: tqdm(total=steps, desc=f"{job.label:>8}", unit="step", position=i)
            for i, job in enumerate(jobs)
        }
        if per_job
        else {"all": tqdm(total=steps * len(jobs), desc=f"{len(jobs)} runs", unit="step")}
    )
    failed = []
    try:
        while pending or running:
            while pending and len(running) < max(1, parallel):
                job = pending.pop(0)
                job.out.mkdir(parents=True, exist_ok=True)
                log = open(job.out / "train.log", "w")  # noqa: SIM115 (closed when the process ends)
                process = subprocess.Popen(job.command(config, threads), stdout=log, stderr=subprocess.STDOUT)
                running[job.label] = (job, process, log)
            time.sleep(2)
            for label, (job, process, log) in list(running.items()):
                step, text = _latest(job.out / "metrics.jsonl")
                if step != progress.get(label, 0):  # redraw only on progress (keeps non-terminal logs short)
                    bar = bars[label if per_job else "all"]
                    bar.update(step - progress.get(label, 0))
                    bar.set_postfix_str(text if per_job else f"{label}: step {step} {text}")
                    progress[label] = step
                if process.poll() is not None:
                    log.close()
                    del running[label]
                    if process.returncode != 0:
                        failed.append(job)
    finally:
        for _, process, log in running.values():
            process.kill()
            log.close()
        for bar in bars.values():
            bar.close()
    if failed:
        logs = ", ".join(str(job.out / "train.log") for job in failed)
        raise RuntimeError(f"training failed for {', '.join(j.label for j in failed)}; see {logs}")


def _change(first: dict, last: dict, key: str) -> tuple[float, float]:
    """(last - first, its standard error) of an eval number, the two evals taken as independent."""
    se = (first.get(f"{key}_se", 0.0) ** 2 + last.get(f"{key}_se", 0.0) ** 2) ** 0.5
    return last[key] - first[key], se


def _verdict(change: float, se: float) -> str:
    sign = "yes" if change > 0 else "no: it fell"
    return sign if abs(change) > NOISE_SE * se else "not beyond noise"


def findings(runs: list[Run]) -> str:
    """What the demo should show, each point with its numbers and whether this run showed it."""
    by_method = {run.label: run for run in runs}
    grpo, mt = by_method["grpo"], by_method["mt-grpo"]
    tasks = grpo.tasks
    start = grpo.evals[0]
    hardest = min(tasks, key=lambda t: start[f"eval/{t}/accuracy"])
    lines = ["## What to look at, and what this run showed", ""]
    lines.append(
        f"1. **RL trains**: eval accuracy rises under both methods, at least on the easier tasks "
        f"(end − start, ± {NOISE_SE:.0f} standard errors: shown when the change exceeds it)."
    )
    for run in runs:
        first, last = run.evals[0], run.evals[-1]
        cells = []
        for task in tasks:
            change, se = _change(first, last, f"eval/{task}/accuracy")
            cells.append(f"{task} {100 * change:+.1f} ± {100 * NOISE_SE * se:.1f} ({_verdict(change, se)})")
        lines.append(f"   - {run.label}: " + "; ".join(cells))
    worst = [run.evals[-1]["eval/worst_accuracy"] for run in (grpo, mt)]
    change, se = _change(grpo.evals[-1], mt.evals[-1], "eval/worst_accuracy")
    lines.append(
        f"2. **MT-GRPO lifts the worst task**: final worst-task accuracy {100 * worst[1]:.1f} vs GRPO's "
        f"{100 * worst[0]:.1f} %: {100 * change:+.1f} ± {100 * NOISE_SE * se:.1f} points "
        f"({_verdict(change, se)})."
    )
    change, se = _change(grpo.evals[-1], mt.evals[-1], "eval/mean_accuracy")
    lines.append(
        f"   Mean accuracy, MT-GRPO − GRPO: {100 * change:+.1f} ± {100 * NOISE_SE * se:.1f} points "
        "(the paper: about the same mean, a better worst task)."
    )
    grpo_signal = grpo.mean_of(f"signal_share/{hardest}", grpo.train_rows)
    mt_weight = mt.mean_of(f"weights/{hardest}", mt.train_rows)
    mt_batch = mt.mean_of(f"batch_share/{hardest}", mt.train_rows)
    mt_signal = mt.mean_of(f"signal_share/{hardest}", mt.train_rows)
    shown = "yes" if mt_signal > grpo_signal and abs(mt_batch - mt_weight) < 0.1 else "no"
    uniform = 100 / len(tasks)
    lines.append(
        f"3. **The hardest task ({hardest}) gets its share of the learning signal**: under GRPO it supplies "
        f"{100 * grpo_signal:.0f} % of the groups that carry a signal (its weight: {uniform:.0f} %); under "
        f"MT-GRPO its weight averages {100 * mt_weight:.0f} %, its batch share {100 * mt_batch:.0f} % and "
        f"its signal share {100 * mt_signal:.0f} % ({shown})."
    )
    rounds = mt.mean_of("rollout/rounds", mt.train_rows)
    seconds = [run.mean_of("time/step_s", run.train_rows) for run in (grpo, mt)]
    lines.append(
        f"4. **The cost**: MT-GRPO generated {rounds:.1f} rounds per step to fill its quotas; "
        f"{seconds[1]:.1f} s per step against GRPO's {seconds[0]:.1f} s on this machine."
    )
    return "\n".join(lines)


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
    jobs = [TrainJob(method, out / method, method, overrides) for method in DEMO_METHODS]
    try:
        run_parallel(jobs, config, cfg.train.steps, args.jobs)
    except RuntimeError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    total = time.perf_counter() - start
    runs = [load_run(out / method) for method in DEMO_METHODS]
    preamble = WHAT_TO_LOOK_FOR.format(seconds=total, warmup=warmup_seconds) + "\n\n" + findings(runs)
    md, png = write_report([out / m for m in DEMO_METHODS], out, preamble)
    print(md.read_text())
    print(f"[demo] warm-up {warmup_seconds:.0f} s, total {total:.0f} s; wrote {md} and {png}")
    return 0
