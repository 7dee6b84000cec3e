#!/bin/bash
# usage: run.sh BIN N scaled|full TAG
cd /work/main
BIN=$1; N=$2; KIND=$3; TAG=$4
$BIN --listen 127.0.0.1:50171 --metrics-listen 127.0.0.1:9584 \
  --model-repository /tmp/loadrepo --default-model billnet-2x-synth --poll-interval-ms 0 \
  --log-level warn 2>/dev/null &
pid=$!
sleep 3
LF=; [[ $KIND == scaled ]] && LF=--scaled
build/tools/load/billnet-load --server 127.0.0.1:50171 --streams $N --duration 20 $LF --label $TAG --server-pid $pid --json > /tmp/mem/$TAG.json 2>/dev/null
kill $pid; wait $pid
