#!/usr/bin/env bash
# Feige (both durability settings) side by side with mosquitto (MQTT 3.1.1, QoS 0 and 1) and
# nats-server (core NATS), interleaved A B A B ... in each round, all on loopback.
#
# Every run starts its own server. Feige's starts on a fresh copy of the seed store (the bench
# accounts, one per connection, and no messages; made once by seed.sh), so most messages of a
# closed-loop run open a new conversation: its report says `store: fresh`. For the workloads
# in WARM, a second Feige run follows on the store the first one left (the server restarted on
# it, the conversations existing): `store: warm`. mosquitto runs with its default Nagle setting
# for the closed loop and with TCP_NODELAY for the open loop: its better setting for each.
#
#   benches/scripts/compare.sh                  # 3 rounds, the shapes of BENCHMARKS.md
#   ROUNDS=5 WORKLOADS=im TARGETS="feige-process mqtt-qos0 nats" benches/scripts/compare.sh
#   WORKLOADS="fan100 fan1000" TARGETS="feige-process mqtt-qos0 nats" benches/scripts/compare.sh
#
# Workloads: im (im-1to1 closed loop), open (im-1to1 open loop), idle, and fanG (fanout: one
# sender posting to a group of G receivers, window FANOUT_WINDOW; e.g. fan100, fan1000).
#
# Settings (environment): ROUNDS (3), CLIENTS (1000), WINDOW (16), DURATION (10), WARMUP (2),
# RATE (open-loop msgs/s, 2000), RATE_CLIENTS (100), IDLE_N (19500), IDLE_SOURCES (4),
# FANOUT_WINDOW (16),
# WORKLOADS ("im open idle"), TARGETS ("feige-process feige-fsync mqtt-qos0 mqtt-qos1 nats"),
# WARM (workloads with a warm Feige run too: "im open"), OUT (the JSON lines file),
# SEED (the seed directory; default: seed.sh's, with as many accounts as the largest workload
# has connections), TIMELINES (a directory for each run's delivery timeline CSV).
# Prints the Markdown summary at the end: medians, per-round ratios and their range.
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
FANOUT_WINDOW=${FANOUT_WINDOW:-16}
WORKLOADS=${WORKLOADS:-"im open idle"}
TARGETS=${TARGETS:-"feige-process feige-fsync mqtt-qos0 mqtt-qos1 nats"}
WARM=${WARM:-"im open"}
mkdir -p target/bench-results
OUT=${OUT:-target/bench-results/compare-$(date -u +%Y%m%dT%H%M%S).jsonl}

cargo build --release -q -p feige-server -p feige-tools
export FEIGE_BIN=target/release/feige-server
bench=target/release/feige-bench
users=0
for w in $WORKLOADS; do
    case $w in
        im) k=$CLIENTS ;;
        open) k=$RATE_CLIENTS ;;
        idle) k=$IDLE_N ;;
        fan[0-9]*) k=$(( ${w#fan} + 1 )) ;;
        *) echo "unknown workload $w" >&2; exit 2 ;;
    esac
    [ "$k" -gt "$users" ] && users=$k
done
SEED=$(SEED=${SEED:-} benches/scripts/seed.sh "$users")
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
install_peers
pid=""
cleanup() { stop_server "$pid"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT

# shape WORKLOAD: feige-bench's arguments for the workload.
shape() {
    case $1 in
        im) echo "im-1to1 -c $CLIENTS -w $WINDOW -d $DURATION --warmup $WARMUP" ;;
        open) echo "im-1to1 -c $RATE_CLIENTS --rate $RATE -d $DURATION --warmup $WARMUP" ;;
        idle) echo "idle -n $IDLE_N --sources $IDLE_SOURCES --hold 5" ;;
        fan*) echo "fanout -g ${1#fan} -w $FANOUT_WINDOW -d $DURATION --warmup $WARMUP" ;;
    esac
}

# measure LABEL ROUND WORKLOAD PORT extra-arguments...: one run against the server $pid.
measure() {
    local label=$1 round=$2 w=$3 port=$4; shift 4
    local extra=()
    if [ -n "${TIMELINES:-}" ] && [ "$w" != idle ]; then
        mkdir -p "$TIMELINES"
        extra=(--timeline "$TIMELINES/$label-$w-r$round${store:+-$store}.csv")
    fi
    echo "== round $round: $label $w${store:+ ($store store)}" >&2
    # shellcheck disable=SC2046
    if ! "$bench" $(shape "$w") --addr "127.0.0.1:$port" --server-pid "$pid" "$@" "${extra[@]}" \
        --label "$label" --round "$round" --json >>"$OUT"; then
        echo "!! $label $w round $round failed" >&2
    fi
}

# run LABEL ROUND WORKLOAD: starts the target's server afresh, measures, stops it.
run() {
    local label=$1 round=$2 w=$3 store="" port
    case $label in
        feige-process | feige-fsync)
            port=17910
            rm -rf "$BENCH_TMP/data"; cp -r "$SEED" "$BENCH_TMP/data"
            local feige=(--target feige --accounts "$BENCH_TMP/data/accounts")
            store=fresh
            start_feige "$BENCH_TMP/data" "${label#feige-}" "$port"; pid=$FEIGE_PID
            [ "$w" = open ] && settle "$pid"
            measure "$label" "$round" "$w" "$port" "${feige[@]}" --store "$store"
            stop_server "$pid"; pid=""
            case " $WARM " in
                *" $w "*)
                    store=warm
                    start_feige "$BENCH_TMP/data" "${label#feige-}" "$port"; pid=$FEIGE_PID
                    [ "$w" = open ] && settle "$pid"
                    measure "$label" "$round" "$w" "$port" "${feige[@]}" --store "$store"
                    stop_server "$pid"; pid="" ;;
            esac ;;
        mqtt-qos0 | mqtt-qos1)
            port=11885
            if [ "$w" = open ]; then start_mosquitto "$port" nodelay; else start_mosquitto "$port"; fi
            pid=$MOSQ_PID
            measure "$label" "$round" "$w" "$port" --target mqtt --qos "${label#mqtt-qos}"
            stop_server "$pid"; pid="" ;;
        nats)
            port=14224
            start_nats "$port"; pid=$NATS_PID
            measure "$label" "$round" "$w" "$port" --target nats
            stop_server "$pid"; pid="" ;;
        *) echo "unknown target $label" >&2; exit 2 ;;
    esac
    sleep 1
}

for round in $(seq 1 "$ROUNDS"); do
    for w in $WORKLOADS; do
        for t in $TARGETS; do
            # One durability setting and one QoS are enough for idle memory.
            if [ "$w" = idle ] && { [ "$t" = feige-fsync ] || [ "$t" = mqtt-qos1 ]; }; then
                continue
            fi
            run "$t" "$round" "$w"
        done
    done
done
echo "results: $OUT" >&2
"$bench" summary "$OUT"
