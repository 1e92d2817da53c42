#!/usr/bin/env bash
# Paper Exp2: mt-grpo (--mt.lam 1.2). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp2_mt_grpo_lam1.2}" exec "$(dirname "$0")/openrlhf_paper.sh" exp2 mt-grpo --mt.lam 1.2 "$@"
