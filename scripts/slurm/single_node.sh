#!/usr/bin/env bash
# MT-GRPO on one 8-GPU machine without SLURM: a local Ray head with the node's GPUs, then the run.
#
#   scripts/slurm/single_node.sh ACTOR_GPUS VLLM_ENGINES VLLM_TP -- <openrlhf-mt train-ray flags>
#   scripts/slurm/single_node.sh 4 4 1 -- --actor.model_name_or_path Qwen/Qwen2.5-3B ... --mt.method mt-grpo
#   EXAMPLE=examples/exp1_mt_grpo_lam0.25.sh scripts/slurm/single_node.sh 8 8 1
#
# ACTOR_GPUS + VLLM_ENGINES x VLLM_TP must fit the node (8): DeepSpeed and vLLM on separate GPUs. For
# actor and vLLM on the same GPUs use --train.colocate_all, as the paper scripts do: with EXAMPLE, give
# ACTOR_GPUS = VLLM_ENGINES x VLLM_TP (e.g. 8 8 1).
set -euo pipefail
ACTOR_GPUS="${1:?usage: $0 ACTOR_GPUS VLLM_ENGINES VLLM_TP -- FLAGS}"
VLLM_ENGINES="${2:?}"
VLLM_TP="${3:?}"
shift 3
[ "${1:-}" = "--" ] && shift
NUM_GPUS="${NUM_GPUS:-$(nvidia-smi --list-gpus | wc -l)}"
need=$(( ACTOR_GPUS + VLLM_ENGINES * VLLM_TP ))
if [ -n "${EXAMPLE:-}" ]; then need=$ACTOR_GPUS; fi  # colocated
if [ "$need" -gt "$NUM_GPUS" ]; then
  echo "$0: the split needs $need GPUs, this node has $NUM_GPUS" >&2
  exit 2
fi
ray start --head --num-gpus="$NUM_GPUS" --disable-usage-stats
trap 'ray stop --force' EXIT
export RAY_ADDRESS="127.0.0.1:6379"
SPLIT=(--actor.num_nodes 1 --actor.num_gpus_per_node "$ACTOR_GPUS"
       --vllm.num_engines "$VLLM_ENGINES" --vllm.tensor_parallel_size "$VLLM_TP")
if [ -n "${EXAMPLE:-}" ]; then
  bash "$EXAMPLE" "${SPLIT[@]}" "$@"
else
  openrlhf-mt train-ray "${SPLIT[@]}" "$@"
fi
