#!/usr/bin/env bash
# im-1to1 over TCP and over the WebSocket gateway against the same fresh release server, in
# one run, interleaved (tcp, ws, tcp, ws, ...), then the median of each.
#
#   benches/scripts/ws.sh [ROUNDS] [CLIENTS]        (defaults: 3 rounds, 100 clients, W=16, 10 s)
#
# PORT (TCP, default 17911) and HTTP_PORT (the WebSocket gateway, default 17912) choose the
# server's ports; BENCH_TMP, when set, is the directory for the store, logs and results (kept
# but for the store), else a fresh one removed at the end. FEIGE_BIN and BENCH_BIN name other
# builds of the server and of feige-bench (another commit's, say).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
clients=${2:-100}
if [ -z "${FEIGE_BIN:-}" ] || [ -z "${BENCH_BIN:-}" ]; then
    cargo build --release -q -p feige-server -p feige-tools
fi
export FEIGE_BIN=${FEIGE_BIN:-target/release/feige-server}
bench=${BENCH_BIN:-target/release/feige-bench}
port=${PORT:-17911}
http_port=${HTTP_PORT:-17912}
if [ -n "${BENCH_TMP:-}" ]; then
    mkdir -p "$BENCH_TMP"
    scratch=$BENCH_TMP/feige
    rm -rf "$scratch" "$BENCH_TMP/accounts" "$BENCH_TMP/ws.jsonl"
else
    BENCH_TMP=$(mktemp -d)
    scratch=$BENCH_TMP
fi
export BENCH_TMP
source benches/scripts/servers.sh
cleanup() { [ -n "${FEIGE_PID:-}" ] && stop_server "$FEIGE_PID"; rm -rf "$scratch"; }
trap cleanup EXIT
FEIGE_HTTP_LISTEN=127.0.0.1:$http_port start_feige "$BENCH_TMP/feige" process "$port"
feige=(--target feige --addr "127.0.0.1:$port" --server-pid "$FEIGE_PID" --accounts "$BENCH_TMP/accounts")
results=$BENCH_TMP/ws.jsonl
for round in $(seq 1 "$rounds"); do
    "$bench" --check im-1to1 "${feige[@]}" -c "$clients" -w 16 -d 10 --round "$round" --json >>"$results"
    "$bench" --check im-1to1 "${feige[@]}" --ws "127.0.0.1:$http_port" -c "$clients" -w 16 -d 10 --round "$round" --json >>"$results"
done
cat "$results"
"$bench" summary "$results"
