"""A 2-node SLURM cluster simulated on this CPU: the real scripts/slurm/train_ray.sbatch, real Ray, real jobs.

SLURM's `srun` and `scontrol` are shimmed (tests/cluster/slurm_shim: steps run on this machine, as if on
the node given with -w) and the SLURM_* variables describe 2 nodes with one GPU each. The script starts
a Ray head and a Ray worker node here (two raylets, each with one fake GPU), waits for both, and submits
`openrlhf-mt train-ray --mt.cpu` with `ray job submit` and an env_vars runtime env, exactly as on a
cluster: the DeepSpeed actor and the vLLM engine land on different Ray nodes. The flags use relative
paths, as a user in the repository would. Mid-run, the test kills the TaskWeightActor from outside
(another Ray driver): Ray restarts it from its snapshot and training goes on. A second submission
resumes from the checkpoint, and gets SIGTERM as SLURM sends it before a time limit: the script asks the
run to checkpoint its current step and stop (`openrlhf-mt stop`), and the job ends with status 0.

Opt-in (about 6 minutes on 2 cores): `bash scripts/test.sh --cluster`, or OPENRLHF_MT_CLUSTER_SIM=1.
Never run it beside another Ray on this machine that you care about: the cleanup is the script's own,
but two clusters on one host compete for its 2 cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

if os.environ.get("OPENRLHF_MT_CLUSTER_SIM") != "1":  # before importing Ray or OpenRLHF into this process
    pytest.skip("opt-in: bash scripts/test.sh --cluster", allow_module_level=True)
pytest.importorskip("ray")
pytest.importorskip("openrlhf")
from openrlhf_mt.engines.openrlhf.smoke_check import step_status

ROOT = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).with_name("slurm_shim")
TASKS = ("tiny-add", "tiny-countdown", "tiny-arc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def submit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'repository checkout on the shared file system': the tiny policy and data under relative paths."""
    sys.path.insert(0, str(ROOT / "tests" / "openrlhf"))
    from conftest import build_tiny_policy

    directory = tmp_path_factory.mktemp("submit")
    (directory / "models" / "tiny").mkdir(parents=True)
    build_tiny_policy(directory / "models" / "tiny")
    build = ["data", "build", "--tasks", ",".join(TASKS), "--train-size", "24", "--test-size", "4"]
    subprocess.run(
        [sys.executable, "-m", "openrlhf_mt.cli", *build, "--out", "data/tiny", "--no-cache", "--quiet"],
        cwd=directory,
        check=True,
    )
    return directory


def cluster_env(ports: dict[str, int], ray_tmpdir: str) -> dict[str, str]:
    from openrlhf_mt.engines.openrlhf import cpu

    env = {**os.environ, **cpu.worker_env()}  # what `ray start` gives every worker on these CPU nodes
    env.pop("RAY_ADDRESS", None)
    env |= {
        "RAY_TMPDIR": ray_tmpdir,  # this cluster's sessions and address file, apart from any other Ray here
        "PATH": f"{SHIM}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "sim-node-[0-1]",
        "SIM_NODES": "sim-node-0,sim-node-1",
        "SLURM_GPUS_ON_NODE": "1",
        "SLURM_CPUS_ON_NODE": "4",
        "RAY_PORT": str(ports["ray"]),
        "DASHBOARD_PORT": str(ports["dashboard"]),
        "HF_HUB_OFFLINE": "1",
    }
    return env


def train_flags(*extra: str) -> list[str]:
    return [
        "--mt.cpu",
        "--actor.model_name_or_path", "models/tiny",
        "--data.prompt_dataset", "data/tiny/train.jsonl", "--eval.dataset", "data/tiny/test.jsonl",
        "--eval.steps", "2", "--eval.n_samples_per_prompt", "2",
        "--rollout.batch_size", "6", "--rollout.n_samples_per_prompt", "4", "--train.batch_size", "12",
        "--rollout.micro_batch_size", "8", "--train.micro_batch_size", "4",
        "--data.max_len", "96", "--rollout.max_new_tokens", "12",
        "--ds.zero_stage", "2", "--ds.param_dtype", "bf16", "--actor.adam.lr", "1e-4",
        "--ckpt.path", "runs/sim/ckpt", "--ckpt.save_steps", "1", "--logger.tensorboard_dir", "runs/sim/tb",
        "--mt.method", "mt-grpo", "--mt.filter_mode", "lenient", "--mt.max_rounds", "2",
        *extra,
    ]  # fmt: skip


