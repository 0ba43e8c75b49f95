#!/usr/bin/env bash
# The project's own GPU training paths, end to end on real decoded video (bench/RESULTS.md, "GPU
# paths"): one state with bf16 and with fp16 autocast (channels_last_3d on, the default), then
# the same state as two NCCL processes under torchrun with frozen BatchNorm (SyncBatchNorm).
# Usage: bench/gpu_smoke.sh WORKDIR   (needs a CUDA device; PYTHONPATH must reach optplan)
set -uo pipefail
work="${1:?usage: bench/gpu_smoke.sh WORKDIR}"
py="${PYTHON:-python3}"
op() { "$py" -c 'import sys; from optplan.cli import main; sys.exit(main())' "$@"; }
mkdir -p "$work"
op data synth "$work/data" --regime mixed --videos-per-class 16 >/dev/null || exit 1
cat > "$work/state.yaml" <<YAML
{name: c8, lr: 0.05, clip_length: 8, batch_size: 16}
YAML
cat > "$work/frozen.yaml" <<YAML
{name: c8_fbn, lr: 0.05, clip_length: 8, batch_size: 16, frozen_bn: true}
YAML
common=(data.root="$work/data" data.crop_size=56 data.short_side=64 data.num_workers=4
        train.device=cuda train.progress=false train.tensorboard=false knee.max_epochs=6 knee.patience=3)
for amp in bf16 fp16; do
  start=$(date +%s.%N)
  op train --state "$work/state.yaml" --out "$work/run_$amp" "${common[@]}" train.amp=$amp >"$work/run_$amp.log" 2>&1
  rc=$?; end=$(date +%s.%N)
  echo "amp=$amp rc=$rc seconds=$("$py" -c "print(round($end - $start, 1))") result: $(tr -d '\n' < "$work/run_$amp/result.json" 2>/dev/null | head -c 400)"
  [ $rc -eq 0 ] || tail -5 "$work/run_$amp.log"
done
printf 'import sys\nfrom optplan.cli import main\nsys.exit(main())\n' > "$work/optplan_main.py"
"$py" -m torch.distributed.run --nproc_per_node=2 "$work/optplan_main.py" train --state "$work/frozen.yaml" \
  --out "$work/run_ddp" "${common[@]}" train.amp=bf16 >"$work/run_ddp.log" 2>&1
rc=$?
echo "ddp nproc=2 gpus=$("$py" -c 'import torch; print(torch.cuda.device_count())') rc=$rc"
[ $rc -eq 0 ] && tr -d '\n' < "$work/run_ddp/result.json" | head -c 400 || grep -m3 -i -E "error|nccl|duplicate" "$work/run_ddp.log"
