#!/usr/bin/env bash
# Paper Exp1: mt-grpo-reg (--mt.eta 0.01). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_mt_grpo_reg}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 mt-grpo-reg --mt.eta 0.01 "$@"
