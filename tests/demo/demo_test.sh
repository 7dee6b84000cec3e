#!/usr/bin/env bash
# scripts/demo (the main job) end to end on a tiny random model repository:
# it starts the server, classifies sample clips, streams the sample stream,
# writes the heat maps and stops the server; and without a complete model it
# fails with a clear message. Args: BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/repo/tiny/1" "$work/repo/partial/1"
for s in s1 s2 s3 s4 s5; do
  "$build/engine/billnet-model" random --stage "$s" --seed 3 --name tiny --base-channels 8 \
    --groups 2 --height 24 --width 32 -o "$work/repo/tiny/1/$s.safetensors" > /dev/null
done
cp "$work/repo/tiny/1/s1.safetensors" "$work/repo/partial/1/"

export BILLNET_BUILD_DIR="$build" BILLNET_DEMO_REPO="$work/repo"
BILLNET_DEMO_MODEL=tiny BILLNET_DEMO_OUT="$work/out" BILLNET_DEMO_CLIPS=2 \
  "$root/scripts/demo" > "$work/log.txt" 2>&1 || { cat "$work/log.txt"; fail "demo exited non-zero"; }
grep -q "of 2 clips recognized" "$work/log.txt" || { cat "$work/log.txt"; fail "no clip summary"; }
grep -q "Swiping Left" "$work/log.txt" || fail "the first sample's expected label is not printed"
grep -q "windows" "$work/log.txt" || fail "no stream summary"
for png in "$work/out/clips/01-swiping-left.png" "$work/out/clips/02-swiping-right.png" \
           "$work/out/stream-heatmap.png"; do
  [ -s "$png" ] || fail "$png missing"
  [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$png is not a PNG"
done
# The server was stopped: nothing is left listening from this run.
grep -q "Stopping the server" "$work/log.txt" || fail "server not stopped"

# Only s1 present: a clear error, exit 1.
if BILLNET_DEMO_MODEL=partial BILLNET_DEMO_OUT="$work/out2" "$root/scripts/demo" > "$work/log2.txt" 2>&1; then
  fail "demo succeeded without a complete model"
fi
grep -q "no complete version of 'partial'" "$work/log2.txt" || { cat "$work/log2.txt"; fail "unclear error"; }
echo "demo_test: ok"
