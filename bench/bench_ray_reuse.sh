#!/bin/bash
# PBT and ASHA rows with a fresh Ray actor per trial (commit 4287fe5) and with reused actors
# that keep one TrainSession (the working tree), side by side on one finished plan of a
# benchmark OUT. Usage: bench/bench_ray_reuse.sh BENCH_OUT REGIME SEED [WORKDIR]
set -e
B=$(realpath "$1"); R=$2; S=$3
D=${4:-$(mktemp -d)}
if [ -n "$(ls -A "$D" 2>/dev/null)" ]; then echo "$D is not empty; give a new directory" >&2; exit 2; fi
[ -f "$B/$R/seed$S/planned.json" ] || { echo "$B has no finished plan for $R seed $S" >&2; exit 2; }
mkdir -p "$D"; D=$(realpath "$D")
cd "$(git rev-parse --show-toplevel)"
git worktree add -f -q $D/old 4287fe5
for v in old new; do
  if [ $v = old ]; then SRC=$D/old/src; else SRC=$PWD/src; fi
  O=$D/out-$v
  mkdir -p $O/$R/seed$S/runs/planned
  ln -s $B/data $O/data   # the same videos and frame cache
  cp $B/$R/seed$S/planned.json $O/$R/seed$S/
  cp -r $B/$R/seed$S/runs/planned/plan $O/$R/seed$S/runs/planned/
  PYTHONPATH=$SRC .venv/bin/python -m optplan bench 'rows=[planned,pbt,asha]' 'variants={}' \
      --out $O --seeds $S --regimes $R > $D/log-$v.txt 2>&1
  for row in pbt asha; do
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); d=r['detail']
print(f\"$v $row: {r['wall_seconds']:.0f} s, {r['search_gflops']:,.0f} search GFLOPs, {d['trials']} trials, \"
      f\"{d.get('processes', '-')} trial processes, test top-1 {r['top1']:.3f}, load {r['load'][0]} -> {r['load'][1]}\")" \
      $O/$R/seed$S/$row.json
  done
done
git worktree remove --force $D/old
