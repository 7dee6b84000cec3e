#!/bin/bash
# /tmp/loadrepo holds only billnet-2x-synth/2 (a symlink to models/billnet-2x-synth/2).
# engine helpers 0 vs 1, same binary, pairs back to back.
cd /work/main
OUT=docs/data/threads-2026-12-04
for spec in "1 --scaled" "32 --scaled" "64 --scaled" "96 --scaled" "128 --scaled" "1 " "8 " "16 " "24 "; do
  set -- $spec; n=$1; sc=$2
  for h in 0 1; do
    build/server/billnet-server --listen 127.0.0.1:50151 --metrics-listen 127.0.0.1:9564 \
        --model-repository /tmp/loadrepo --default-model billnet-2x-synth --poll-interval-ms 0 --log-level warn --engine-helpers $h &
    pid=$!
    sleep 3
    la=$(cut -d' ' -f1 /proc/loadavg)
    tag=$([ -n "$sc" ] && echo scaled || echo full)${n}_h$h
    build/tools/load/billnet-load --server 127.0.0.1:50151 --streams $n --duration 20 $sc --server-pid $pid --json > $OUT/$tag.json 2> $OUT/$tag.err
    echo "$tag load_avg_before=$la $(curl -s 127.0.0.1:9564/metrics | grep -E '^billnet_(dropped_windows|skipped_frames)_total' | tr '\n' ' ')" >> $OUT/runs.txt
    kill $pid; wait $pid
  done
done
echo done >> $OUT/runs.txt
