#!/usr/bin/env bash
# Paper Exp1: mt-grpo (--mt.lam 0.25). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_mt_grpo_lam0.25}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 mt-grpo --mt.lam 0.25 "$@"
