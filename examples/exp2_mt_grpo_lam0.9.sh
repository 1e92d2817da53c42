#!/usr/bin/env bash
# Paper Exp2: mt-grpo (--mt.lam 0.9; RPS from step 10, as released). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp2_mt_grpo_lam0.9}" exec "$(dirname "$0")/openrlhf_paper.sh" exp2 mt-grpo --mt.lam 0.9 --mt.ratio_from_step 10 "$@"
