#!/bin/bash
# /tmp/loadrepo holds only billnet-2x-synth/2 (a symlink to models/billnet-2x-synth/2).
cd /work/main
OUT=docs/data/threads-2026-12-04
run() { # tag n scaledflag extra-server-flags
  tag=$1; n=$2; sc=$3; shift 3
  build/server/billnet-server --listen 127.0.0.1:50151 --metrics-listen 127.0.0.1:9564 \
      --model-repository /tmp/loadrepo --default-model billnet-2x-synth --poll-interval-ms 0 --log-level warn "$@" &
  pid=$!
  sleep 3
  la=$(cut -d' ' -f1 /proc/loadavg)
  build/tools/load/billnet-load --server 127.0.0.1:50151 --streams $n --duration 20 $sc --server-pid $pid --json > $OUT/$tag.json 2> $OUT/$tag.err
  echo "$tag load_avg_before=$la flags=$*" >> $OUT/runs2.txt
  kill $pid; wait $pid
}
run full32_h1 32 "" --engine-helpers 1
run full40_h1 40 "" --engine-helpers 1
run full48_h1 48 "" --engine-helpers 1
run scaled96_h1_b1 96 --scaled --engine-helpers 1 --max-batch 1
run scaled96_h1_b8 96 --scaled --engine-helpers 1 --max-batch 8
run scaled128_h1_b1 128 --scaled --engine-helpers 1 --max-batch 1
run scaled128_h1_b8 128 --scaled --engine-helpers 1 --max-batch 8
echo done >> $OUT/runs2.txt
