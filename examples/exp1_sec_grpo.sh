#!/usr/bin/env bash
# Paper Exp1: sec-grpo. See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_sec_grpo}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 sec-grpo "$@"
