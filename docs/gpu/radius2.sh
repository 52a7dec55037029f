#!/usr/bin/env bash
# One call on a lent GPU: the radius-2 staircase with k up to 4 (depth-staircase --preset radius2-gpu), its fifteen
# runs trained side by side on the one device, each stopped by its plateau budget or after BUDGET_S seconds; the
# GPU's utilisation sampled every 10 s. Runs, logs and the collected table land under $OUT (the device tool fetches
# them); render nothing here: pages come from `testbed reproduce`/`testbed docs` on the fetched runs.
#   run: bash docs/gpu/radius2.sh        (from the repository root, with the package installed)
set -euo pipefail
OUT=${OUT:-gpu-out}
BUDGET_S=${BUDGET_S:-420}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.csv"
(while true; do nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader >> "$OUT/utilisation.csv"; sleep 10; done) &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT
testbed sweep experiments/depth_staircase.toml --preset radius2-gpu --out "$OUT/runs" --jobs 15 \
  --set train.max_time_s="$BUDGET_S" --set train.threads=1 > "$OUT/sweep.log" 2>&1
testbed collect "$OUT/runs" --out "$OUT/results.csv" > "$OUT/collect.log" 2>&1
testbed plot heatmap "$OUT/results.csv" --out "$OUT/staircase.png" >> "$OUT/collect.log" 2>&1 || true
