#!/usr/bin/env bash
# Phase D: every row of bench.yaml not yet run (short clips, short-then-long, multigrid; the searchers of motion and mixed).
set -euo pipefail
date -u +%FT%T; s=$(date +%s)
/tmp/ci0/.venv/bin/optplan bench --out /work/benchrun/full-v11 --seeds 0 1 2 --jobs 2
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
