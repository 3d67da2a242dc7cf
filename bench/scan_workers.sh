#!/usr/bin/env bash
# Throughput of one headlens scan with 1, 2, … local worker processes (`headlens scan --workers N`), and the
# speed-up over one process. A benchmark, not a test: the numbers depend on the machine and its load.
#   bench/scan_workers.sh [MODEL] [TASK] [SAMPLES] [WORKERS…]     (after npm run build)
# e.g. bench/scan_workers.sh toy-lm retrieval 16 1 2
# Each run is a fresh `headlens scan` (load, scan, write), timed end to end; every result must equal the
# one-worker result, or the script stops. HEADLENS_CMD runs another build (default: node dist/cli/main.js).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-toy-lm}; task=${2:-induction}; samples=${3:-64}; shift $(( $# < 3 ? $# : 3 )) || true
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1 2)
out=$(mktemp -d)
export HEADLENS_BACKEND=${HEADLENS_BACKEND:-wasm}
echo "scan --model $model --task $task --samples $samples on $(nproc) cores ($(uptime | sed 's/.*load average/load average/'))"
base=""
i=0
for n in "${counts[@]}"; do
  i=$((i + 1))
  s=$(date +%s.%N)
  ${HEADLENS_CMD:-node dist/cli/main.js} scan --model "$model" --task "$task" --samples "$samples" --workers "$n" --out "$out/run$i.json" 2>"$out/run$i.log" || { echo "workers $n: the scan failed:" >&2; tail -3 "$out/run$i.log" >&2; exit 1; }
  e=$(date +%s.%N)
  cmp -s "$out/run1.json" "$out/run$i.json" || { echo "workers $n: the result differs from the first run's" >&2; exit 1; }
  t=$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')
  [ -n "$base" ] || base=$t
  awk -v n="$n" -v t="$t" -v k="$samples" -v b="$base" 'BEGIN { printf "workers %2d: %7.2f s  %6.2f items/s  speed-up %.2fx\n", n, t, k / t, b / t }'
done
