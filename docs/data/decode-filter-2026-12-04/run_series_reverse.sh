#!/bin/bash
# The pairs of run_series.sh again in the other order (filter first), with a
# 20 s pause between runs so the load average settles.
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
  curl -s http://127.0.0.1:9564/metrics | grep -E '^billnet_(undecoded_frames|frames)_total' > $OUT/$tag.metrics
  echo "$tag load_avg_before=$la flags=$*" >> $OUT/runs.txt
  kill $pid; wait $pid
  sleep 20
}
for n in ${STREAMS:-32 40 48}; do
  run full${n}_filter_r $n
  run full${n}_all_r $n --decode-all-frames
done
echo done-reverse >> $OUT/runs.txt
