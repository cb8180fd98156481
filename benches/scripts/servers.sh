# Start and stop the servers under test on loopback. Source this file from bash.
#
#   start_feige DATA_DIR DURABILITY PORT   -> sets FEIGE_PID
#   start_mosquitto PORT [nodelay]         -> sets MOSQ_PID   (MQTT 3.1.1, Debian package mosquitto)
#   start_nats PORT                        -> sets NATS_PID   (core NATS, Debian package nats-server)
#   stop_server PID
#
# FEIGE_BIN defaults to target/release/feige-server. Logs go to $BENCH_TMP (default /tmp).

BENCH_TMP=${BENCH_TMP:-/tmp}
# The loopback source addresses feige-bench may connect from (`--sources` up to 8).
BENCH_SOURCES=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8

# Installs mosquitto and nats-server from Debian packages when they are missing.
install_peers() {
    if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
        if [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1; then
            return 0
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends mosquitto nats-server >/dev/null
}

# Waits until something listens on 127.0.0.1:$1 (5 s at most).
wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# Fails when something already listens on 127.0.0.1:$1 (it would be measured instead).
port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "port $1 is already in use" >&2
        return 1
    fi
}

start_feige() {
    local dir=$1 durability=$2 port=$3
    port_free "$port" || return 1
    mkdir -p "$dir"
    # The bench's users are strangers: allow 1:1 messages between non-friends. Its clients
    # all come from loopback, spread over up to 8 source addresses (`--sources`): exempt them
    # from the abuse limits (connections per address, registrations, send rate), or the
    # 257th connection from one address is turned away (`max_connections_per_addr`); builds
    # without the limits ignore the variable.
    # No HTTP listener unless FEIGE_HTTP_LISTEN names one (the WebSocket bench does): never
    # the default port 7901, which parallel runs would share.
    FEIGE_HTTP_LISTEN=${FEIGE_HTTP_LISTEN:-off} \
    FEIGE_TRUSTED_ADDRS=$BENCH_SOURCES "${FEIGE_BIN:-target/release/feige-server}" --listen "127.0.0.1:$port" --data-dir "$dir" \
        --durability "$durability" --dm-policy anyone --log warn >"$BENCH_TMP/feige-$port.log" 2>&1 &
    FEIGE_PID=$!
    wait_port "$port"
}

# start_mosquitto PORT [nodelay]: with "nodelay", Nagle's algorithm is off on client sockets
# (`set_tcp_nodelay true`, as Feige and nats-server have it). mosquitto's default leaves it on,
# which halves its closed-loop throughput here without it but puts its light-load latency at
# ~40 ms of delayed ACKs; the scripts give mosquitto its better setting for each workload.
start_mosquitto() {
    local port=$1 nodelay=${2:-} conf="$BENCH_TMP/mosquitto-$1.conf"
    port_free "$port" || return 1
    # No persistence, no logging; queues large enough that the bench's bounded load never
    # hits them (the default of 1000 queued messages per client would drop QoS 1 messages).
    cat >"$conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
max_connections -1
log_dest none
CONF
    if [ "$nodelay" = nodelay ]; then echo "set_tcp_nodelay true" >>"$conf"; fi
    "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$conf" >"$BENCH_TMP/mosquitto-$port.log" 2>&1 &
    MOSQ_PID=$!
    wait_port "$port"
}

start_nats() {
    local port=$1
    port_free "$port" || return 1
    "$(command -v nats-server || echo /usr/sbin/nats-server)" -a 127.0.0.1 -p "$port" \
        >"$BENCH_TMP/nats-$port.log" 2>&1 &
    NATS_PID=$!
    wait_port "$port"
}

stop_server() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    return 0
}

# settle PID...: flushes dirty pages (`sync`), then waits until every given server has used
# under 2 % of a core for a whole second (60 s at most). A Feige server that has just carried
# a closed-loop burst goes on indexing those messages for search and checkpointing its WAL
# for many seconds; a light-load run measured meanwhile would time that work, not itself.
settle() {
    sync
    local hz pid busy i
    local -a before
    hz=$(getconf CLK_TCK)
    # CPU ticks used so far (utime + stime); 0 for a process that is gone.
    ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
    for _ in $(seq 1 60); do
        before=()
        for pid in "$@"; do before+=("$(ticks "$pid")"); done
        sleep 1
        busy=0 i=0
        for pid in "$@"; do
            if [ $(($(ticks "$pid") - before[i])) -gt $((hz / 50)) ]; then busy=1; fi
            i=$((i + 1))
        done
        [ "$busy" -eq 0 ] && break
    done
    sync
}