def submit(submit_dir: Path, log: Path, extra: list[str], on_line=None) -> str:
    """`sbatch scripts/slurm/train_ray.sbatch 1 1 1 1 -- FLAGS`, run as SLURM would run it."""
    ports = {"ray": free_port(), "dashboard": free_port()}
    command = ["bash", str(ROOT / "scripts" / "slurm" / "train_ray.sbatch"), "1", "1", "1", "1", "--"]
    ray_tmpdir = tempfile.mkdtemp(prefix="rsim", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = cluster_env(ports, ray_tmpdir) | {"SLURM_SUBMIT_DIR": str(submit_dir)}
    with log.open("w") as out:
        process = subprocess.Popen(
            command + train_flags(*extra), cwd=submit_dir, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for line in process.stdout:
            out.write(line)
            out.flush()
            if on_line is not None:
                on_line(line, env, process)
        process.wait(timeout=900)
    text = log.read_text()
    assert process.returncode == 0, text[-4000:]
    assert not Path(ray_tmpdir, "ray_current_cluster").exists()  # the script cleaned up after itself
    shutil.rmtree(ray_tmpdir, ignore_errors=True)
    return text


def kill_weights_actor(address: str, env: dict[str, str]) -> None:
    """From another driver, as an operator or a crash would: kill the named actor's process."""
    code = f"""
import ray
from ray.util import list_named_actors
ray.init(address="{address}", logging_level="ERROR", log_to_driver=False)  # RAY_TMPDIR: the cluster's
found = [a for a in list_named_actors(all_namespaces=True) if a["name"] == "openrlhf_mt_task_weights"]
assert len(found) == 1, found
ray.kill(ray.get_actor(found[0]["name"], namespace=found[0]["namespace"]), no_restart=False)
print("killed")
"""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("killed"), done.stderr[-2000:]


def test_two_node_slurm_job_trains_survives_a_killed_weights_actor_and_resumes(submit_dir: Path) -> None:
    killer: list[threading.Thread] = []

    def kill_after_step_1(line: str, env: dict[str, str], process: subprocess.Popen) -> None:
        if "Global step 1:" in line and not killer:
            address = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()[0]
            target = (f"{address}:{env['RAY_PORT']}", env)
            killer.append(threading.Thread(target=kill_weights_actor, args=target))
            killer[0].start()

    first_log = submit(submit_dir, submit_dir / "submit1.log", ["--mt.max_steps", "3"], kill_after_step_1)
    killer[0].join(timeout=120)
    first = step_status(first_log)
    assert sorted(first) == [1, 2, 3]
    assert "[slurm] cluster has 2/2 GPUs" in first_log
    # the job's outputs are in the submit directory (the relative flags), not in a node's Ray temp dir
    assert (submit_dir / "runs" / "sim" / "ckpt" / "_actor" / "global_step3").is_dir()
    assert list((submit_dir / "runs" / "sim" / "tb").rglob("events.out.tfevents.*"))
    # the kill after step 1: restarted once, state restored, the weights continue step to step
    assert first[3]["mt/weights_actor_restarts"] == 1
    assert "TaskWeightActor was restarted by Ray" in first_log
    for step in (1, 2):
        assert [first[step][f"mt/{t}/next_weight"] for t in TASKS] == pytest.approx(
            [first[step + 1][f"mt/{t}/weight"] for t in TASKS], abs=1e-12
        )
    assert first[3]["mt/weight_updates"] > first[1]["mt/weight_updates"]

    def term_after_step_4(line: str, env: dict[str, str], process: subprocess.Popen) -> None:
        if "Global step 4:" in line and not terminated:  # SLURM, 5 minutes before the time limit
            terminated.append(True)
            process.send_signal(signal.SIGTERM)

    terminated: list[bool] = []
    extra = ["--mt.max_steps", "9", "--ckpt.load_enable", "--ckpt.save_steps", "100"]
    second_log = submit(submit_dir, submit_dir / "submit2.log", extra, term_after_step_4)
    second = step_status(second_log)
    assert min(second) == 4 and max(second) < 9  # resumed after step 3; stopped early, exit status 0
    assert [second[4][f"mt/{t}/weight"] for t in TASKS] == pytest.approx(
        [first[3][f"mt/{t}/next_weight"] for t in TASKS], abs=1e-12
    )
    assert "[slurm] SIGTERM: the run checkpoints after its current step and stops" in second_log
    last = max(second)
    assert f"stop requested: checkpoint written after step {last}" in second_log
    assert (submit_dir / "runs" / "sim" / "ckpt" / "_actor" / f"global_step{last}").is_dir()
