#!/bin/bash
cd /work/main
OUT=docs/data/decode-filter-2026-12-04
run() { # tag n extra-server-flags
  tag=$1; n=$2; shift 2
  build/server/billnet-server --listen 127.0.0.1:50151 --metrics-listen 127.0.0.1:9564 \
      --model-repository /tmp/loadrepo --default-model billnet-2x-synth --poll-interval-ms 0 \
      --log-level warn "$@" &
  pid=$!
  sleep 3
  la=$(cut -d' ' -f1 /proc/loadavg)
  build/tools/load/billnet-load --server 127.0.0.1:50151 --streams $n --duration 20 \
      --server-pid $pid --json > $OUT/$tag.json 2> $OUT/$tag.err
  echo "$tag load_avg_before=$la flags=$*" >> $OUT/runs.txt
  kill $pid; wait $pid
  sleep 20
}
for n in ${STREAMS:-40}; do
  run full${n}_filter_nice19 $n --decode-nice 19
  run full${n}_filter_nice10 $n --decode-nice 10
done
