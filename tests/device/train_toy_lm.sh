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
. tests/device/toy_lm_common.sh
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
probe_all $probe "$@"
for spec in "$@"; do
  name=${spec%%:*}; args=${spec#*:}
  steps=$(probed_steps $name $budget)
  [ "$steps" = 0 ] && continue
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
