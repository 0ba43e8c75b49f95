#!/usr/bin/env bash
# The scene regime (not in bench.yaml; sized as mixed), shipped settings: the planner and the 16-frame rows at x1 and x0.3.
# Seeds as arguments: ./scene.sh 0 1 2 (then ./scene.sh 3 4 5 into the same OUT).
set -euo pipefail
[ $# -gt 0 ] || set -- 0 1 2
date -u +%FT%T; s=$(date +%s)
optplan bench --out "${OUT:-/work/benchrun/scene3}" --seeds "$@" --jobs 2 --regimes scene \
  'regimes={scene: {synth: {regime: scene, videos_per_class: 180, frames: 32, size: 16, test_share: 0.5555555556}}}' \
  'rows=[planned, search_model, cosine@16, linear@16, step@16, plateau@16, cosine@16x0.3, linear@16x0.3, step@16x0.3, plateau@16x0.3]'
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
