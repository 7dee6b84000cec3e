#!/bin/bash
# Steady-state runs on one build (docs/performance.md, "Steady state against
# the measured cost (2026-12-05, session 12)"): a fresh server per run, 40 s of
# video per stream, 15 s pauses; each KIND:STREAMS of the list once per pass.
# usage: sweep.sh BUILD_DIR MODEL_REPO OUT_DIR PASSES "scaled:192 full:48 ..."
here=$(dirname "$0")
exec "$here/../../../scripts/load-sweep" "${1:-build}" "${2:-models}" "${3:-.}" "${4:-2}" 40 15 \
    "${5:-scaled:192 scaled:224 scaled:256 full:48 full:56}"
