#!/usr/bin/env bash
# Feige (both durability settings) side by side with mosquitto (MQTT 3.1.1, QoS 0 and 1) and
# nats-server (core NATS), interleaved A B A B ... in each round, all on loopback.
# The closed-loop runs share one long-lived server per target; each open-loop (light load)
# and idle run gets a fresh Feige server from SEED, so that neither measures the search index
# and WAL catching up after the previous burst (BENCHMARKS.md measures that apart). mosquitto
# runs with its default Nagle setting for the closed loop and with TCP_NODELAY for the open
# loop: its better setting for each.
#
#   benches/scripts/compare.sh                  # 3 rounds, the shapes of BENCHMARKS.md
#   ROUNDS=5 CLIENTS=100 WORKLOADS="im" benches/scripts/compare.sh
#
# Settings (environment): ROUNDS (3), CLIENTS (1000), WINDOW (16), DURATION (10), WARMUP (2),
# RATE (open-loop msgs/s, 2000), RATE_CLIENTS (100), IDLE_N (19500), IDLE_SOURCES (4),
# WORKLOADS ("im open idle"), TARGETS ("feige-process feige-fsync mqtt-qos0 mqtt-qos1 nats"),
# OUT (the JSON lines file), SEED (a Feige data directory with bench accounts to start both
# Feige servers from, saving the account setup). Prints the Markdown summary at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-1000}
WINDOW=${WINDOW:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RATE=${RATE:-2000}
RATE_CLIENTS=${RATE_CLIENTS:-100}
IDLE_N=${IDLE_N:-19500}
IDLE_SOURCES=${IDLE_SOURCES:-4}
WORKLOADS=${WORKLOADS:-"im open idle"}
TARGETS=${TARGETS:-"feige-process feige-fsync mqtt-qos0 mqtt-qos1 nats"}
mkdir -p target/bench-results
OUT=${OUT:-target/bench-results/compare-$(date -u +%Y%m%dT%H%M%S).jsonl}

cargo build --release -q -p feige-server -p feige-tools
export FEIGE_BIN=target/release/feige-server
bench=target/release/feige-bench
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
install_peers
pids=()
cleanup() { for p in "${pids[@]}"; do stop_server "$p"; done; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT

if [ -n "${SEED:-}" ]; then
    cp -r "$SEED" "$BENCH_TMP/feige-process"
    cp -r "$SEED" "$BENCH_TMP/feige-fsync"
fi
start_feige "$BENCH_TMP/feige-process" process 17910; pids+=("$FEIGE_PID"); FP=$FEIGE_PID
start_feige "$BENCH_TMP/feige-fsync" fsync 17911; pids+=("$FEIGE_PID"); FF=$FEIGE_PID
start_mosquitto 11885; pids+=("$MOSQ_PID"); MP=$MOSQ_PID
start_mosquitto 11887 nodelay; pids+=("$MOSQ_PID"); MPN=$MOSQ_PID
start_nats 14224; pids+=("$NATS_PID"); NP=$NATS_PID

# target_args LABEL WORKLOAD
target_args() {
    case $1 in
        feige-process) echo "--target feige --addr 127.0.0.1:17910 --server-pid $FP --accounts $BENCH_TMP/feige-process/accounts" ;;
        feige-fsync) echo "--target feige --addr 127.0.0.1:17911 --server-pid $FF --accounts $BENCH_TMP/feige-fsync/accounts" ;;
        mqtt-qos0 | mqtt-qos1)
            local qos=${1#mqtt-qos}
            if [ "$2" = open ]; then
                echo "--target mqtt --qos $qos --addr 127.0.0.1:11887 --server-pid $MPN"
            else
                echo "--target mqtt --qos $qos --addr 127.0.0.1:11885 --server-pid $MP"
            fi ;;
        nats) echo "--target nats --addr 127.0.0.1:14224 --server-pid $NP" ;;
    esac
}

