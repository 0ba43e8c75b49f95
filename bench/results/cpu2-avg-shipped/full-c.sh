#!/usr/bin/env bash
# Phase C: random search at 3x the planner's search GFLOPs (goal 3) on appearance.
set -euo pipefail
date -u +%FT%T; s=$(date +%s)
/tmp/ci0/.venv/bin/optplan bench --out /work/benchrun/full-v11 --seeds 0 1 2 --jobs 3 \
  'rows=[planned, search_model, random_x3]' --regimes appearance
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
