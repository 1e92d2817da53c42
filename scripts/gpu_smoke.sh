#!/usr/bin/env bash
# GPU smoke test of the OpenRLHF engine: 20 MT-GRPO steps on one GPU with a small local model, the real
# CUDA stack (vllm, flash-attn, NCCL weight sync) and none of the CPU bridges.
#
#   pip install -e '.[openrlhf,local]'            # CUDA machine: openrlhf 0.11.2, vllm, flash-attn, ...
#   scripts/gpu_smoke.sh /path/to/Qwen2.5-0.5B     # any local HF causal LM directory (chat template unused)
#
# Passes when the run ends with exit 0 after 20 steps; look for "Global step 20" and mt/<task>/weight in
# the log, TensorBoard under runs/gpu_smoke/tensorboard. About 10-15 minutes on one H100.
# Not run by the project's CI (which has no GPU); see docs/openrlhf.md for what was run where.
set -euo pipefail
MODEL="${1:?usage: $0 MODEL_DIR}"
OUT="${OUT:-runs/gpu_smoke}"
DATA="$OUT/data"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --mt.cpu instead')"

openrlhf-mt data build --preset exp1 --train-size 512 --test-size 32 --out "$DATA"
openrlhf-mt train-ray \
  --actor.model_name_or_path "$MODEL" \
  --data.prompt_dataset "$DATA/train.jsonl" --eval.dataset "$DATA/test.jsonl" \
  --actor.num_nodes 1 --actor.num_gpus_per_node 1 --vllm.num_engines 1 --vllm.tensor_parallel_size 1 \
  --train.colocate_all --vllm.enable_sleep --ds.enable_sleep --vllm.gpu_memory_utilization 0.5 \
  --ds.zero_stage 2 --ds.param_dtype bf16 --actor.gradient_checkpointing_enable \
  --rollout.batch_size 16 --rollout.n_samples_per_prompt 8 --train.batch_size 64 \
  --rollout.micro_batch_size 8 --train.micro_batch_size 4 \
  --data.max_len 2048 --rollout.max_new_tokens 1024 --actor.adam.lr 1e-6 --actor.lr_scheduler constant \
  --eval.steps 10 --eval.n_samples_per_prompt 2 \
  --ckpt.path "$OUT/ckpt" --ckpt.output_dir "$OUT/model" --ckpt.save_steps 10 \
  --logger.tensorboard_dir "$OUT/tensorboard" \
  --mt.method mt-grpo --mt.max_rounds 3 --mt.max_steps 20 "$@"
