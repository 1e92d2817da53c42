"""The driver's cluster checks (cluster.py): the job runtime env merge and the shared file system probe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from openrlhf_mt.config import ConfigError
from openrlhf_mt.engines.openrlhf.cluster import (
    MARKER_NAME,
    check_shared_paths,
    probe_paths,
    worker_env_vars,
)


def test_worker_env_leaves_out_what_the_submitted_job_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ray job submit --runtime-env-json '{"env_vars": {"NCCL_DEBUG": ...}}'` (scripts/slurm): Ray refuses
    to merge a ray.init runtime env that sets the same variable, so the driver leaves those out."""
    job = {"runtime_env": {"env_vars": {"NCCL_DEBUG": "INFO", "TOKENIZERS_PARALLELISM": "false"}}}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(job))
    monkeypatch.delenv("RAY_ENABLE_ZERO_COPY_TORCH_TENSORS", raising=False)
    assert worker_env_vars({"OPENRLHF_MT_CPU": "1"}) == {
        "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": "1",
        "OPENRLHF_MT_CPU": "1",
    }
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")
    assert set(worker_env_vars({})) == {
        "TOKENIZERS_PARALLELISM",
        "NCCL_DEBUG",
        "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS",
    }


def resolved(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "data.jsonl").write_text("{}")
    return {
        "ckpt.path": str(tmp_path / "ckpt"),
        "ckpt.output_dir": str(tmp_path / "out"),
        "logger.tensorboard_dir": None,
        "data.prompt_dataset": f"{tmp_path / 'data.jsonl'},OpenRLHF/hub-name",
        "actor.model_name_or_path": "Qwen/Qwen2.5-3B",
    }


def test_every_node_that_sees_everything_passes_and_no_marker_stays(tmp_path: Path) -> None:
    calls = []

    def run_on_node(node, function, args):
        calls.append(node)
        return function(*args)

    check_shared_paths(resolved(tmp_path), ["head", "worker"], run_on_node)
    assert calls == ["head", "worker"]
    assert (tmp_path / "ckpt").is_dir() and not (tmp_path / "ckpt" / MARKER_NAME).exists()


def test_a_node_with_its_own_disk_is_named_with_the_flag(tmp_path: Path) -> None:
    """The worker node mounts a different /tmp: it sees neither the marker files nor the data."""
    elsewhere = tmp_path / "node2"

    def run_on_node(node, function, args):
        if node == "head":
            return function(*args)
        markers, inputs = args
        moved = {str(elsewhere) + path: token for path, token in markers.items()}
        return [p[len(str(elsewhere)) :] for p in function(moved, [str(elsewhere) + i for i in inputs])]

    with pytest.raises(ConfigError) as error:
        check_shared_paths(resolved(tmp_path), ["head", "node-2"], run_on_node)
    message = str(error.value)
    assert f"--ckpt.path {tmp_path / 'ckpt'}: not visible from node(s) node-2" in message
    assert f"--ckpt.output_dir {tmp_path / 'out'}: not visible" in message
    assert f"--data.prompt_dataset {tmp_path / 'data.jsonl'}: not visible" in message
    assert "OpenRLHF/hub-name" not in message and "Qwen" not in message


def test_probe_reports_a_wrong_token_as_not_shared(tmp_path: Path) -> None:
    marker = tmp_path / MARKER_NAME
    marker.write_text("abc")
    assert probe_paths({str(marker): "abc"}, [str(tmp_path)]) == []
    assert probe_paths({str(marker): "xyz"}, [str(tmp_path / "missing")]) == [
        str(tmp_path),
        str(tmp_path / "missing"),
    ]
    assert os.path.exists(marker)
