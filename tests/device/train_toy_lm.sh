#!/usr/bin/env bash
# Trains toy-lm variants on the GPU machine (WebGPU), in parallel, inside one device call of at most 10 minutes.
# Packed with: ../shared/device/pack.sh tests/device/cli_entry.ts ; device command:
#   bash tests/device/train_toy_lm.sh TRAIN_SECONDS "NAME:ARGS" ["NAME:ARGS" …]
# Each variant first runs a short probe to measure its own steps/s with all variants running, then trains
# from scratch with as many steps as fit TRAIN_SECONDS (the cosine schedule needs the step count up front).
# Results: $OUT/NAME.tgz (the HF folder) and $OUT/NAME.log (one JSON line per evaluation).
set -u
budget=${1:?usage: train_toy_lm.sh TRAIN_SECONDS NAME:ARGS...}; shift
bash .device/boot.sh --help >/dev/null 2>&1 || true   # unpack the loaders and node once, before the parallel runs
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
probe=40
for spec in "$@"; do
  name=${spec%%:*}; args=${spec#*:}
  ( bash .device/boot.sh train --recipe toy-lm --backend webgpu --out /tmp/probe-$name --steps 100000 --max-seconds $probe $args > /tmp/probe-$name.json 2>/tmp/probe-$name.err ) &
done
wait
for spec in "$@"; do
  name=${spec%%:*}; args=${spec#*:}
  steps=$(python3 -c "import json,sys; r=json.load(open('/tmp/probe-$name.json')); print(max(50, int(r['step'] / r['seconds'] * $budget)))" 2>/dev/null || echo 0)
  echo "$name: probe $(cat /tmp/probe-$name.json 2>/dev/null | head -c 300) -> $steps steps"
  [ "$steps" = 0 ] && { tail -5 /tmp/probe-$name.err; continue; }
  ( bash .device/boot.sh train --recipe toy-lm --backend webgpu --out /tmp/run-$name --steps $steps --max-seconds $((budget + 60)) $args > $OUT/$name.json 2> $OUT/$name.log
    cd /tmp/run-$name && tar czf $OUT/$name.tgz config.json model.safetensors tokenizer.json trainer_state.json ) &
done
wait
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
for spec in "$@"; do name=${spec%%:*}; echo "== $name"; cat $OUT/$name.json; grep evalLoss $OUT/$name.log | tail -3; done
