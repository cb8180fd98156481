#!/usr/bin/env bash
# im-1to1 over TCP and over the WebSocket gateway against the same fresh release server, in
# one run, interleaved (tcp, ws, tcp, ws, ...), then the median of each.
#
#   benches/scripts/ws.sh [ROUNDS] [CLIENTS]        (defaults: 3 rounds, 100 clients, W=16, 10 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
clients=${2:-100}
cargo build --release -q -p feige-server -p feige-tools
export FEIGE_BIN=target/release/feige-server
bench=target/release/feige-bench
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
cleanup() { [ -n "${FEIGE_PID:-}" ] && stop_server "$FEIGE_PID"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT
FEIGE_HTTP_LISTEN=127.0.0.1:17912 start_feige "$BENCH_TMP/feige" process 17911
feige=(--target feige --addr 127.0.0.1:17911 --server-pid "$FEIGE_PID" --accounts "$BENCH_TMP/accounts")
results=$BENCH_TMP/ws.jsonl
for round in $(seq 1 "$rounds"); do
    "$bench" --check im-1to1 "${feige[@]}" -c "$clients" -w 16 -d 10 --round "$round" --json >>"$results"
    "$bench" --check im-1to1 "${feige[@]}" --ws 127.0.0.1:17912 -c "$clients" -w 16 -d 10 --round "$round" --json >>"$results"
done
cat "$results"
"$bench" summary "$results"
