#!/usr/bin/env bash
# Paper Exp2: dapo. See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp2_dapo}" exec "$(dirname "$0")/openrlhf_paper.sh" exp2 dapo "$@"
