#!/bin/bash
# Off-CPU trace of the pool threads (billnet-infer) under load: the server on N streams,
# perf sched_switch with DWARF stacks on the pool threads and system-wide switch-ins,
# 10 s into a 20 s billnet-load run; analyse with offcpu.py TAG. SENV=VAR=VALUE sets the
# server's environment, SUFFIX names the run. Writes /tmp/ps.
# usage: trace.sh N scaled|full NICE  -> /tmp/ps/<tag>.data + load json
cd /work/main
N=$1; KIND=$2; NICE=$3; TAG=${KIND}${N}_n${NICE}${SUFFIX:-}
env ${SENV:-X=1} build/server/billnet-server --listen 127.0.0.1:50151 --metrics-listen 127.0.0.1:9564 \
  --model-repository /tmp/loadrepo --default-model billnet-2x-synth --poll-interval-ms 0 \
  --log-level warn --decode-nice $NICE &
pid=$!
sleep 3
LF=; [[ $KIND == scaled ]] && LF=--scaled
build/tools/load/billnet-load --server 127.0.0.1:50151 --streams $N --duration 20 $LF --server-pid $pid --json > /tmp/ps/$TAG.json 2>/tmp/ps/$TAG.err &
lpid=$!
sleep 8
tids=$(for t in /proc/$pid/task/*; do [[ $(cat $t/comm) == billnet-infer ]] && basename $t; done | paste -sd,)
echo "infer tids $tids"
perf record -q -a -e sched:sched_switch -o /tmp/ps/$TAG.all.data -- sleep 10 2>&1 | tail -2 &
perf record -q -e sched:sched_switch --call-graph dwarf,16384 -t $tids -o /tmp/ps/$TAG.data -- sleep 10 2>&1 | tail -2
wait %3 2>/dev/null; sleep 1
wait $lpid
kill $pid; wait $pid
python3 /tmp/summ.py /tmp/ps | grep $TAG
