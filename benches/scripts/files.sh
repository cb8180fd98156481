#!/usr/bin/env bash
# File transfers (issue 22), the run BENCHMARKS.md quotes: ROUNDS rounds (default 3), each on a
# fresh release server with an empty data directory: `feige-bench files` uploads and downloads
# SIZE_MB (100) MB of fresh bytes with the Rust SDK and copies the same bytes with socat (the
# ceiling), then measures chat latency idle and during a BUSY_MB (1000) MB upload on another
# connection. Prints the reports' medians; OUT=FILE keeps the JSON lines. PORT (17950) is the
# server's port; BENCH_TMP, when set, is the directory its temporary directory goes under;
# FEIGE_BIN (target/release/feige-server) the server run; CHAT_RATE (200) the chat's messages per
# second (more give its p99 more samples).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3}
size=${SIZE_MB:-100}
busy=${BUSY_MB:-1000}
port=${PORT:-17950}
cargo build --release -q -p feige-server -p feige-tools
export FEIGE_BIN=${FEIGE_BIN:-target/release/feige-server}
BENCH_TMP=$(mktemp -d -p "${BENCH_TMP:-/tmp}")
export BENCH_TMP
source benches/scripts/servers.sh
pid=""
cleanup() { stop_server "$pid"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT
results=${OUT:-$BENCH_TMP/files.jsonl}
for round in $(seq 1 "$rounds"); do
    rm -rf "$BENCH_TMP/feige"
    start_feige "$BENCH_TMP/feige" process "$port"
    pid=$FEIGE_PID
    target/release/feige-bench files --addr "127.0.0.1:$port" --server-pid "$pid" \
        --accounts "$BENCH_TMP/feige/accounts" --store fresh --round "$round" \
        --size-mb "$size" --busy-mb "$busy" --chat-rate "${CHAT_RATE:-200}" --dir "$BENCH_TMP" --json --time-limit 900 |
        tee -a "$results"
    stop_server "$pid"
    pid=""
done
target/release/feige-bench summary "$results"
