"""The single-machine engine: MT-GRPO with plain torch + transformers, on a CPU or one GPU.

    openrlhf-mt train --config examples/tiny_cpu.yaml --method mt-grpo --out runs/tiny-mt-grpo
    openrlhf-mt demo                       # GRPO vs MT-GRPO on three tiny tasks, report in runs/demo
    openrlhf-mt report runs/a runs/b       # report.md + report.png for any runs

Files, in the order a step uses them:
    model.py       the policy: an HF causal LM from a directory, or builtin:tiny (built offline)
    warmup.py      cached supervised warm-up of builtin:tiny, so every task starts above zero
    rollout.py     batched KV-cache sampling (n rollouts per prompt) and response log-probs
    loss.py        token-mean loss of the core's clipped surrogate (ε_low / ε_high), optional k3 KL
    trainer.py     Algorithm 1: sampler + weighter from openrlhf_mt.algo, PPO mini-batches, IWU signals,
                   evaluation, metrics, checkpoints
    logger.py      metrics.jsonl, TensorBoard, wandb
    checkpoint.py  atomic checkpoint directories (HF model + trainer_state.pt)
    train.py / demo.py / report.py   the `train`, `demo` and `report` subcommands
"""
