#!/bin/bash
# Undecoded untaken frames (decision 22): the server with --decode-all-frames
# ("all") and without ("filter", the default), full-resolution 640x480 30 fps
# H.264 streams with B-frames (billnet-load's generated clip), 20 s each.
#   run_series.sh            pairs all, filter at 32 40 48 streams (PAUSE=0)
#   run_series.sh reverse    pairs filter, all, 20 s pauses (tags *_r)
#   run_series.sh nice       --decode-nice 19 against 10 at 40 and 32 streams
#   run_series.sh idle       --decode-idle against the default (nice 10), twice,
#                            at 32 40 48 streams, 20 s pauses (tags *_idle_N, *_nice10_N)
#   run_series.sh scaled     client-scaled streams (--scaled), default flags, twice, at
#                            96 128 160, 20 s pauses (tags scaled*_N)
#   run_series.sh batch      128 client-scaled streams, --max-batch 1, 2 and 8
#                            (the default), twice, 20 s pauses (tags scaled128_bN_R)
#   run_series.sh perwindow  128 client-scaled streams, default flags (--max-batch 8),
#                            twice, with an experimental build (not kept) that
#                            delivered each window of a batch as it finished
#                            (tags scaled128_perwindow_N)
# STREAMS="..." overrides the counts, DURATION the seconds of video (20). /tmp/loadrepo holds only
# billnet-2x-synth/2 (a symlink to models/billnet-2x-synth/2).
cd /work/main
OUT=docs/data/decode-filter-2026-12-04
PAUSE=0
DURATION=${DURATION:-20}
run() { # tag n extra-server-flags
  tag=$1; n=$2; shift 2
  local load_flags=
  [[ $tag == scaled* ]] && load_flags=--scaled
  build/server/billnet-server --listen 127.0.0.1:50151 --metrics-listen 127.0.0.1:9564 \
      --model-repository /tmp/loadrepo --default-model billnet-2x-synth --poll-interval-ms 0 \
      --log-level warn "$@" &
  pid=$!
  sleep 3
  la=$(cut -d' ' -f1 /proc/loadavg)
  build/tools/load/billnet-load --server 127.0.0.1:50151 --streams $n --duration $DURATION $load_flags \
      --server-pid $pid --json > $OUT/$tag.json 2> $OUT/$tag.err
  curl -s http://127.0.0.1:9564/metrics |
      grep -E '^billnet_(undecoded_frames|frames)_total' > $OUT/$tag.metrics
  echo "$tag load_avg_before=$la flags=$*" >> $OUT/runs.txt
  kill $pid; wait $pid
  sleep $PAUSE
}
case "${1:-}" in
  reverse)
    PAUSE=20
    for n in ${STREAMS:-32 40 48}; do
      run full${n}_filter_r $n
      run full${n}_all_r $n --decode-all-frames
    done ;;
  nice)
    PAUSE=20
    for n in ${STREAMS:-40 32}; do
      run full${n}_filter_nice19 $n --decode-nice 19
      run full${n}_filter_nice10 $n --decode-nice 10
    done ;;
  idle)
    PAUSE=20
    for rep in 1 2; do
      for n in ${STREAMS:-32 40 48}; do
        run full${n}_idle_$rep $n --decode-idle
        run full${n}_nice10_$rep $n
      done
    done ;;
  scaled)
    PAUSE=20
    for rep in 1 2; do
      for n in ${STREAMS:-96 128 160}; do run scaled${n}_$rep $n; done
    done ;;
  batch)
    PAUSE=20
    for rep in 1 2; do
      for b in 1 2 8; do run scaled128_b${b}_$rep 128 --max-batch $b; done
    done ;;
  perwindow)
    PAUSE=20
    for rep in 1 2; do run scaled128_perwindow_$rep 128; done ;;
  *)
    for n in ${STREAMS:-32 40 48}; do
      run full${n}_all $n --decode-all-frames
      run full${n}_filter $n
    done ;;
esac
echo "done ${1:-pairs}" >> $OUT/runs.txt
