#!/usr/bin/env bash
# The Feige-only workloads: sync, history (+search) on a 1M-message store, login; with both
# durability settings for sync. Prints the Markdown summary at the end.
#
# Settings (environment): SYNC_K (10000), CONVERSATIONS (100), HISTORY_MESSAGES (1000000),
# OUT (JSON lines file), KEEP (a directory to keep the filled stores in for later runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
SYNC_K=${SYNC_K:-10000}
CONVERSATIONS=${CONVERSATIONS:-100}
HISTORY_MESSAGES=${HISTORY_MESSAGES:-1000000}
mkdir -p target/bench-results
OUT=${OUT:-target/bench-results/feige-$(date -u +%Y%m%dT%H%M%S).jsonl}
cargo build --release -q -p feige-server -p feige-tools
export FEIGE_BIN=target/release/feige-server
bench=target/release/feige-bench
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
data=${KEEP:-$BENCH_TMP}
pid=""
cleanup() { stop_server "$pid"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT

for durability in process fsync; do
    start_feige "$data/feige-$durability" "$durability" 17967; pid=$FEIGE_PID
    a=(--addr 127.0.0.1:17967 --server-pid "$pid" --accounts "$data/feige-$durability/accounts" --label "feige-$durability" --json)
    "$bench" --check sync "${a[@]}" -k "$SYNC_K" --conversations "$CONVERSATIONS" --repeat 3 >>"$OUT"
    if [ "$durability" = process ]; then
        "$bench" login "${a[@]}" -d 5 --concurrency 8 >>"$OUT"
        "$bench" history "${a[@]}" --messages "$HISTORY_MESSAGES" --conversations "$CONVERSATIONS" \
            --pages 2000 --searches 400 --time-limit 1500 >>"$OUT"
    fi
    stop_server "$pid"; pid=""
done
echo "results: $OUT" >&2
"$bench" summary "$OUT"
