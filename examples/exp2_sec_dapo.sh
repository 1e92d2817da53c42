#!/usr/bin/env bash
# Paper Exp2: sec-dapo (10 generation rounds, as released). See openrlhf_paper.sh for MODEL, DATA, OUT, GPUS.
OUT="${OUT:-runs/exp2_sec_dapo}" exec "$(dirname "$0")/openrlhf_paper.sh" exp2 sec-dapo --mt.max_rounds 10 "$@"
