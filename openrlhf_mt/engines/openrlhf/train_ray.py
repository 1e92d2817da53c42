"""`openrlhf-mt train-ray`: OpenRLHF 0.11.2's `train_ppo_ray` with MT-GRPO's actors and `--mt.*` flags.

    openrlhf-mt train-ray <any openrlhf.cli.train_ppo_ray flag> [--mt.method mt-grpo] [--mt.lam 0.25] ...
                          [--mt.cpu] [--mt.dry_run] [--mt.max_steps N]

Upstream's command runs unchanged: its own parser (captured, not copied, by running the module with
`ArgumentParser.parse_args` intercepted), its own checks, its own `train()`. This module adds the
`--mt.*` flags to that parser, resolves them into the shared `AlgoConfig` (config.py: method preset,
then flags), fills in MT-GRPO's defaults for upstream flags the user did not give, and has `train()`
build our Ray actor classes (trainer.py) in place of upstream's.

Before upstream's train() runs, this driver also makes every path flag absolute, refuses a batch that
cannot split evenly over the data-parallel ranks (plan.check_batch_layout), connects to Ray itself (so
that a `ray job submit` runtime env merges) and checks that every node sees the data and the output
directories (cluster.py).

--mt.cpu runs the whole job on a machine without CUDA: the CPU bridges (cpu.py) in this process and in
every Ray worker, a local Ray with one fake GPU per model rank and vLLM engine (or the cluster at
RAY_ADDRESS), and CPU-friendly defaults (one rank per model, one vLLM engine, gloo weight sync, sdpa
attention, eager vLLM).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import os
import runpy
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from openrlhf_mt.config import (
    METHOD_PRESETS,
    AlgoConfig,
    ConfigError,
    RunConfig,
    add_arguments,
    from_arguments,
)
from openrlhf_mt.engines.openrlhf import cpu
from openrlhf_mt.engines.openrlhf.cluster import absolute_paths, check_cluster_paths, connect_ray
from openrlhf_mt.engines.openrlhf.plan import DryRunFinished, check_batch_layout, gpu_split
from openrlhf_mt.engines.openrlhf.stop import StopOnSignal

UPSTREAM_MODULE = "openrlhf.cli.train_ppo_ray"
REWARD_MODULE = "openrlhf_mt.tasks.openrlhf_reward"


@dataclass
class RayEngineConfig:
    """The `--mt.*` flags of this engine that are not algorithm settings."""

    method: str = field(
        default=RunConfig.method,
        metadata={
            "choices": tuple(METHOD_PRESETS),
            "help": "method preset applied before the --mt.* algorithm flags",
        },
    )
    max_steps: int = field(
        default=0, metadata={"help": "training steps of the run (0: one pass over the prompts per episode)"}
    )
    cpu: bool = field(
        default=False, metadata={"help": "run everything on this machine's CPU (no CUDA needed)"}
    )
    dry_run: bool = field(
        default=False, metadata={"help": "build everything up to the first rollout, print the plan, stop"}
    )


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("MT-GRPO on OpenRLHF (--mt.*)")
    for f in dataclasses.fields(RayEngineConfig):
        help_ = f"{f.metadata['help']} (default: {f.default})"
        if f.type == "bool":
            group.add_argument(f"--mt.{f.name}", dest=f"mt.{f.name}", action="store_true", help=help_)
        else:
            kind = int if f.type == "int" else str
            group.add_argument(
                f"--mt.{f.name}",
                dest=f"mt.{f.name}",
                type=kind,
                default=f.default,
                choices=f.metadata.get("choices"),
                help=help_,
            )
    add_arguments(parser, AlgoConfig, "--mt.")


def given(argv: list[str], flag: str) -> bool:
    return any(token == flag or token.startswith(flag + "=") for token in argv)


def default_reward_function() -> str:
    spec = importlib.util.find_spec(REWARD_MODULE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"--reward.remote_url: the task library's reward function {REWARD_MODULE} is missing"
        )
    return spec.origin


def resolve(ns: argparse.Namespace, argv: list[str]) -> argparse.Namespace:
    """Turn the parsed --mt.* flags into `mt.algo` and apply MT-GRPO's defaults to upstream's flags."""
    values = vars(ns)
    engine = RayEngineConfig(
        **{f.name: values.pop(f"mt.{f.name}") for f in dataclasses.fields(RayEngineConfig)}
    )
    if engine.max_steps < 0:
        raise ConfigError(f"mt.max_steps: {engine.max_steps} is below the minimum 0")
    algo = from_arguments(ns, method=engine.method, prefix="--mt.")
    for f in dataclasses.fields(AlgoConfig):
        values.pop(f"mt.{f.name}")
    values.update({f"mt.{f.name}": getattr(engine, f.name) for f in dataclasses.fields(RayEngineConfig)})
    values["mt.algo"] = algo

    if values["algo.dynamic_filtering_enable"]:
        raise ConfigError(
            "algo.dynamic_filtering_enable: MT-GRPO filters zero-gradient groups itself; "
            "use --mt.method dapo (task-blind refill) or --mt.filter_mode instead"
        )
    defaults: dict[str, Any] = {
        "algo.advantage.estimator": "group_norm",
        "actor.eps_clip_low_high": [algo.clip_low, algo.clip_high],
        "algo.kl.init_coef": 0.0,  # the paper's τ = 0: no reference model
        "data.input_key": "prompt",
        "data.label_key": "label",
    }
    if not any(
        given(argv, f)
        for f in ("--reward.remote_url", "--reward.model_name_or_path", "--train.agent_func_path")
    ):
        defaults["reward.remote_url"] = default_reward_function()
    if engine.cpu:
        for flag in ("ds.packing_samples", "vllm.enable_sleep"):
            if values[flag]:
                raise ConfigError(
                    f"{flag}: not available with --mt.cpu (needs CUDA: flash-attention / vLLM sleep)"
                )
        defaults |= {
            "actor.num_gpus_per_node": 1,
            "ref.num_gpus_per_node": 1,
            "critic.num_gpus_per_node": 1,
            "reward.num_gpus_per_node": 1,
            "vllm.num_engines": 1,
            "vllm.sync_backend": "gloo",
            "vllm.enforce_eager": True,
            "ds.attn_implementation": "sdpa",
        }
    for key, value in defaults.items():
        if not given(argv, f"--{key}"):
            values[key] = value
    absolute_paths(values)
    check_batch_layout(hierarchical(ns))
    return ns


def hierarchical(ns: argparse.Namespace) -> Any:
    """Upstream's nested args (args.rollout.batch_size, ...) from a copy of the flat namespace."""
    from openrlhf.utils.config import hierarchize

    return hierarchize(argparse.Namespace(**vars(ns)))


