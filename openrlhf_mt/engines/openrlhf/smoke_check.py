"""Checks a train-ray run and its resume from their logs: what scripts/gpu_smoke.sh passes or fails on.

    python -m openrlhf_mt.engines.openrlhf.smoke_check --log first.log --log resumed.log \
        [--model-before DIR --model-after DIR]

Reads upstream's step lines ("Global step N: {...}") and eval lines, prints one row per check and exits
1 if any check fails. The checks: each run logged its steps, the resumed run continued the step count
and the task weights exactly, every step ran optimizer steps with a finite non-zero gradient, every task
has its per-step metrics and an eval accuracy, the task weights moved, and (with the two model
directories) the policy's parameters moved.
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PER_TASK = ("weight", "next_weight", "batch_share", "accuracy", "zero_gradient_rate", "selected_groups")


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def literal(text: str) -> dict:
    """A logged dict; Python prints non-finite floats as nan / inf, which become inf here (non-finite)."""
    return ast.literal_eval(re.sub(r"\b(nan|inf)\b", "1e999999", text))


def step_status(log: str) -> dict[int, dict]:
    """global step -> the status dict upstream logs."""
    found = re.findall(r"Global step (\d+): (\{.*\})", log)
    return {int(step): literal(status) for step, status in found}


def eval_metrics(log: str) -> list[dict]:
    return [literal(m) for m in re.findall(r"eval_metrics: (\{.*\})", log)]


def tasks_of(status: dict) -> list[str]:
    return sorted({key.split("/")[1] for key in status if key.startswith("mt/") and key.endswith("/weight")})


def check_runs(first_log: str, resumed_log: str) -> list[Check]:
    first, resumed = step_status(first_log), step_status(resumed_log)
    checks = [
        Check("first run logged steps", bool(first), f"steps {sorted(first)}"),
        Check("resumed run logged steps", bool(resumed), f"steps {sorted(resumed)}"),
    ]
    if not (first and resumed):
        return checks
    last, resumed_first = max(first), min(resumed)
    checks.append(
        Check("resume continues the step count", resumed_first == last + 1, f"{last} -> {resumed_first}")
    )
    statuses = [*first.values(), *resumed.values()]
    tasks = tasks_of(statuses[0])
    checks.append(Check("tasks found", bool(tasks), ", ".join(tasks) or "no mt/<task>/weight metric"))
    steps_ok = [s.get("mt/optimizer_steps", 0) > 0 for s in statuses]
    checks.append(
        Check("optimizer steps every step", all(steps_ok), f"{sum(steps_ok)}/{len(statuses)} steps")
    )
    norms = [s.get("actor_grad_norm", 0.0) for s in statuses]
    good = [math.isfinite(n) and n > 0 for n in norms]
    checks.append(Check("finite non-zero gradient", all(good), f"grad norms {[round(n, 4) for n in norms]}"))
    missing = sorted(
        {f"mt/{t}/{n}" for s in statuses for t in tasks for n in PER_TASK if f"mt/{t}/{n}" not in s}
    )
    checks.append(Check("per-task metrics every step", not missing, ", ".join(missing[:6]) or "all present"))
    evals = eval_metrics(first_log) + eval_metrics(resumed_log)
    seen = {
        t for m in evals for t in tasks if any(k.startswith(f"eval_{t}") and k.endswith("_pass1") for k in m)
    }
    checks.append(
        Check("per-task eval accuracy", seen == set(tasks), f"{len(evals)} evals, tasks {sorted(seen)}")
    )
    before = [first[last][f"mt/{t}/next_weight"] for t in tasks]
    after = [resumed[resumed_first][f"mt/{t}/weight"] for t in tasks]
    exact = all(abs(a - b) <= 1e-12 for a, b in zip(before, after, strict=True))
    checks.append(Check("resumed with the saved task weights", exact, f"{before} -> {after}"))
    final = [resumed[max(resumed)][f"mt/{t}/next_weight"] for t in tasks]
    moved = max(abs(w - 1 / len(tasks)) for w in final) > 1e-6
    checks.append(Check("task weights moved", moved, f"final {[round(w, 4) for w in final]}"))
    return checks


def check_model_moved(before: Path, after: Path) -> Check:
    """The largest change of any parameter between two Hugging Face model directories (safetensors)."""
    import torch
    from safetensors.torch import load_file

    def tensors(directory: Path) -> dict:
        out = {}
        for file in sorted(directory.glob("*.safetensors")):
            out |= load_file(str(file))
        return out

    old, new = tensors(before), tensors(after)
    shared = sorted(set(old) & set(new))
    if not shared:
        return Check("policy parameters moved", False, f"no common tensors in {before} and {after}")
    change = max(float((new[k].float() - old[k].float()).abs().max()) for k in shared)
    finite = all(bool(torch.isfinite(new[k].float()).all()) for k in shared)
    return Check(
        "policy parameters moved", change > 0 and finite, f"max |change| {change:.3g}, finite {finite}"
    )


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    rows = [f"{'check':{width}s}  result  detail"] + [
        f"{c.name:{width}s}  {'PASS' if c.passed else 'FAIL':6s}  {c.detail}" for c in checks
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--log", action="append", required=True, help="first run's log, then the resumed run's"
    )
    parser.add_argument("--model-before", type=Path)
    parser.add_argument("--model-after", type=Path)
    args = parser.parse_args(argv)
    if len(args.log) != 2:
        parser.error("--log: give the first run's log and the resumed run's log")
    checks = check_runs(*(Path(log).read_text(errors="replace") for log in args.log))
    if args.model_before and args.model_after:
        checks.append(check_model_moved(args.model_before, args.model_after))
    print(report(checks))
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
