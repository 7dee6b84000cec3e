#!/bin/bash
# Window latency against concurrent streams on one build (docs/performance.md,
# "Latency against concurrent streams (2026-12-05)"). A fresh server per run,
# 20 s of video per stream, 10 s pauses, every count once per pass.
# usage: sweep.sh BUILD_DIR MODEL_REPO OUT_DIR PASSES
here=$(dirname "$0")
exec "$here/../../../scripts/load-sweep" "${1:-build}" "${2:-models}" "${3:-.}" "${4:-2}" 20 10 \
    "scaled:32 scaled:64 scaled:128 scaled:160 scaled:192 scaled:224 scaled:256
     full:8 full:16 full:32 full:40 full:48 full:56" \
    "client-scaled 96x128 6 fps" "640x480 30 fps H.264"
