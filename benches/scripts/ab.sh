#!/usr/bin/env bash
# A/B of feige-server builds on the same workload, interleaved, each run on a fresh server over
# a fresh copy of the seed store (seed.sh: the bench accounts, one per client, no messages), for
# before/after figures of a change.
#
#   benches/scripts/ab.sh before=/tmp/feige-server-old after=target/release/feige-server
#   benches/scripts/ab.sh before=/tmp/feige-server-old after=target/release/feige-server mqtt-qos0=mosquitto
#
# A spec labelled mqtt-qos0 runs the same workload against a fresh mosquitto (QoS 0) in the
# same rounds, for a peer to take ratios against.
#
# Settings (environment): ROUNDS (3), USERS (accounts in the seed, 1000: as many as the
# workload's clients), SEED (the seed directory; default seed.sh's, made with the first build
# when missing), DURABILITY (process), BENCH (arguments of feige-bench; default im-1to1 -c 1000
# -d 8), WARM (1: a second run of each build on the store its first run left, reported as
# warm), MOSQ_NODELAY (1: mosquitto with Nagle off, for open-loop latency), OUT (JSON lines
# file). Prints the summary at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURABILITY=${DURABILITY:-process}
BENCH=${BENCH:-"im-1to1 -c 1000 -w 16 -d 8 --warmup 2"}
USERS=${USERS:-1000}
WARM=${WARM:-0}
mkdir -p target/bench-results
OUT=${OUT:-target/bench-results/ab-$(date -u +%Y%m%dT%H%M%S).jsonl}
bench=target/release/feige-bench
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
pid=""
cleanup() { stop_server "$pid"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT

first=target/release/feige-server
for spec in "$@"; do
    case $spec in mqtt-qos0=*) ;; *=*) first=${spec#*=}; break ;; esac
done
SEED=$(SEED=${SEED:-} FEIGE_BIN=$first benches/scripts/seed.sh "$USERS")
for round in $(seq 1 "$ROUNDS"); do
    for spec in "$@"; do
        label=${spec%%=*} bin=${spec#*=}
        if [ "$label" = mqtt-qos0 ]; then
            install_peers
            start_mosquitto 11889 ${MOSQ_NODELAY:+nodelay}; pid=$MOSQ_PID
            echo "== round $round: $label" >&2
            # shellcheck disable=SC2086
            "$bench" $BENCH --target mqtt --qos 0 --addr 127.0.0.1:11889 --server-pid "$pid" \
                --label "$label" --round "$round" --json >>"$OUT" || echo "!! $label failed" >&2
            stop_server "$pid"; pid=""
            continue
        fi
        rm -rf "$BENCH_TMP/data"; cp -r "$SEED" "$BENCH_TMP/data"
        stores=(fresh); [ "$WARM" = 1 ] && stores+=(warm)
        for store in "${stores[@]}"; do
            FEIGE_BIN=$bin start_feige "$BENCH_TMP/data" "$DURABILITY" 17931; pid=$FEIGE_PID
            echo "== round $round: $label ($store store)" >&2
            # shellcheck disable=SC2086
            "$bench" $BENCH --addr 127.0.0.1:17931 --server-pid "$pid" --accounts "$BENCH_TMP/data/accounts" \
                --store "$store" --label "$label" --round "$round" --json >>"$OUT" || echo "!! $label failed" >&2
            stop_server "$pid"; pid=""
        done
    done
done
echo "results: $OUT" >&2
"$bench" summary "$OUT"
