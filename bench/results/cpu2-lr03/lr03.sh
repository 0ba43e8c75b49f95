#!/usr/bin/env bash
# Hand-tuned 16-frame rows at x0.3 of the base lr (the lr of the planner's first stages on every
# plan of the shipped run), at each plan's training GFLOPs, beside the shipped run's own plans:
# the OUT holds copies of that run's finished planner rows (each unit's planned.json,
# search_model.json, runs/settings.json and runs/planned/plan) and a link to its data, so no plan
# is searched again (code of the commit that added KIND@CLIPxM rows; 2 Intel Xeon cores, beside
# the rest of the shipped run's rows).
set -euo pipefail
SHIPPED=${SHIPPED:-/work/benchrun/full-v11}; OUT=${OUT:-/work/benchrun/lr03}
for r in appearance motion mixed; do for s in 0 1 2; do
  u=$SHIPPED/$r/seed$s; d=$OUT/$r/seed$s; mkdir -p "$d/runs/planned"
  cp "$u/planned.json" "$u/search_model.json" "$d/"; cp "$u/runs/settings.json" "$d/runs/"
  cp -r "$u/runs/planned/plan" "$d/runs/planned/"
done; done
ln -sfn "$SHIPPED/data" "$OUT/data"
date -u +%FT%T; s=$(date +%s)
optplan bench --out "$OUT" --seeds 0 1 2 --jobs 1 'rows=[planned, cosine@16x0.3, step@16x0.3, plateau@16x0.3, linear@16x0.3]'
e=$(date +%s); date -u +%FT%T; echo "wall seconds: $((e - s))"