# run LABEL ROUND WORKLOAD feige-bench-arguments...
run() {
    local label=$1 round=$2 workload=$3; shift 3
    echo "== round $round: $label $workload" >&2
    # shellcheck disable=SC2046
    if ! "$bench" "$@" $(target_args "$label" "$workload") --label "$label" --round "$round" --json >>"$OUT"; then
        echo "!! $label $workload round $round failed" >&2
    fi
    sleep 1
}

# run_open LABEL ROUND: light load; Feige on a fresh server from SEED, every target after the
# long-lived Feige servers have finished the work the closed loop left them (see `settle`).
run_open() {
    local label=$1 round=$2 p dur
    settle "$FP" "$FF"
    local shape=(im-1to1 -c "$RATE_CLIENTS" --rate "$RATE" -d "$DURATION" --warmup "$WARMUP")
    case $label in
        feige-process | feige-fsync)
            dur=${label#feige-}
            rm -rf "$BENCH_TMP/open"; mkdir -p "$BENCH_TMP/open"
            [ -n "${SEED:-}" ] && { rm -rf "$BENCH_TMP/open"; cp -r "$SEED" "$BENCH_TMP/open"; }
            start_feige "$BENCH_TMP/open" "$dur" 17913; p=$FEIGE_PID
            echo "== round $round: $label open (fresh server)" >&2
            if ! "$bench" "${shape[@]}" --target feige --addr 127.0.0.1:17913 --server-pid "$p" \
                --accounts "$BENCH_TMP/open/accounts" --label "$label" --round "$round" --json >>"$OUT"; then
                echo "!! $label open round $round failed" >&2
            fi
            stop_server "$p"
            sleep 1 ;;
        *) run "$label" "$round" open "${shape[@]}" ;;
    esac
}

# Idle memory needs a fresh server: one that has just carried im-1to1 has freed heap that
# the idle connections would reuse, hiding their cost. So each idle run starts its own.
run_idle() {
    local label=$1 round=$2 p args
    settle "$FP" "$FF"
    case $label in
        feige-process)
            rm -rf "$BENCH_TMP/idle"; mkdir -p "$BENCH_TMP/idle"
            [ -n "${SEED:-}" ] && { rm -rf "$BENCH_TMP/idle"; cp -r "$SEED" "$BENCH_TMP/idle"; }
            start_feige "$BENCH_TMP/idle" process 17912; p=$FEIGE_PID
            args="--target feige --addr 127.0.0.1:17912 --accounts $BENCH_TMP/idle/accounts" ;;
        mqtt-qos0) start_mosquitto 11886; p=$MOSQ_PID; args="--target mqtt --addr 127.0.0.1:11886" ;;
        nats) start_nats 14225; p=$NATS_PID; args="--target nats --addr 127.0.0.1:14225" ;;
    esac
    echo "== round $round: $label idle (fresh server)" >&2
    # shellcheck disable=SC2086
    if ! "$bench" idle -n "$IDLE_N" --users "$CLIENTS" --sources "$IDLE_SOURCES" --hold 5 \
        $args --server-pid "$p" --label "$label" --round "$round" --json >>"$OUT"; then
        echo "!! $label idle round $round failed" >&2
    fi
    stop_server "$p"
    sleep 1
}

for round in $(seq 1 "$ROUNDS"); do
    for w in $WORKLOADS; do
        for t in $TARGETS; do
            case $w in
                im) run "$t" "$round" im im-1to1 -c "$CLIENTS" -w "$WINDOW" -d "$DURATION" --warmup "$WARMUP" ;;
                open) run_open "$t" "$round" ;;
                idle)
                    # One durability setting is enough for idle memory.
                    [ "$t" = feige-fsync ] && continue
                    [ "$t" = mqtt-qos1 ] && continue
                    run_idle "$t" "$round" ;;
            esac
        done
    done
done
echo "results: $OUT" >&2
"$bench" summary "$OUT"
