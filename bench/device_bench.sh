#!/usr/bin/env bash
# `optplan bench` on a lent GPU machine (the device tool in /work/.library): installs the wheels
# carried in .whl/ (av, pydantic, kneed and their dependencies; torch, numpy and scipy are there
# already), runs the benchmark into gpu_out/NAME with the given arguments and copies its tables,
# summary, log and row files (rows.tgz) to $OUT. gpu_out/ stays on a warm machine, so a second call resumes the run;
# give a second call the same NAME even for new --seeds: a new NAME generates and decodes the
# data again (1.5 of a lease's 15 minutes on 2026-11-27).
# Usage (via the device tool, carry [".whl"]):
#   bash bench/device_bench.sh NAME --seeds 0 1 2 --jobs 12 'rows=[...]' config.KEY=VALUE ...
# An argument REGIMES4 (the bare word) stands for the four regimes of bench/RESULTS.md's device
# runs: the shipped three and `scene` at the shipped sizes.
set -u
name="${1:?usage: bench/device_bench.sh NAME [optplan bench arguments]}"; shift
python -m pip install -q --no-index --no-deps --root-user-action=ignore .whl/*.whl 2>&1 | tail -5
export PYTHONPATH=$PWD/src
python -c "import sys, torch, av; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available(), av.__version__)"
echo "cores $(nproc); $(uptime)"
s='synth: {videos_per_class: VPC, frames: 32, size: 16, test_share: 0.5555555556'
REGIMES4="regimes={appearance: {${s/VPC/108}, regime: appearance}}, motion: {${s/VPC/360}, regime: motion}}, mixed: {${s/VPC/180}, regime: mixed}}, scene: {${s/VPC/180}, regime: scene}}}"
args=()
for a in "$@"; do [ "$a" = REGIMES4 ] && args+=("$REGIMES4") || args+=("$a"); done
mkdir -p gpu_out
start=$(date +%s)
timeout "${LIMIT:-520}" python -m optplan bench --out "gpu_out/$name" "${args[@]}" > "gpu_out/$name.log" 2>&1
echo "rc=$? seconds=$(( $(date +%s) - start )); $(uptime)"
grep -c "test top-1" "gpu_out/$name.log"; tail -3 "gpu_out/$name.log"
cp "gpu_out/$name.log" "$OUT/"
cp "gpu_out/$name"/table.md "gpu_out/$name"/summary.json "gpu_out/$name"/bench.json "$OUT/" 2>/dev/null
# every finished row, also when the limit stopped the run before its tables were written
(cd "gpu_out/$name" && find . -path "*/seed*/*.json" -not -path "*/runs/*" | tar czf "$OUT/rows.tgz" -T -)
true
