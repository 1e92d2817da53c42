"""Fuzzing every scorer with hostile model output: exceptions, bad results and the slowest call.

Targets and inputs are benchmarks/fuzz_inputs.py's: the extractor, the countdown evaluator, every registered
task (train and eval reward in one call), the reward options, the rg: tasks of RG_TASKS and the OpenRLHF
reward function. Every input goes to every target.

    python benchmarks/bench_fuzz.py [--inputs 100000] [--seed 0] [--atheris-runs 100000] [--rg-sweep 500]

1. hypothesis: `--inputs` generated texts split over the input families, then the fixed megabyte cases.
2. atheris (coverage-guided, libFuzzer; when `import atheris` works: `pip install atheris`): `--atheris-runs`
   inputs to the same targets, in a subprocess with the task library instrumented for coverage.
3. every reasoning-gym dataset that `rg:` accepts, with its default config: `--rg-sweep` texts each
   (hypothesis, the same families), scored against a generated row's label.

The 10 ms bound is judged on CPU time (a shared machine deschedules a process now and then, which wall time
counts): a call over 10 ms of CPU or wall time is timed three times again, and its best time is what counts.
Writes benchmarks/results/fuzz.{md,json}.
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: import from the repository

RESULTS = Path(__file__).resolve().parent / "results"
MACHINE = "2-core CPU, no GPU"
LIMIT_S = 0.010
RETRIES = 3


@dataclass
class Stats:
    """What one target did over many inputs."""

    calls: int = 0
    cpu_total_s: float = 0.0
    exceptions: Counter = field(default_factory=Counter)
    first_exception: str = ""
    bad_results: int = 0
    first_bad_result: str = ""
    slowest_s: float = 0.0  # CPU time; a call past LIMIT_S is re-timed and its best time kept
    slowest_input: str = ""
    slowest_family: str = ""
    over_limit: int = 0  # calls whose best re-timed CPU time is past LIMIT_S

    def to_json(self) -> dict:
        return {
            "calls": self.calls,
            "cpu_mean_us": 1e6 * self.cpu_total_s / max(self.calls, 1),
            "exceptions": dict(self.exceptions),
            "first_exception": self.first_exception,
            "bad_results": self.bad_results,
            "first_bad_result": self.first_bad_result,
            "slowest_cpu_ms": 1e3 * self.slowest_s,
            "slowest_input": self.slowest_input,
            "slowest_family": self.slowest_family,
            "calls_over_10ms": self.over_limit,
        }


def _describe(text: str) -> str:
    return f"{len(text)} chars: {text[:48]!r}" + ("..." if len(text) > 48 else "")


def _timed(call, argument: object) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call(argument)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def run_target(target, stats: Stats, text: str, family: str) -> None:
    """One call of one target, recorded in `stats`; never raises."""
    stats.calls += 1
    try:
        argument = target.prepare(text)
        result, cpu, wall = _timed(target.call, argument)
    except Exception as error:  # what the benchmark is looking for
        stats.exceptions[type(error).__name__] += 1
        if not stats.first_exception:
            stats.first_exception = f"{type(error).__name__}: {str(error)[:200]} on {_describe(text)}"
        return
    stats.cpu_total_s += cpu
    if not target.check(result):
        stats.bad_results += 1
        if not stats.first_bad_result:
            stats.first_bad_result = f"{str(result)[:80]} on {_describe(text)}"
    if max(cpu, wall) > LIMIT_S:  # descheduled, or really slow: the best of a few more tries decides
        cpu = min(cpu, *(_timed(target.call, argument)[1] for _ in range(RETRIES)))
        stats.over_limit += cpu > LIMIT_S
    if cpu > stats.slowest_s:
        stats.slowest_s, stats.slowest_input, stats.slowest_family = cpu, _describe(text), family


def for_examples(strategy, count: int, seed: int, body) -> None:
    """Call `body(text)` on `count` texts that hypothesis generates from `strategy` (no shrinking: `body`
    never raises)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    def test(text: str) -> None:
        body(text)

    run = hypothesis_seed(seed)(
        settings(
            max_examples=count,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(test))
    )
    run()


