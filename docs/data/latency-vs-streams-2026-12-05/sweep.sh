#!/bin/bash
# Window latency against concurrent streams on one build (docs/performance.md,
# "Latency against concurrent streams (2026-12-05)"). A fresh server per run,
# 20 s of video per stream, 10 s pauses, every count once per pass.
# usage: sweep.sh BUILD_DIR MODEL_REPO OUT_DIR PASSES
B=${1:-build}; REPO=${2:-models}; OUT=${3:-.}; PASSES=${4:-2}
run() {  # kind streams
  "$B/server/billnet-server" --listen 127.0.0.1:50171 --metrics-listen 127.0.0.1:9584 \
      --model-repository "$REPO" --default-model billnet-2x-synth --poll-interval-ms 0 \
      --log-level warn 2>/dev/null &
  local pid=$!
  sleep 3
  local flags=() label="640x480 30 fps H.264"
  [[ $1 == scaled ]] && flags=(--scaled) label="client-scaled 96x128 6 fps"
  "$B/tools/load/billnet-load" --server 127.0.0.1:50171 --streams "$2" --duration 20 \
      "${flags[@]}" --label "$label" --server-pid $pid --json >> "$OUT/$1.jsonl" 2>/dev/null
  kill $pid; wait $pid 2>/dev/null
  sleep 10
}
for pass in $(seq "$PASSES"); do
  for n in 32 64 128 160 192 224 256; do run scaled $n; done
  for n in 8 16 32 40 48 56; do run full $n; done
done
