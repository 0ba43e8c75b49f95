#!/usr/bin/env bash
# Phase A of the shipped benchmark (bench.yaml of 00003c3): the rows that goal 1 compares first.
set -euo pipefail
date -u +%FT%T; s=$(date +%s)
/tmp/ci0/.venv/bin/optplan bench --out /work/benchrun/full-v11 --seeds 0 1 2 --jobs 2 \
  'rows=[planned, search_model, cosine@16, linear@16, step@16, plateau@16]'
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
