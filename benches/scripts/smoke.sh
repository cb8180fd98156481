#!/usr/bin/env bash
# CI smoke: every feige-bench workload for a couple of seconds against Feige, and im-1to1 and
# idle against mosquitto and nats-server when their Debian packages can be installed. Checks
# loss, duplicates and order (--check), not speed. Uses whatever profile is built
# (BENCH_PROFILE=debug by default, so CI reuses its test build).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${BENCH_PROFILE:-debug}
flag=""; [ "$profile" = release ] && flag="--release"
cargo build $flag -q -p feige-server -p feige-tools
export FEIGE_BIN=target/$profile/feige-server
bench=target/$profile/feige-bench
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
pids=()
cleanup() { for p in "${pids[@]}"; do stop_server "$p"; done; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT
results=$BENCH_TMP/smoke.jsonl
run() { echo "+ feige-bench $*" >&2; "$bench" --check "$@" --json --time-limit 120 >>"$results"; }

FEIGE_HTTP_LISTEN=127.0.0.1:17902 start_feige "$BENCH_TMP/feige" process 17901
pids+=("$FEIGE_PID")
feige=(--target feige --addr 127.0.0.1:17901 --server-pid "$FEIGE_PID" --accounts "$BENCH_TMP/feige/accounts")
run im-1to1 "${feige[@]}" -c 20 -w 8 -d 2 --warmup 0.5 --store fresh --timeline "$BENCH_TMP/timeline.csv"
# The delivery timeline: a header and one line per 50 ms window of the 2 s measured.
[ "$(wc -l <"$BENCH_TMP/timeline.csv")" -ge 30 ] || { echo "smoke: short timeline" >&2; exit 1; }
run im-1to1 "${feige[@]}" -c 20 --rate 400 -d 2 --warmup 0.5
run im-1to1 "${feige[@]}" --ws 127.0.0.1:17902 -c 20 -w 8 -d 2 --warmup 0.5
run idle "${feige[@]}" -n 300 --users 20 --sources 3 --hold 1
run sync "${feige[@]}" -k 500 --conversations 10 --repeat 2
run history "${feige[@]}" --messages 3000 --conversations 10 --pages 100 --searches 20
run login "${feige[@]}" -d 1 --concurrency 2
run fanout "${feige[@]}" -g 30 -s 2 -w 8 -d 1 --warmup 0.5

if install_peers; then
    start_mosquitto 11884; pids+=("$MOSQ_PID")
    start_nats 14223; pids+=("$NATS_PID")
    for qos in 0 1; do
        run im-1to1 --target mqtt --qos "$qos" --addr 127.0.0.1:11884 --server-pid "$MOSQ_PID" -c 20 -w 8 -d 1 --warmup 0.5
    done
    run idle --target mqtt --addr 127.0.0.1:11884 --server-pid "$MOSQ_PID" -n 300 --sources 3 --hold 1
    run im-1to1 --target nats --addr 127.0.0.1:14223 --server-pid "$NATS_PID" -c 20 -w 8 -d 1 --warmup 0.5
    # fanout against the peers: reported, not checked. Once in CI a nats-server run lost a
    # whole window (8 messages to all 30 receivers), which no run here reproduces; until it
    # is understood it does not fail the build.
    for peer in "--target mqtt --addr 127.0.0.1:11884 --server-pid $MOSQ_PID" \
        "--target nats --addr 127.0.0.1:14223 --server-pid $NATS_PID"; do
        # shellcheck disable=SC2086
        "$bench" fanout $peer -g 30 -w 8 -d 1 --warmup 0.5 --json --time-limit 120 >>"$results" ||
            echo "smoke: fanout $peer failed (not checked)" >&2
    done
    run idle --target nats --addr 127.0.0.1:14223 --server-pid "$NATS_PID" -n 300 --sources 3 --hold 1
else
    echo "smoke: mosquitto/nats-server could not be installed; peers skipped" >&2
fi
"$bench" summary "$results"
echo "bench smoke: $(wc -l <"$results") runs, no message lost, duplicated or out of order"
