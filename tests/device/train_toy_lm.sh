#!/usr/bin/env bash
# Trains toy-lm variants on the GPU machine (WebGPU), in parallel, inside one device call of at most 10 minutes.
# Packed with: ../shared/device/pack.sh tests/device/cli_entry.ts ; device command:
#   bash tests/device/train_toy_lm.sh TRAIN_SECONDS "NAME:ARGS" ["NAME:ARGS" …]
# Each variant first runs a short probe to measure its own steps/s with all variants running, then trains
# from scratch with as many steps as fit TRAIN_SECONDS (the cosine schedule needs the step count up front).
# Results: $OUT/NAME.tgz, one file a variant (the tool returns at most 8): the HF folder, run.json (the
# command's result line), train.log (one JSON line per evaluation) and, with FINDINGS=1, findings.jsonl
# (`headlens findings` on the trained folder, run on the CPU with wasm).
set -u
budget=${1:?usage: train_toy_lm.sh TRAIN_SECONDS NAME:ARGS...}; shift
probe=${PROBE_SECONDS:-30}
common="--recipe toy-lm --backend webgpu --eval-every 100 --checkpoint-every 1000000"
bash .device/boot.sh --help >/dev/null 2>&1 || true   # unpack the loaders and node once: boot.sh's dpkg -x races when run in parallel
[ -f /usr/share/vulkan/icd.d/nvidia_icd.json ] || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
hl() { .device/node .device/bundle.cjs "$@"; }
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
for spec in "$@"; do
  name=${spec%%:*}; args=${spec#*:}
  # the probe's own limits come after the variant's arguments, which may hold --steps or --max-seconds of their own
  # (the last value wins: a variant with --max-seconds 425 once turned its 3 s probe into a 425 s run)
  ( hl train $common --out /tmp/probe-$name $args --steps 100000 --max-seconds $probe > /tmp/probe-$name.json 2>/tmp/probe-$name.err ) &
done
wait
for spec in "$@"; do
  name=${spec%%:*}; args=${spec#*:}
  steps=$(python3 -c "import json; r=json.load(open('/tmp/probe-$name.json')); print(max(50, int(r['step'] / r['seconds'] * $budget)))" 2>/dev/null || echo 0)
  echo "$name: probe $(head -c 200 /tmp/probe-$name.json 2>/dev/null) -> $steps steps"
  if [ "$steps" = 0 ]; then tail -n 20 /tmp/probe-$name.err; continue; fi
  ( mkdir -p /tmp/log-$name   # not in the run's folder: a checkpoint replaces that folder
    hl train $common --out /tmp/run-$name --steps $steps --max-seconds $((budget + 45)) $args > /tmp/log-$name/run.json 2> /tmp/log-$name/train.log
    # what the model card reports, measured on the CPU cores (wasm) while other variants still train
    if [ "${FINDINGS:-0}" = 1 ]; then hl findings --model /tmp/run-$name --backend wasm > /tmp/log-$name/findings.jsonl 2>&1; fi
    touch /tmp/log-$name/findings.jsonl
    tar czf $OUT/$name.tgz -C /tmp/run-$name config.json model.safetensors tokenizer.json trainer_state.json -C /tmp/log-$name run.json train.log findings.jsonl ) &
done
wait
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
for spec in "$@"; do name=${spec%%:*}; echo "== $name"; head -c 400 /tmp/log-$name/run.json; echo; grep evalLoss /tmp/log-$name/train.log | tail -n 2; tail -n 3 /tmp/log-$name/train.log | grep -v evalLoss; cut -c1-300 /tmp/log-$name/findings.jsonl; done
