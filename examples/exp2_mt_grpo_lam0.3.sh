#!/usr/bin/env bash
# Paper Exp2: mt-grpo (--mt.lam 0.3; RPS from step 10; improvement clip 0.1, as released). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp2_mt_grpo_lam0.3}" exec "$(dirname "$0")/openrlhf_paper.sh" exp2 mt-grpo --mt.lam 0.3 --mt.ratio_from_step 10 --mt.improvement_clip 0.1 "$@"
