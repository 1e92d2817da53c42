#!/usr/bin/env bash
# Paper Exp2: mt-grpo-reg (--mt.eta 1e-2; RPS from step 10, as released). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp2_mt_grpo_reg_eta1e-2}" exec "$(dirname "$0")/openrlhf_paper.sh" exp2 mt-grpo-reg --mt.eta 1e-2 --mt.ratio_from_step 10 "$@"
