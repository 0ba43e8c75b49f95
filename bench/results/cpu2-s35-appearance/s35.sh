#!/usr/bin/env bash
# Appearance seeds 3-5 of the shipped bench.yaml: the planner and the 16-frame hand-tuned rows at x1 and x0.3 (goal 1 on 6 seeds).
set -euo pipefail
date -u +%FT%T; s=$(date +%s)
optplan bench --out /work/benchrun/s35 --seeds 3 4 5 --jobs 2 --regimes appearance \
  'rows=[planned, search_model, cosine@16, linear@16, step@16, plateau@16, cosine@16x0.3, linear@16x0.3, step@16x0.3, plateau@16x0.3]'
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
