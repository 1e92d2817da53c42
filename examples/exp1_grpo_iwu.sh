#!/usr/bin/env bash
# Paper Exp1: grpo-iwu (--mt.lam 0.25, the paper's ablation). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_grpo_iwu}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 grpo-iwu --mt.lam 0.25 "$@"
