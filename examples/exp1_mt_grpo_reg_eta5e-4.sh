#!/usr/bin/env bash
# Paper Exp1: mt-grpo-reg (--mt.eta 5e-4; RPS from step 10, as released). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_mt_grpo_reg_eta5e-4}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 mt-grpo-reg --mt.eta 5e-4 --mt.ratio_from_step 10 "$@"
