#!/usr/bin/env bash
# A/B of feige-server builds on the same workload, interleaved, each run on a fresh copy of a
# seed data directory (bench accounts already created), for before/after figures of a change.
#
#   benches/scripts/ab.sh before=/tmp/feige-server-old after=target/release/feige-server
#   benches/scripts/ab.sh before=/tmp/feige-server-old after=target/release/feige-server mqtt-qos0=mosquitto
#
# A spec labelled mqtt-qos0 runs the same workload against a fresh mosquitto (QoS 0) in the
# same rounds, for a peer to take ratios against.
#
# Settings (environment): ROUNDS (3), SEED (data dir with accounts; created when missing),
# DURABILITY (process), BENCH (arguments of feige-bench; default im-1to1 -c 1000 -d 8),
# OUT (JSON lines file). Prints the summary at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURABILITY=${DURABILITY:-process}
BENCH=${BENCH:-"im-1to1 -c 1000 -w 16 -d 8 --warmup 2"}
SEED=${SEED:-/tmp/feige-bench-seed}
mkdir -p target/bench-results
OUT=${OUT:-target/bench-results/ab-$(date -u +%Y%m%dT%H%M%S).jsonl}
bench=target/release/feige-bench
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
pid=""
cleanup() { stop_server "$pid"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT

if [ ! -f "$SEED/accounts" ]; then
    first=${1#*=}
    FEIGE_BIN=$first start_feige "$SEED" "$DURABILITY" 17930; pid=$FEIGE_PID
    "$bench" im-1to1 --addr 127.0.0.1:17930 --accounts "$SEED/accounts" -c 1000 -d 0.5 --warmup 0 >/dev/null
    stop_server "$pid"; pid=""
fi
for round in $(seq 1 "$ROUNDS"); do
    for spec in "$@"; do
        label=${spec%%=*} bin=${spec#*=}
        if [ "$label" = mqtt-qos0 ]; then
            install_peers
            start_mosquitto 11889; pid=$MOSQ_PID
            echo "== round $round: $label" >&2
            # shellcheck disable=SC2086
            "$bench" $BENCH --target mqtt --qos 0 --addr 127.0.0.1:11889 --server-pid "$pid" \
                --label "$label" --round "$round" --json >>"$OUT" || echo "!! $label failed" >&2
            stop_server "$pid"; pid=""
            continue
        fi
        rm -rf "$BENCH_TMP/data"; cp -r "$SEED" "$BENCH_TMP/data"
        FEIGE_BIN=$bin start_feige "$BENCH_TMP/data" "$DURABILITY" 17931; pid=$FEIGE_PID
        echo "== round $round: $label" >&2
        # shellcheck disable=SC2086
        "$bench" $BENCH --addr 127.0.0.1:17931 --server-pid "$pid" --accounts "$BENCH_TMP/data/accounts" \
            --label "$label" --round "$round" --json >>"$OUT" || echo "!! $label failed" >&2
        stop_server "$pid"; pid=""
    done
done
echo "results: $OUT" >&2
"$bench" summary "$OUT"
