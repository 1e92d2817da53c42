#!/usr/bin/env bash
# Paper Exp1: sec-dapo. See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp1_sec_dapo}" exec "$(dirname "$0")/openrlhf_paper.sh" exp1 sec-dapo "$@"