def hypothesis_pass(targets, stats: dict[str, Stats], inputs: int, seed: int) -> dict[str, int]:
    """`inputs` texts from the families (in equal parts) through every target; returns texts per family."""
    from tqdm.auto import tqdm

    from benchmarks.fuzz_inputs import FAMILIES

    per_family = -(-inputs // len(FAMILIES))
    counts: dict[str, int] = {}
    bar = tqdm(total=per_family * len(FAMILIES), desc="hypothesis", unit="input", mininterval=2)
    for index, (family, strategy) in enumerate(FAMILIES.items()):
        counts[family] = 0

        def body(text: str, family: str = family) -> None:
            counts[family] += 1
            bar.update(1)
            for target in targets:
                run_target(target, stats[target.name], text, family)

        for_examples(strategy, per_family, seed * 1000 + index, body)
    bar.close()
    return counts


def fixed_pass(targets, stats: dict[str, Stats]) -> int:
    from benchmarks.fuzz_inputs import HOSTILE

    for text in HOSTILE:
        for target in targets:
            run_target(target, stats[target.name], text, "megabyte cases")
    return len(HOSTILE)


# -- atheris ----------------------------------------------------------------------------------------------


def atheris_worker(runs: int, out: Path) -> None:
    """Runs in its own process (libFuzzer exits the process when done): writes its stats to `out`."""
    import atheris

    with atheris.instrument_imports(include=["openrlhf_mt"]):
        from benchmarks.fuzz_inputs import scorers

        targets = scorers()
    stats = {t.name: Stats() for t in targets}
    done = [0]

    def write() -> None:
        out.write_text(json.dumps({"runs": done[0], "targets": {n: s.to_json() for n, s in stats.items()}}))

    def one_input(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        text = provider.ConsumeUnicode(len(data))
        for target in targets:
            run_target(target, stats[target.name], text, "atheris")
        done[0] += 1
        if done[0] % 5000 == 0 or done[0] >= runs:
            write()

    write()
    corpus = tempfile.mkdtemp(prefix="fuzz-corpus-")
    for i, text in enumerate(["\\boxed{25*(50-3)+6}", "so\n\\boxed{alice}", "\\boxed{0 0 8 8 8 0 0 0 0}"]):
        Path(corpus, f"seed{i}").write_bytes(b"\x01" + text.encode())
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=8192", "-rss_limit_mb=8192", corpus], one_input)
    atheris.Fuzz()


def atheris_pass(runs: int) -> dict | None:
    """The atheris worker's stats, or None when atheris is not installed."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install atheris): coverage-guided pass skipped")
        return None
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "atheris.json"
        started = time.perf_counter()
        command = [sys.executable, __file__, "--atheris-worker", str(runs), str(out)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if not out.is_file():
            print(completed.stderr[-3000:])
            raise RuntimeError(f"the atheris worker wrote no results (exit {completed.returncode})")
        result = json.loads(out.read_text())
        result["seconds"] = time.perf_counter() - started
        result["exit_code"] = completed.returncode
        result["libfuzzer_tail"] = completed.stderr.strip().splitlines()[-3:]
        return result


# -- every reasoning-gym dataset --------------------------------------------------------------------------


def rg_sweep(per_dataset: int, seed: int) -> dict[str, dict]:
    """Every dataset `rg:` accepts, with its default config: `per_dataset` texts against a generated label."""
    from hypothesis import strategies as st
    from reasoning_gym.factory import DATASETS
    from tqdm.auto import tqdm

    from benchmarks.fuzz_inputs import FAMILIES, TRAIN_REWARDS, Scorer
    from openrlhf_mt.tasks import TaskDataError, get_task

    results = {}
    for name in tqdm(sorted(DATASETS), desc="rg: datasets", unit="dataset"):
        try:
            task = get_task(f"rg:{name}")
            rows = task.generate(1, seed=0)
        except (TaskDataError, RuntimeError, ValueError) as error:  # refused as unsafe, or needs a config
            results[name] = {"skipped": str(error).split(":")[-1].strip()[:120]}
            continue
        label = rows[0]["label"]
        reference = task.reference_response(label) or ""
        target = Scorer(
            name,
            lambda text, task=task, label=label: task.score(text, label, True),
            lambda reward: reward in TRAIN_REWARDS,
        )
        stats = Stats()
        texts = st.one_of(*FAMILIES.values(), st.just(reference))
        for_examples(
            texts, per_dataset, seed, lambda text, t=target, s=stats: run_target(t, s, text, "rg sweep")
        )
        results[name] = stats.to_json()
    return results


# -- report -----------------------------------------------------------------------------------------------


def _row(name: str, result: dict, inputs: int | str) -> str:
    exceptions = sum(result["exceptions"].values())
    return (
        f"| {name} | {inputs} | {exceptions} | {result['bad_results']} | {result['cpu_mean_us']:.1f} "
        f"| {result['slowest_cpu_ms']:.2f} | {result['calls_over_10ms']} | {result['slowest_family']}: "
        f"`{result['slowest_input'][:60].replace('|', '¦').replace('`', '´')}` |"
    )


def report(record: dict) -> str:
    header = (
        "| target | inputs | exceptions | bad results | CPU µs/call (mean) | slowest call, CPU ms "
        "| calls ≥ 10 ms | slowest input |\n|---|---:|---:|---:|---:|---:|---:|---|"
    )
    hypo = record["hypothesis"]
    lines = [
        f"# Fuzzing the scorers (machine: {record['machine']})",
        "",
        f"Command: `{record['command']}`; {record['seconds']:.0f} s; load average at start "
        f"{record['load_average_start']:.1f}.",
        "A task's row times one call of each reward mode (train, eval); `openrlhf reward_func` two calls",
        "(the text as a response, and as the whole query, prompt and label). Times are CPU time; a call",
        f"over 10 ms is timed {RETRIES} more times and the best counts.",
        "",
        f"## hypothesis: {hypo['inputs']:,} inputs per target ({hypo['generated']:,} generated + "
        f"{hypo['fixed']} megabyte cases)",
        "",
        "Generated per family: " + "; ".join(f"{k} {v:,}" for k, v in hypo["per_family"].items()) + ".",
        "",
        header,
    ]
    lines += [_row(name, result, f"{hypo['inputs']:,}") for name, result in hypo["targets"].items()]
    atheris = record.get("atheris")
    if atheris:
        lines += [
            "",
            f"## atheris (coverage-guided, the task library instrumented): {atheris['runs']:,} inputs per "
            f"target, {atheris['seconds']:.0f} s",
            "",
            "Instrumented code runs slower: these times are not the bound's measure.",
            "",
            header,
        ]
        lines += [_row(name, result, f"{atheris['runs']:,}") for name, result in atheris["targets"].items()]
    else:
        lines += ["", "## atheris: not installed, not run"]
    sweep = record.get("rg_sweep")
    if sweep:
        scored = {name: r for name, r in sweep.items() if "skipped" not in r}
        skipped = {name: r["skipped"] for name, r in sweep.items() if "skipped" in r}
        lines += [
            "",
            f"## every reasoning-gym dataset as `rg:<name>`: {record['rg_per_dataset']:,} inputs each",
            "",
            f"{len(scored)} datasets scored; {len(skipped)} not accepted by `rg:` (an unsafe scorer, or a "
            f"required config): {', '.join(sorted(skipped))}.",
            f"Exceptions in all: {sum(sum(r['exceptions'].values()) for r in scored.values())}; bad results: "
            f"{sum(r['bad_results'] for r in scored.values())}; calls ≥ 10 ms: "
            f"{sum(r['calls_over_10ms'] for r in scored.values())}. The ten slowest:",
            "",
            header,
        ]
        slowest = sorted(scored.items(), key=lambda item: -item[1]["slowest_cpu_ms"])[:10]
        lines += [_row(f"rg:{name}", r, f"{r['calls']:,}") for name, r in slowest]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=100_000, help="hypothesis inputs (all families)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--atheris-runs", type=int, default=100_000, help="atheris inputs (0: skip)")
    parser.add_argument("--rg-sweep", type=int, default=500, help="inputs per rg: dataset (0: skip)")
    parser.add_argument("--atheris-worker", nargs=2, metavar=("RUNS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.atheris_worker:
        atheris_worker(int(args.atheris_worker[0]), Path(args.atheris_worker[1]))
        return

    from benchmarks.fuzz_inputs import scorers

    started, load = time.perf_counter(), os.getloadavg()[0]
    targets = scorers()
    stats = {t.name: Stats() for t in targets}
    per_family = hypothesis_pass(targets, stats, args.inputs, args.seed)
    fixed = fixed_pass(targets, stats)
    generated = sum(per_family.values())
    record = {
        "machine": f"{MACHINE} ({platform.machine()}, Python {platform.python_version()})",
        "command": " ".join(["python benchmarks/bench_fuzz.py", *sys.argv[1:]]),
        "load_average_start": load,
        "hypothesis": {
            "inputs": generated + fixed,
            "generated": generated,
            "fixed": fixed,
            "per_family": per_family,
            "targets": {name: s.to_json() for name, s in stats.items()},
        },
    }
    if args.atheris_runs:
        record["atheris"] = atheris_pass(args.atheris_runs)
    if args.rg_sweep:
        record["rg_per_dataset"] = args.rg_sweep
        record["rg_sweep"] = rg_sweep(args.rg_sweep, args.seed)
    record["seconds"] = time.perf_counter() - started
    table = report(record)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz.md").write_text(table)
    (RESULTS / "fuzz.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
