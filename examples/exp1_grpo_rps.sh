#!/usr/bin/env bash
# Paper Exp1: grpo-rps. See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_grpo_rps}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 grpo-rps "$@"
