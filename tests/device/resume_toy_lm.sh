#!/usr/bin/env bash
# Continues toy-lm runs on the GPU machine (WebGPU), in parallel, inside one device call: --resume a checkpoint
# (same schedule, optimizer state and data order) or --init from weights (a new stage). Copy each FROM folder into
# .device/FROM first. Used for the stage-5 continuations the toy-lm model card reports (not shipped).
#   bash tests/device/resume_toy_lm.sh SECONDS "NAME:resume|init:FROM:ARGS" …
# (The card's continuations ran when --max-seconds still counted the resumed run's earlier seconds, and passed
# --max-seconds 755 = 425 + 330 in ARGS; it now counts each call's own.)
# Results: $OUT/NAME.tgz (the folder, its run line and train log) and $OUT/NAME.findings.jsonl (headlens findings).
set -u
secs=$1; shift
bash .device/boot.sh --help >/dev/null 2>&1 || true
[ -f /usr/share/vulkan/icd.d/nvidia_icd.json ] || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
hl() { .device/node .device/bundle.cjs "$@"; }
for spec in "$@"; do
  IFS=: read -r name mode from args <<<"$spec"
  ( hl train --recipe toy-lm --backend webgpu --eval-every 100 --checkpoint-every 1000000 --$mode .device/$from --out /tmp/run-$name --batch-size 32 --steps 3000 --max-seconds $secs $args > /tmp/run-$name.json 2> /tmp/train-$name.log
    cp /tmp/run-$name.json /tmp/train-$name.log /tmp/run-$name/
    tar czf $OUT/$name.tgz -C /tmp/run-$name config.json model.safetensors tokenizer.json trainer_state.json optimizer_state.safetensors run-$name.json train-$name.log
    hl findings --model /tmp/run-$name --backend wasm > $OUT/$name.findings.jsonl 2>&1 ) &
done
wait
for spec in "$@"; do name=${spec%%:*}; echo "== $name"; cat /tmp/run-$name.json; cut -c1-250 $OUT/$name.findings.jsonl; done
