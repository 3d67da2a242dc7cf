# Sourced by train_toy_lm.sh and long_toy_lm.sh: the GPU machine's setup, `hl` (the bundled headlens), and the
# probes that measure each variant's steps/s with all variants running at once.
common="--recipe toy-lm --backend webgpu --eval-every 100 --checkpoint-every 1000000"
bash .device/boot.sh --help >/dev/null 2>&1 || true   # unpack the loaders and node once: boot.sh's dpkg -x races when run in parallel
[ -f /usr/share/vulkan/icd.d/nvidia_icd.json ] || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
hl() { .device/node .device/bundle.cjs "$@"; }

# probe_all SECONDS "NAME:ARGS" …: trains every variant for SECONDS at once, into /tmp/probe-NAME
probe_all() {
  local secs=$1 spec name args; shift
  for spec in "$@"; do
    name=${spec%%:*}; args=${spec#*:}
    # the probe's own limits come after the variant's arguments, which may hold --steps or --max-seconds of their own
    # (the last value wins: a variant with --max-seconds 425 once turned its 3 s probe into a 425 s run)
    ( hl train $common --out /tmp/probe-$name $args --steps 100000 --max-seconds $secs > /tmp/probe-$name.json 2>/tmp/probe-$name.err ) &
  done
  wait
}

# probed_steps NAME SECONDS: the steps NAME's probe rate fits into SECONDS (at least 50), or 0 with the probe's
# errors on stderr when it failed; says what it found on stderr
probed_steps() {
  local steps
  steps=$(python3 -c "import json; r=json.load(open('/tmp/probe-$1.json')); print(max(50, int(r['step'] / r['seconds'] * $2)))" 2>/dev/null || echo 0)
  echo "$1: probe $(head -c 200 /tmp/probe-$1.json 2>/dev/null) -> $steps steps" >&2
  [ "$steps" = 0 ] && tail -n 20 /tmp/probe-$1.err >&2
  echo $steps
}
