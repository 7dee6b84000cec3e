#!/bin/bash
# Steady-state runs on one build (docs/performance.md, "Steady state against
# the measured cost (2026-12-05, session 12)"). A fresh server per run, 40 s of
# video per stream, 15 s pauses; each KIND:STREAMS of the list once per pass.
# usage: sweep.sh BUILD_DIR MODEL_REPO OUT_DIR PASSES "scaled:192 full:48 ..."
B=${1:-build}; REPO=${2:-models}; OUT=${3:-.}; PASSES=${4:-2}
LIST=${5:-"scaled:192 scaled:224 scaled:256 full:48 full:56"}
run() {  # kind streams
  "$B/server/billnet-server" --listen 127.0.0.1:50171 --metrics-listen 127.0.0.1:9584 \
      --model-repository "$REPO" --default-model billnet-2x-synth --poll-interval-ms 0 \
      --log-level warn 2>/dev/null &
  local pid=$!
  sleep 3
  local flags=() label="640x480 30 fps"
  [[ $1 == scaled ]] && flags=(--scaled) label="client-scaled"
  "$B/tools/load/billnet-load" --server 127.0.0.1:50171 --streams "$2" --duration 40 \
      "${flags[@]}" --label "$label" --server-pid $pid --json >> "$OUT/$1.jsonl" 2>/dev/null
  kill $pid; wait $pid 2>/dev/null
  sleep 15
}
for pass in $(seq "$PASSES"); do
  for item in $LIST; do run "${item%%:*}" "${item##*:}"; done
done
