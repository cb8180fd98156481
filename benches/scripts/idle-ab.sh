#!/usr/bin/env bash
# Memory per idle connection: feige-server builds side by side with mosquitto and nats-server,
# interleaved A B A B ... in each round. Every run starts its server afresh (Feige on a fresh
# copy of the seed store of seed.sh: the bench accounts, no messages), so each figure is the
# growth of a just-started server from 0 to N logged-in idle connections, by default one
# account per connection.
#
#   benches/scripts/idle-ab.sh before=/tmp/feige-server-old after=target/release/feige-server mqtt nats
#
# Arguments: LABEL=PATH for a feige-server build, or `mqtt` / `nats` for a peer.
# Settings (environment): ROUNDS (3), N (19500), USERS (accounts the connections log in as; N),
# SOURCES (4), HOLD (5), SEED (the seed directory; default seed.sh's with USERS accounts, made
# with the first build when missing), PORT (17950), OUT (JSON lines file).
# Prints the summary (medians and ratios) at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
N=${N:-19500}
USERS=${USERS:-$N}
SOURCES=${SOURCES:-4}
HOLD=${HOLD:-5}
PORT=${PORT:-17950}
mkdir -p target/bench-results
OUT=${OUT:-target/bench-results/idle-ab-$(date -u +%Y%m%dT%H%M%S).jsonl}
bench=target/release/feige-bench
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
install_peers
pid=""
cleanup() { stop_server "$pid"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT

first=target/release/feige-server
for spec in "$@"; do
    case $spec in *=*) first=${spec#*=}; break ;; esac
done
SEED=$(SEED=${SEED:-} FEIGE_BIN=$first benches/scripts/seed.sh "$USERS")
for round in $(seq 1 "$ROUNDS"); do
    for spec in "$@"; do
        case $spec in
            mqtt)
                label=mosquitto
                start_mosquitto "$PORT"; pid=$MOSQ_PID
                args=(--target mqtt --qos 0) ;;
            nats)
                label=nats
                start_nats "$PORT"; pid=$NATS_PID
                args=(--target nats) ;;
            *=*)
                label=${spec%%=*} bin=${spec#*=}
                rm -rf "$BENCH_TMP/data"; cp -r "$SEED" "$BENCH_TMP/data"
                FEIGE_BIN=$bin start_feige "$BENCH_TMP/data" process "$PORT"; pid=$FEIGE_PID
                args=(--target feige --accounts "$BENCH_TMP/data/accounts" --users "$USERS" --store fresh) ;;
            *) echo "unknown target $spec" >&2; exit 2 ;;
        esac
        echo "== round $round: $label" >&2
        "$bench" idle "${args[@]}" --addr "127.0.0.1:$PORT" --server-pid "$pid" -n "$N" \
            --sources "$SOURCES" --hold "$HOLD" --label "$label" --round "$round" --json >>"$OUT" \
            || echo "!! $label round $round failed" >&2
        stop_server "$pid"; pid=""
        sleep 1
    done
done
echo "results: $OUT" >&2
"$bench" summary "$OUT"
