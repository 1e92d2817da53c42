"""One DeepSpeed rank of upstream's ActorPPOTrainer with our optimizer windows and I_k recorder (torchrun).

    torchrun --nproc_per_node R tests/openrlhf/ranks_worker.py train POLICY_DIR ZERO_STAGE OUT.json
    torchrun --nproc_per_node 4 tests/openrlhf/ranks_worker.py mesh OUT.json

Every rank builds the same 16-sample batch (4 groups of 4, three tasks) from a fixed seed, keeps its
share as the engine would send it (`even_rank_chunks`, so one rank holds all of it, two ranks half
each), appends it to upstream's replay buffer and runs upstream's `ppo_train` under ZeRO-`ZERO_STAGE` in
fp32: one optimizer step over all 16 samples whatever the number of ranks. Rank 0 writes the windows' I_k,
|A| sums and counts, and the optimizer step count, to OUT.json. test_ranks.py compares 1 and 2 ranks.

`mesh`: 4 gloo ranks in upstream's (dp, sp, tp) = (2, 1, 2) device mesh, where the two tensor-parallel
ranks of a data-parallel shard hold the same samples; every rank's signals are those of its shard, and
rank 0 writes what the recorder's reduction gives.
"""

from __future__ import annotations

import json
import shlex
import sys
from types import SimpleNamespace
from typing import Any

import torch
import torch.distributed as dist

from openrlhf_mt.engines.openrlhf.improvement import ImprovementRecorder, OptimizerWindows

TASKS = ["tiny-add", "tiny-countdown", "tiny-arc"]
GROUPS, N, PROMPT, RESPONSE = 4, 4, 6, 5


def batch(vocab: int) -> list[Any]:
    """The 16 samples, one Experience each, identical on every rank."""
    from openrlhf.trainer.ppo_utils.experience import Experience

    generator = torch.Generator().manual_seed(0)
    samples = []
    for group in range(GROUPS):
        rewards = torch.rand(N, generator=generator)
        advantages = (rewards - rewards.mean()) / (rewards.std() + 1e-9)
        for i in range(N):
            length = RESPONSE - (i % 2)  # some responses shorter, so token-means differ from sample means
            action_mask = torch.zeros(1, RESPONSE, dtype=torch.bool)
            action_mask[0, :length] = True
            samples.append(
                Experience(
                    sequences=torch.randint(4, vocab, (1, PROMPT + RESPONSE), generator=generator),
                    attention_mask=torch.ones(1, PROMPT + RESPONSE, dtype=torch.long),
                    action_mask=action_mask,
                    action_log_probs=-2.0 - torch.rand(1, RESPONSE, generator=generator),
                    advantages=advantages[i].expand(1, RESPONSE).clone(),
                    returns=advantages[i].expand(1, RESPONSE).clone(),
                    labels=[json.dumps({"task": TASKS[group % len(TASKS)]})],
                    prompts=[f"group {group}"],
                    info={},
                )
            )
    return samples


def train(policy: str, zero_stage: str, out: str) -> None:
    from openrlhf_mt.engines.openrlhf import cpu

    cpu.install()  # this process has no CUDA: the CPU bridges, as in a --mt.cpu Ray worker
    import openrlhf.utils.utils as openrlhf_utils
    from openrlhf.models import Actor
    from openrlhf.trainer.ppo_utils.experience import Experience
    from openrlhf.trainer.ray.ppo_actor import ActorPPOTrainer
    from openrlhf.utils import get_strategy

    from openrlhf_mt.engines.openrlhf.train_ray import hierarchical, parse
    from openrlhf_mt.engines.openrlhf.trainer import even_rank_chunks

    # upstream offers bf16 and fp16 only; fp32 makes 1 and 2 ranks comparable to float32 rounding
    upstream_dtype = openrlhf_utils.convert_to_torch_dtype
    openrlhf_utils.convert_to_torch_dtype = lambda name: (
        torch.float32 if name == "fp32" else upstream_dtype(name)
    )
    command = (
        f"--actor.model_name_or_path {policy} --data.prompt_dataset unused.jsonl --mt.cpu "
        f"--ds.zero_stage {zero_stage} --rollout.batch_size {GROUPS} --rollout.n_samples_per_prompt {N} "
        f"--train.batch_size {GROUPS * N} --rollout.micro_batch_size 4 --train.micro_batch_size 2 "
        "--actor.adam.lr 0.05 --ds.attn_implementation sdpa"
    )
    args = hierarchical(parse(shlex.split(command), "ranks_worker"))
    args.ds.param_dtype = "fp32"
    strategy = get_strategy(args)
    strategy.setup_distributed()
    rank, world = dist.get_rank(), dist.get_world_size()
    args.actor.num_gpus_per_node = world
    actor = Actor(
        policy,
        attn_implementation="sdpa",
        param_dtype="fp32",
        ds_config=strategy.get_ds_train_config(),
    )
    actor_cfg = dict(
        optim="adam",
        muon=vars(args.actor.muon),
        adam=vars(args.actor.adam),
        lr_scheduler="constant",
        lr_warmup_ratio=0.0,
        min_lr_ratio=args.actor.min_lr_ratio,
        max_norm=1.0,
        scheduler_steps=10,
    )
    actor, optimizer, scheduler = strategy.prepare((actor, actor_cfg))
    trainer = ActorPPOTrainer(
        strategy, actor, None, optimizer, scheduler, micro_train_batch_size=args.train.micro_batch_size
    )
    recorder = ImprovementRecorder(OptimizerWindows(trainer), TASKS, measure_improvement=True)
    samples = batch(vocab=actor.model.module.config.vocab_size)
    start, end = even_rank_chunks(len(samples), world, len(samples))[rank]
    trainer.replay_buffer.append(Experience.concat_experiences(samples[start:end], pad_token_id=0))
    status = trainer.ppo_train(0.0)
    windows = recorder.take_windows()
    if rank == 0:
        with open(out, "w") as file:
            json.dump(
                {"windows": windows, "optimizer_steps": status["mt/optimizer_steps"], "world": world}, file
            )
    dist.barrier()


def mesh(out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo")
    device_mesh = init_device_mesh("cpu", (2, 1, 2), mesh_dim_names=("dp", "sp", "tp"))
    shard = device_mesh["dp"].get_local_rank()
    recorder = SimpleNamespace(
        tasks=TASKS, measure_improvement=True, strategy=SimpleNamespace(ds_device_mesh=device_mesh)
    )
    improvement = {"tiny-add": 1.0 + shard, "tiny-arc": -0.5}
    abs_advantage = {"tiny-add": (2.0, 3), "tiny-arc": (1.0, 1 + shard)}
    summed = ImprovementRecorder.sum_over_data_parallel(recorder, improvement, abs_advantage)
    if dist.get_rank() == 0:
        with open(out, "w") as file:
            json.dump(summed, file)
    dist.barrier()


if __name__ == "__main__":
    {"train": train, "mesh": mesh}[sys.argv[1]](*sys.argv[2:])
