#!/bin/bash
# How the inference pool should form batches for client-scaled streams (issue 7):
# billnet-load --scaled against the server with different pool settings, 20 s of
# video per stream, 20 s pauses, alternating configurations, twice.
#   run_series.sh          128 and 160 streams: default (2 threads, --max-batch 8: b8),
#                          --max-batch 1 (b1), --max-batch 1 --engine-helpers 0 (b1h0),
#                          --inference-threads 1 --max-batch 1 (t1b1) (tags scaledN_<cfg>_R)
#   run_series.sh full     full-resolution 640x480 streams (billnet-load's default clip) at 40
#                          and 48, $OLD_SERVER against this build, default flags (tags
#                          fullN_old_b8_R, fullN_b8_R)
#   run_series.sh fullnice --decode-nice 19 against the default 10, this build, 48 streams
#                          (tags full48_nice19_R, full48_b8_R)
#   run_series.sh arena    48 streams, --decode-nice 19, the server with MALLOC_ARENA_MAX=512
#                          (a malloc arena per thread) against without, three times
#                          (tags full48_nice19arena_R, full48_nice19_R)
# CONFIGS="b8 b1h0 t1b1" picks configurations (also b8idle: --decode-idle); old_b8 and old_b1 run $OLD_SERVER
# (the binary from before HelperGate, decision 24) with the default flags / --max-batch 1.
# STREAMS="..." overrides the counts, DURATION the seconds of video (20), REPS the
# repetitions (2), FIRST_REP the first repetition's number in the tags (1). /tmp/loadrepo holds only billnet-2x-synth/2 (a symlink to
# models/billnet-2x-synth/2).
#   CONFIGS="..." run_series.sh fullcfg   full-resolution streams (STREAMS, default 48) in the
#                          configurations named as for scaled streams, plus nice19 and old_nice19
#                          (--decode-nice 19) (tags fullN_<cfg>_R)
# OUT=DIR writes the reports and runs.txt there instead (a later session's series).
cd /work/main
OUT=${OUT:-docs/data/batch-policy-2026-12-05}
DURATION=${DURATION:-20}
PAUSE=${PAUSE:-20}
run() { # tag n extra-server-flags
  tag=$1; n=$2; shift 2
  local server=build/server/billnet-server
  if [[ $tag == *_old_* ]]; then server=$OLD_SERVER; fi
  local env=
  if [[ $tag == *arena* ]]; then env="MALLOC_ARENA_MAX=512"; fi
  env $env $server --listen 127.0.0.1:50151 --metrics-listen 127.0.0.1:9564 \
      --model-repository /tmp/loadrepo --default-model billnet-2x-synth --poll-interval-ms 0 \
      --log-level warn "$@" &
  pid=$!
  sleep 3
  la=$(cut -d' ' -f1 /proc/loadavg)
  local load_flags=
  [[ $tag == scaled* ]] && load_flags=--scaled
  build/tools/load/billnet-load --server 127.0.0.1:50151 --streams $n --duration $DURATION $load_flags \
      --server-pid $pid --json --label "$(sed -E "s/^[a-z]+${n}_(.*)_[0-9]+$/\\1/" <<< $tag)" > $OUT/$tag.json 2> $OUT/$tag.err
  echo "$tag load_avg_before=$la flags=$*" >> $OUT/runs.txt
  kill $pid; wait $pid
  sleep $PAUSE
}
# The modes are presets of one loop over repetitions, stream counts and configurations.
kind=scaled
case "${1:-}" in
  full) kind=full; CONFIGS=${CONFIGS:-old_b8 b8}; STREAMS=${STREAMS:-40 48} ;;
  fullnice) kind=full; CONFIGS=${CONFIGS:-nice19 b8} ;;
  arena) kind=full; CONFIGS=${CONFIGS:-nice19arena nice19}; REPS=${REPS:-3} ;;
  fullcfg) kind=full ;;
esac
for rep in $(seq ${FIRST_REP:-1} $(( ${FIRST_REP:-1} + ${REPS:-2} - 1 ))); do
  for n in ${STREAMS:-$([[ $kind == full ]] && echo 48 || echo 128 160)}; do
    for c in ${CONFIGS:-b8 b1 b1h0 t1b1}; do
      case $c in
        b8 | old_b8) run $kind${n}_${c}_$rep $n ;;
        b1 | old_b1) run $kind${n}_${c}_$rep $n --max-batch 1 ;;
        nice19 | old_nice19 | nice19arena) run $kind${n}_${c}_$rep $n --decode-nice 19 ;;
        b8idle) run $kind${n}_b8idle_$rep $n --decode-idle ;;
        b1h0) run $kind${n}_b1h0_$rep $n --max-batch 1 --engine-helpers 0 ;;
        t1b1) run $kind${n}_t1b1_$rep $n --inference-threads 1 --max-batch 1 ;;
      esac
    done
  done
done
echo "done ${1:-default}" >> $OUT/runs.txt
