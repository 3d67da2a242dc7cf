#!/usr/bin/env bash
# The steps of a GPU call (the device machine has no Node.js; ../shared/device/README.md). The call carries .device/:
# node.xz, the `webgpu` package (Dawn, compressed), the Vulkan loader's .debs in gl/, and esbuild bundles of the
# programs here (tests/device/*.ts → .device/NAME.cjs, as the README's "To reproduce on a GPU" bundles bench_gpu.ts).
# This unpacks them as boot.sh does, then runs each named step, writing its files under $OUT:
#   bash tests/device/steps.sh cache:150 bench0:130 pytorch:100      (STEP[:SECONDS] …)
# Each bench/results/<card>-<date>-s<N>/README.md names the steps and the files they wrote.
set -uo pipefail
here=$(cd "$(dirname "$0")/../../.device" && pwd)
for f in "$here"/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
[ -x "$here/node" ] || { xz -dc "$here/node.xz" > "$here/node"; chmod +x "$here/node"; }
d=$here/node_modules/webgpu/dist/linux-x64
[ -f "$d/dawn.node" ] || xz -dc "$d/dawn.node.xz" > "$d/dawn.node"
if [ ! -f /usr/share/vulkan/icd.d/nvidia_icd.json ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
cd "$here/.."
N=$here/node
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1; cat "$OUT/gpu.txt"
for spec in "$@"; do
  step=${spec%%:*}; T=""; [ "$spec" != "$step" ] && T=${spec#*:}
  s0=$(date +%s)
  case $step in
    bench) mkdir -p "$OUT/bench"; timeout 280 "$N" "$here/bench_gpu.cjs" --backend webgpu --out "$OUT/bench" > "$OUT/bench.log" 2>&1; rc=$?; tail -25 "$OUT/bench.log" ;;
    pytorch) timeout 150 python3 bench/pytorch_bench.py --out "$OUT/bench" > "$OUT/pytorch.log" 2>&1; rc=$?; tail -5 "$OUT/pytorch.log" ;;
    large) mkdir -p "$OUT/lb"; timeout 260 "$N" "$here/large_batch.cjs" --backend webgpu --out "$OUT/lb" --batches 8,64,192,384 --op-batch 384 --op-chunk 32 --sweep-batch 32 --sweep-runs chunked,one-pass,one-pass_again --full-batches 32,128,192 > "$OUT/lb.log" 2>&1; rc=$?; grep -v '"max_abs_diff":0,' "$OUT/lb.log" | cut -c1-400 | tail -60 ;;
    large-noscopes) mkdir -p "$OUT/lb2"; timeout 200 "$N" "$here/large_batch.cjs" --backend webgpu --scopes no --out "$OUT/lb2" --batches 8,384 --op-batch 384 --op-chunk 32 --sweep-batch 32 --sweep-runs chunked,one-pass --full-batches 192 > "$OUT/lb2.log" 2>&1; rc=$?; cut -c1-300 "$OUT/lb2.log" | tail -30 ;;
    ioi) mkdir -p "$OUT/bench"; timeout ${T:-150} "$N" "$here/bench_gpu.cjs" --backend webgpu --out "$OUT/bench" > "$OUT/ioi.log" 2>&1; rc=$?; grep -v "^bench: .*ms$" "$OUT/ioi.log" | tail -22 ;;
    long-*) p=${step#long-}; timeout ${T:-150} "$N" "$here/cli_entry.cjs" bench --long --preset "$p" --backend webgpu --contexts ${CTX:-1024,4096,16384} --decode 16 --out "$OUT/long-$p.json" > "$OUT/long-$p.log" 2>&1; rc=$?; tail -12 "$OUT/long-$p.log" ;;
    ptlong-*) p=${step#ptlong-}; timeout ${T:-60} python3 bench/pytorch_long.py --preset "$p" --contexts ${CTX:-1024,4096,16384} --decode 16 --out "$OUT" > "$OUT/ptlong-$p.log" 2>&1; rc=$?; grep -v '^{"device"' "$OUT/ptlong-$p.log" | tail -12 ;;
    dprof-*) p=${step#dprof-}; timeout ${T:-150} "$N" "$here/decode_profile.cjs" "$OUT/dprof-$p.json" "$p" ${CTX:-1024} 6 > "$OUT/dprof-$p.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/dprof-$p.log" | cut -c1-600 | tail -14 ;;
    bertfix) timeout ${T:-120} python3 tests/fixtures/make_bert_fixtures.py "$OUT/fix" > "$OUT/bertfix.log" 2>&1; rc=$?; tail -8 "$OUT/bertfix.log" ;;
    oddfix) ONLY=neox-odd-rotary timeout ${T:-120} python3 tests/fixtures/make_fixtures.py "$OUT/fix" > "$OUT/oddfix.log" 2>&1; rc=$?; tail -4 "$OUT/oddfix.log" ;;
    cpuprof-*) p=${step#cpuprof-}; mkdir -p "$OUT/prof"; SKIP_TIME=1 timeout ${T:-150} "$N" --cpu-prof --cpu-prof-dir="$OUT/prof" "$here/decode_profile.cjs" "$OUT/cpuprof-$p.json" "$p" ${CTX:-1024} 6 > "$OUT/cpuprof-$p.log" 2>&1; rc=$?; grep "step\|flags" "$OUT/cpuprof-$p.log" | cut -c1-300 | tail -8; (cd "$OUT" && tar czf prof-$p.tgz prof && rm -rf prof) ;;
    flags-*) p=${step#flags-}; SKIP_TIME=1 TF_FLAGS="$FLAGS" timeout ${T:-150} "$N" "$here/decode_profile.cjs" "$OUT/flags-$p.json" "$p" ${CTX:-1024} 6 > "$OUT/flags-$p.log" 2>&1; rc=$?; grep "step\|flags" "$OUT/flags-$p.log" | cut -c1-300 | tail -8 ;;
    base-*) p=${step#base-}; HOST_TUNING=0 SKIP_TIME=1 timeout ${T:-150} "$N" "$here/decode_profile.cjs" "$OUT/base-$p.json" "$p" ${CTX:-1024} 6 > "$OUT/base-$p.log" 2>&1; rc=$?; grep "step\|backend" "$OUT/base-$p.log" | cut -c1-300 | tail -8 ;;
    w16-*) p=${step#w16-}; timeout ${T:-150} "$N" "$here/cli_entry.cjs" bench --long --preset "$p" --backend webgpu --contexts ${CTX:-1024,4096} --decode 16 --weights 16bit --out "$OUT/w16-$p.json" > "$OUT/w16-$p.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/w16-$p.log" | tail -12 ;;
    flash) timeout ${T:-150} "$N" "$here/flash_bench.cjs" --out "$OUT" ${FARGS:-} > "$OUT/flash.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/flash.log" | cut -c1-400 | tail -20
      if ! grep -q "every row agrees" "$OUT/flash.log"; then export HEADLENS_FLASH_MIN_ROWS=1000000000; echo "flash off for the next steps"; fi ;;
    mmdec) timeout ${T:-120} "$N" "$here/matmul_bench.cjs" "$OUT/matmul_bench_decode.json" 10 5 decode > "$OUT/mmdec.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/mmdec.log" | cut -c1-300 | tail -40 ;;
    ret16-*) p=${step#ret16-}; timeout ${T:-200} "$N" "$here/cli_entry.cjs" bench --long --preset "$p" --backend webgpu --contexts ${CTX:-16384} --retrieval --weights 16bit --out "$OUT/ret16-$p.json" > "$OUT/ret16-$p.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/ret16-$p.log" | tail -12 ;;
    parity) mkdir -p "$OUT/bench"; timeout ${T:-150} "$N" "$here/bench_gpu.cjs" --backend webgpu --out "$OUT/bench" --parity-only yes ${ARGS:-} > "$OUT/parity.log" 2>&1; rc=$?; grep -v "^bench: .*ms$" "$OUT/parity.log" | tail -30 ;;
    ret-*) p=${step#ret-}; timeout ${T:-200} "$N" "$here/cli_entry.cjs" bench --long --preset "$p" --backend webgpu --contexts ${CTX:-16384} --retrieval --out "$OUT/ret-$p.json" > "$OUT/ret-$p.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/ret-$p.log" | tail -12 ;;
    cache) timeout ${T:-200} "$N" "$here/cache_profile.cjs" "$OUT/cache_profile.json" ${SHAPES:-8x16,32x128} > "$OUT/cache.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/cache.log" | cut -c1-900 | tail -24 ;;
    fcheck) timeout ${T:-200} "$N" "$here/fused_check.cjs" --presets ${FPRESETS:-llama-7b,pythia-1.4b} --layers 4 --contexts ${FCTX:-2560} --steps 4 --rows ${FROWS:-yes} --reference ${FREF:-yes} --out "$OUT" > "$OUT/fcheck.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/fcheck.log" | cut -c1-700 | tail -8 ;;
    rowsref) mkdir -p /tmp/fcsave; timeout ${T:-400} bash -c "\"$N\" \"$here/fused_check.cjs\" --presets ${FPRESETS:-llama-7b,pythia-1.4b} --layers 4 --contexts ${FCTX:-2560} --steps 4 --rows yes --reference yes --save /tmp/fcsave --out \"$OUT\" > \"$OUT/fcheck.log\" 2>&1 && python3 tests/device/rows_reference.py /tmp/fcsave --out \"$OUT/rows_reference.json\" > \"$OUT/rowsref.log\" 2>&1"; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/fcheck.log" | cut -c1-900 | tail -4; tail -6 "$OUT/rowsref.log" 2>/dev/null | cut -c1-1500 ;;
    bench0) mkdir -p "$OUT/b0"; timeout ${T:-150} "$N" "$here/bench_gpu.cjs" --backend webgpu --parity no --out "$OUT/b0" > "$OUT/bench0.log" 2>&1; rc=$?; grep -v "^bench: .*ms$" "$OUT/bench0.log" | tail -22 ;;
    sweep) timeout ${T:-120} "$N" "$here/sweep_profile.cjs" "$OUT/sweep_profile.json" ${SWEEP:-8 16} > "$OUT/sweep.log" 2>&1; rc=$?; grep -v "^Warning\|While init\|at Init" "$OUT/sweep.log" | cut -c1-1200 | tail -24 ;;
  esac
  echo "=== step $step rc $rc in $(( $(date +%s) - s0 )) s"
done
