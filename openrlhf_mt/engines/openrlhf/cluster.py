"""What a run on a Ray cluster needs from the driver before upstream's train() starts.

    absolute_paths(values)           path flags made absolute (relative to the driver's working directory)
    connect_ray(args, cpu)           ray.init for this job, merging with a `ray job submit` runtime env
    check_shared_paths(args)         every node sees the data, the model and the output directories

Why each one:
  - Ray actors run in their own working directories, on other nodes: a relative --ckpt.path written by
    a policy actor on node 2 lands in node 2's temporary directory, and a resume finds nothing. So every
    path flag is made absolute in the driver, where the user's relative paths mean what they meant.
  - Upstream's train() calls ray.init(runtime_env={"env_vars": {...}}) unless Ray is up already. Under
    `ray job submit` with env_vars, Ray refuses to merge two runtime envs that set the same variable
    (even to the same value) and the job dies at start. Connecting here first, without the keys the
    job already sets, makes upstream's call a no-op.
  - Checkpoints, logs and data must be on a file system every node mounts: checked by a probe task on
    each node, which reads a marker file the driver wrote in each output directory.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openrlhf_mt.config import ConfigError

# Written wherever the run writes; read by the probe on every node.
OUTPUT_PATH_FLAGS = ("ckpt.path", "ckpt.output_dir", "logger.tensorboard_dir")
# Read by the run; made absolute only when they name something that exists here (else a hub name, a URL).
INPUT_PATH_FLAGS = (
    "actor.model_name_or_path",
    "reward.model_name_or_path",
    "critic.model_name_or_path",
    "reward.remote_url",
    "train.agent_func_path",
    "data.prompt_dataset",
    "eval.dataset",
)
# What upstream's ray.init passes its workers (openrlhf/cli/train_ppo_ray.py, train()), same defaults.
UPSTREAM_WORKER_ENV = {
    "TOKENIZERS_PARALLELISM": "true",
    "NCCL_DEBUG": "WARN",
    "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": "1",
}
MARKER_NAME = ".openrlhf_mt_shared_fs_probe"


def absolute_paths(values: dict[str, Any]) -> None:
    """Make the path flags of a flat `--a.b` namespace dict absolute, in place."""
    for flag in OUTPUT_PATH_FLAGS:
        if values.get(flag):
            values[flag] = os.path.abspath(values[flag])
    for flag in INPUT_PATH_FLAGS:
        if isinstance(values.get(flag), str):  # comma-separated lists (datasets, reward functions)
            values[flag] = ",".join(
                os.path.abspath(item) if item and os.path.exists(item) else item
                for item in values[flag].split(",")
            )


def job_runtime_env_vars() -> dict[str, str]:
    """The env_vars of the `ray job submit` runtime env this driver runs under (empty outside a job)."""
    config = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR") or "{}")
    return dict((config.get("runtime_env") or {}).get("env_vars") or {})


def worker_env_vars(extra: Mapping[str, str]) -> dict[str, str]:
    """Upstream's worker variables and `extra`, minus those the job's runtime env sets already."""
    wanted = {key: os.environ.get(key, value) for key, value in UPSTREAM_WORKER_ENV.items()} | dict(extra)
    job = job_runtime_env_vars()
    return {key: value for key, value in wanted.items() if key not in job}


def connect_ray(env_vars: Mapping[str, str], **init_kwargs: Any) -> None:
    """ray.init for this job (a cluster at RAY_ADDRESS / the job's, else a local Ray), once."""
    import ray

    if not ray.is_initialized():
        ray.init(runtime_env={"env_vars": worker_env_vars(env_vars)}, **init_kwargs)


def probe_paths(expected: Mapping[str, str], inputs: Sequence[str]) -> list[str]:
    """On one node: what it cannot see (a marker with the wrong token, a missing input)."""
    problems = []
    for path, token in expected.items():
        try:
            with open(path) as file:
                seen = file.read()
        except OSError:
            seen = None
        if seen != token:
            problems.append(os.path.dirname(path))
    problems += [path for path in inputs if not os.path.exists(path)]
    return problems


def shared_paths(values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(output directory -> flag, existing input path -> flag) of a resolved flat namespace dict."""
    outputs = {values[flag]: flag for flag in OUTPUT_PATH_FLAGS if values.get(flag)}
    inputs = {}
    for flag in INPUT_PATH_FLAGS:
        for item in str(values.get(flag) or "").split(","):
            if item and os.path.isabs(item) and os.path.exists(item):
                inputs[item] = flag
    return outputs, inputs


def check_shared_paths(
    values: Mapping[str, Any], nodes: Sequence[str], run_on_node: Callable[[str, Callable, tuple], Any]
) -> None:
    """Refuse to start when some node cannot see an output directory or an input path.

    `nodes` are node ids; `run_on_node(node, function, args)` runs function(*args) there and returns
    its result (a Ray task pinned to the node, in `check_cluster_paths`)."""
    outputs, inputs = shared_paths(values)
    markers = {}
    for directory in outputs:
        os.makedirs(directory, exist_ok=True)
        marker = os.path.join(directory, MARKER_NAME)
        token = secrets.token_hex(8)
        with open(marker, "w") as file:
            file.write(token)
        markers[marker] = token
    missing: dict[str, list[str]] = {}
    for node in nodes:
        for path in run_on_node(node, probe_paths, (markers, list(inputs))):
            missing.setdefault(path, []).append(node)
    for marker in markers:
        os.remove(marker)
    if missing:
        lines = [
            f"--{outputs.get(path) or inputs[path]} {path}: not visible from node(s) {', '.join(nodes_)}"
            for path, nodes_ in missing.items()
        ]
        raise ConfigError(
            "shared file system: checkpoints, logs and data must be on a file system that every node of "
            "the Ray cluster mounts at the same path:\n  " + "\n  ".join(lines)
        )


def check_cluster_paths(values: Mapping[str, Any]) -> int:
    """check_shared_paths over the alive nodes of the connected Ray cluster; the number of nodes."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
    if len(nodes) > 1:

        def run_on_node(node: str, function: Callable, args: tuple) -> Any:
            pinned = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
            return ray.get(ray.remote(num_cpus=0, scheduling_strategy=pinned)(function).remote(*args))

        check_shared_paths(values, nodes, run_on_node)
    return len(nodes)
