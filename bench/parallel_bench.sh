#!/usr/bin/env bash
# `optplan bench` as one process per (regime, seed), for a machine with many cores (each
# process trains with the bench config's thread count). Same rows, same files, same summary as
# one `optplan bench`: the last call finds every row done and writes OUT/summary.json, table.md.
#   bench/parallel_bench.sh OUT "REGIMES" "SEEDS" [KEY=VALUE ...]
#   e.g. bench/parallel_bench.sh out "motion mixed" "0 1 2" 'rows=[cosine@16]'
set -uo pipefail
out="${1:?usage: bench/parallel_bench.sh OUT REGIMES SEEDS [KEY=VALUE ...]}"; regimes="$2"; seeds="$3"; shift 3
py="${PYTHON:-python3}"
op() { "$py" -c 'import sys; from optplan.cli import main; sys.exit(main())' "$@"; }
mkdir -p "$out"
# Each regime's dataset first: two processes of one regime would both start generating it.
for r in $regimes; do
  "$py" -c 'import sys; from pathlib import Path
from optplan.bench.config import load_bench_config
from optplan.bench.runner import regime_root
bench = load_bench_config(None, sys.argv[3:])
regime_root(Path(sys.argv[1]), sys.argv[2], bench.regimes[sys.argv[2]])' "$out" "$r" "$@" &
done
wait
for r in $regimes; do
  for s in $seeds; do
    op bench "$@" --out "$out" --seeds "$s" --regimes "$r" >"$out/log_${r}_seed$s.txt" 2>&1 &
  done
done
wait
# shellcheck disable=SC2086
op bench "$@" --out "$out" --seeds $seeds --regimes $regimes
