#!/usr/bin/env bash
# The shipped benchmark (bench.yaml of 00003c3) timed from an empty directory.
set -euo pipefail
date -u +%FT%T; s=$(date +%s)
/tmp/ci0/.venv/bin/optplan bench --out /work/benchrun/full-v11 --seeds 0 1 2 --jobs 3
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
