#!/usr/bin/env bash
# Phase B: the searchers at the planner's search GFLOPs (goal 2) on the regime that is not saturated.
set -euo pipefail
date -u +%FT%T; s=$(date +%s)
/tmp/ci0/.venv/bin/optplan bench --out /work/benchrun/full-v11 --seeds 0 1 2 --jobs 2 \
  'rows=[planned, search_model, pbt, asha, random]' --regimes appearance
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
