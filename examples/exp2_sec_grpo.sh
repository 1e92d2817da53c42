#!/usr/bin/env bash
# Paper Exp2: sec-grpo. See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp2_sec_grpo}" exec "$(dirname "$0")/openrlhf_paper.sh" exp2 sec-grpo "$@"
