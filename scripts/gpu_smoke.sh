#!/usr/bin/env bash
# GPU smoke test of the OpenRLHF engine on one lent GPU: the real CUDA stack (vllm, flash-attn, NCCL /
# CUDA IPC weight sync) and none of the CPU bridges. MT-GRPO on the Exp. 1 tasks with a small local model,
# actor and vLLM colocated, ZeRO-3: 3 steps with eval and checkpoints, then a resume for 2 more steps.
# Passes only if every check of openrlhf_mt.engines.openrlhf.smoke_check holds (a table is printed):
# both runs logged their steps, the resume continued the step count and the task weights exactly, every
# step ran optimizer steps with a finite non-zero gradient, per-task metrics and eval are there, the task
# weights and the policy's parameters moved. Exit status 1 on any miss.
#
#   bash scripts/install_gpu.sh && source .venv-gpu/bin/activate
#   scripts/gpu_smoke.sh /path/to/Qwen2.5-0.5B       # any local HF causal LM directory
#
# Sized for under 10 minutes on one H100/H200 (not yet measured: no GPU was lent while it was written);
# OUT (default runs/gpu_smoke) holds the logs, checkpoints and TensorBoard files.
set -euo pipefail
MODEL="${1:?usage: $0 MODEL_DIR}"
shift
OUT="$(realpath -m "${OUT:-runs/gpu_smoke}")"
DATA="$OUT/data"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use --mt.cpu instead')"
rm -rf "$OUT/ckpt" "$OUT/model"
mkdir -p "$OUT"

openrlhf-mt data build --preset exp1 --train-size 256 --test-size 16 --out "$DATA" --quiet
run() {
  openrlhf-mt train-ray \
    --actor.model_name_or_path "$MODEL" \
    --data.prompt_dataset "$DATA/train.jsonl" --eval.dataset "$DATA/test.jsonl" \
    --actor.num_nodes 1 --actor.num_gpus_per_node 1 --vllm.num_engines 1 --vllm.tensor_parallel_size 1 \
    --train.colocate_all --vllm.enable_sleep --ds.enable_sleep --vllm.gpu_memory_utilization 0.5 \
    --ds.zero_stage 3 --ds.param_dtype bf16 --actor.gradient_checkpointing_enable \
    --rollout.batch_size 16 --rollout.n_samples_per_prompt 8 --train.batch_size 64 \
    --rollout.micro_batch_size 8 --train.micro_batch_size 4 \
    --data.max_len 1024 --rollout.max_new_tokens 256 --actor.adam.lr 1e-6 --actor.lr_scheduler constant \
    --eval.steps 2 --eval.n_samples_per_prompt 2 \
    --ckpt.path "$OUT/ckpt" --ckpt.output_dir "$OUT/model" --ckpt.save_steps 1 \
    --logger.tensorboard_dir "$OUT/tensorboard" \
    --mt.method mt-grpo --mt.filter_mode lenient --mt.max_rounds 3 "$@"
}
started=$SECONDS
run --mt.max_steps 3 "$@" 2>&1 | tee "$OUT/first.log"
run --mt.max_steps 5 --ckpt.load_enable "$@" 2>&1 | tee "$OUT/resumed.log"
echo "[gpu_smoke] both runs: $(( SECONDS - started )) s"
python -m openrlhf_mt.engines.openrlhf.smoke_check --log "$OUT/first.log" --log "$OUT/resumed.log" \
  --model-before "$MODEL" --model-after "$OUT/model"
