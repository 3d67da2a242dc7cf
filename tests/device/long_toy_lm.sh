#!/usr/bin/env bash
# Trains toy-lm variants on the GPU machine (WebGPU) over several device calls, in parallel: one cosine
# schedule across the calls, each call resuming the last one's checkpoint (optimizer state and data order too).
#   bash tests/device/long_toy_lm.sh start TOTAL_SECONDS CALL_SECONDS "NAME:ARGS" …   (the first call)
#   bash tests/device/long_toy_lm.sh resume CALL_SECONDS NAME …                        (the next ones)
# `start` probes each variant's steps/s for PROBE_SECONDS (default 25) with all of them running, and sets its
# --steps to what fits TOTAL_SECONDS. Checkpoints live in /tmp/runs/NAME, which the machine keeps between calls
# while it stays warm, 30 s after a call (the copied tree does not keep them: an ignored folder there was gone at
# the next call). A fresh machine has none: then start a new stage with --init from the weights that came back,
# carried in an ignored folder. Results of every call: $OUT/NAME.tgz (config, weights, tokenizer, trainer_state.json, the
# run's JSON line and its train log); `headlens findings` is run on them where they land, not here.
set -u
mode=${1:?usage: long_toy_lm.sh start TOTAL CALL NAME:ARGS… | resume CALL NAME…}; shift
. tests/device/toy_lm_common.sh
runs=/tmp/runs; mkdir -p $runs
pack() { # NAME: the call's results
  cp /tmp/run-$1.json /tmp/train-$1.log $runs/$1/ 2>/dev/null
  tar czf $OUT/$1.tgz -C $runs/$1 config.json model.safetensors tokenizer.json trainer_state.json run-$1.json train-$1.log
}
if [ "$mode" = start ]; then
  total=$1; secs=$2; shift 2
  probe_all ${PROBE_SECONDS:-25} "$@"
  for spec in "$@"; do
    name=${spec%%:*}; args=${spec#*:}
    steps=$(probed_steps $name $total)
    [ "$steps" = 0 ] && continue
    ( hl train $common --out $runs/$name --steps $steps --max-seconds $secs $args > /tmp/run-$name.json 2> /tmp/train-$name.log; pack $name ) &
  done
else
  secs=$1; shift
  for name in "$@"; do
    [ -d $runs/$name ] || { echo "$name: no $runs/$name on this machine (a fresh one): --init the weights that came back instead"; continue; }
    ( hl train --backend webgpu --resume $runs/$name --max-seconds $secs > /tmp/run-$name.json 2> /tmp/train-$name.log; pack $name ) &
  done
fi
wait
for f in /tmp/run-*.json; do n=${f#/tmp/run-}; n=${n%.json}; echo "== $n"; head -c 300 $f; echo; grep evalLoss /tmp/train-$n.log | tail -n 1 | cut -c1-200; done