def start_ray(args: Any) -> None:
    """Ray for this job. --mt.cpu: the CPU bridges here and in every worker, and without RAY_ADDRESS a
    local Ray whose fake GPUs match the job's placement."""
    if not args.mt.cpu:
        connect_ray({})
        return
    env = cpu.worker_env()
    os.environ.update(env)  # workers of a local Ray inherit this process's environment
    cpu.install()
    if os.environ.get("RAY_ADDRESS"):  # a cluster: its workers get the bridges through the runtime env
        connect_ray(env)
        return
    num_gpus = gpu_split(args).total
    connect_ray(
        {k: v for k, v in env.items() if k != "PYTHONPATH"},
        address="local",  # a new Ray, even where another (or a stale one's address file) is around
        num_gpus=num_gpus,
        num_cpus=max(num_gpus + 4, os.cpu_count() or 1),
        include_dashboard=False,
    )


@contextlib.contextmanager
def multitask_classes() -> Iterator[None]:
    """Upstream's train() looks its trainer and policy actor classes up by name: give it ours."""
    from openrlhf_mt.engines.openrlhf.trainer import launch_classes

    with contextlib.ExitStack() as stack:
        for module_name, classes in launch_classes().items():
            stack.enter_context(mock.patch.multiple(sys.modules[module_name], **classes))
        yield


class _ParserCaptured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def upstream_parser() -> argparse.ArgumentParser:
    """train_ppo_ray's own parser: its module is run as __main__ until it calls parse_args()."""
    # Importing upstream needs flash_attn, which a CPU-only driver may lack even when the Ray workers
    # have GPUs: the stub answers only when no real flash_attn is installed.
    cpu.install_flash_attn_stub()

    def capture(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _ParserCaptured(parser)

    try:
        with mock.patch.object(argparse.ArgumentParser, "parse_args", capture):
            runpy.run_module(UPSTREAM_MODULE, run_name="__main__")
    except _ParserCaptured as captured:
        return captured.parser
    raise RuntimeError(f"{UPSTREAM_MODULE} did not build its argument parser")


def parse(argv: list[str], prog: str) -> argparse.Namespace:
    """Upstream's flags and ours, resolved (flat dotted names, as upstream's parse_args returns them)."""
    parser = upstream_parser()
    parser.prog = prog
    parser.description = __doc__.split("\n\n")[0]
    add_engine_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        return resolve(ns, argv)
    except ConfigError as error:
        parser.error(f"--{error}")


def main(argv: list[str], prog: str) -> int:
    try:
        cpu.check_openrlhf_version()
    except RuntimeError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    ns = parse(argv, prog)
    args = hierarchical(ns)
    if not args.mt.cpu and not os.environ.get("RAY_ADDRESS"):
        import torch

        if not torch.cuda.is_available():  # a local Ray without GPUs: upstream would wait forever
            print(
                f"{prog}: error: no CUDA device and no Ray cluster (RAY_ADDRESS); add --mt.cpu",
                file=sys.stderr,
            )
            return 2
    start_ray(args)
    try:
        check_cluster_paths(vars(ns))
    except ConfigError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    stopper = StopOnSignal(prog)
    stopper.install()
    try:  # upstream's __main__ again: its own checks on our namespace, then its train()
        with (
            mock.patch.object(argparse.ArgumentParser, "parse_args", lambda *a, **k: ns),
            multitask_classes(),
        ):
            runpy.run_module(UPSTREAM_MODULE, run_name="__main__", alter_sys=True)
    except DryRunFinished as error:  # raised in a Ray actor: Ray's copy holds the original as `cause`
        print(getattr(error, "cause", None) or error)
    stopper.report(args.ckpt.path)
    return 0
