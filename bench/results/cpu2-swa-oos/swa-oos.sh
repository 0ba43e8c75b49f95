#!/usr/bin/env bash
# Out-of-sample check of train.average_last=0.25 (seeds never used to shape the rule), code of a93f8ee.
set -euo pipefail
OP=/tmp/ci0/.venv/bin/optplan
A='appearance: {synth: {regime: appearance, videos_per_class: 108, frames: 32, size: 16, test_share: 0.5555555556}}'
S='scene: {synth: {regime: scene, videos_per_class: 180, frames: 32, size: 16, test_share: 0.5555555556}}'
M='motion: {synth: {regime: motion, videos_per_class: 360, frames: 32, size: 16, test_share: 0.5555555556}}'
X='mixed: {synth: {regime: mixed, videos_per_class: 180, frames: 32, size: 16, test_share: 0.5555555556}}'
$OP bench --out /work/benchrun/swa-oos --seeds "$@" --jobs 2 'rows=[planned, search_model, linear@16, cosine@16]' \
  config.train.average_last=0.25 "regimes={$A, $S, $M, $X}" --regimes ${REGIMES:-appearance scene}
