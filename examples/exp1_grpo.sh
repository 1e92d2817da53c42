#!/usr/bin/env bash
# Paper Exp1: grpo. See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_grpo}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 grpo "$@"
