#!/bin/bash
# The process executor before (e6dc1cb: a TrainSession per edge job) and after (one per worker),
# side by side with the in-process executor, on a tiny 2 x 2 plan; two rounds. Usage: bench/bench_executor_session.sh [WORKDIR]
set -e
D=${1:-$(mktemp -d)}
if [ -n "$(ls -A "$D" 2>/dev/null)" ]; then echo "$D is not empty; give a new directory" >&2; exit 2; fi
mkdir -p "$D"
cd "$(git rev-parse --show-toplevel)"
git worktree add -f -q $D/old e6dc1cb
.venv/bin/optplan data synth $D/data --videos-per-class 12 --frames 24 --size 32 > /dev/null
ARGS="data.root=$D/data data.crop_size=28 data.short_side=32 data.num_workers=0 train.threads=1 train.progress=false data.cache_dir=$D/cache knee.patience=2 knee.max_epochs=3 plan.clip_lengths=[4,8] plan.base_lrs=[0.02,0.02] plan.lr_multipliers=[1,0.1] plan.batch_sizes=[8,8] plan.accumulation=[1,1]"
for round in 1 2; do
for v in old new; do
  if [ $v = old ]; then SRC=$D/old/src; else SRC=$PWD/src; fi
  for ex in inprocess process; do
    s=$(date +%s.%N)
    PYTHONPATH=$SRC .venv/bin/python -m optplan plan --quiet --out $D/run-$v-$ex-$round --executor $ex --workers 2 $ARGS > /dev/null 2>&1
    e=$(date +%s.%N)
    echo "round $round $v $ex $(echo "$e - $s" | bc) s load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
done
git worktree remove --force $D/old
