#!/usr/bin/env bash
# The seed store of the comparisons: a Feige data directory holding N bench accounts (bench0 ...
# bench<N-1>, one per connection of the workloads; their session tokens in DIR/accounts) and
# no messages. Made once and kept; every run then starts on a fresh copy of it, so no run
# measures what an earlier one left behind. Prints the directory on stdout.
#
#   seed=$(benches/scripts/seed.sh 1000)
#   cp -r "$seed" /tmp/run && feige-server --data-dir /tmp/run ...
#
# Settings (environment): SEED (the directory; default $SEED_CACHE/feige-N), SEED_CACHE
# (target/bench-seed), FEIGE_BIN (the server build that creates it; target/release/feige-server),
# SEED_PORT (the first free port from 17990). An existing seed with at least N accounts is reused as it is; a seed left
# unfinished is completed (the accounts made so far are kept).
#
# Each account costs two PBKDF2 hashes (register, login): about 90 accounts/s on an idle
# 2-core machine, so a 19,500-account seed for `idle` takes minutes; it is made once.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:?usage: seed.sh N}
SEED_CACHE=${SEED_CACHE:-target/bench-seed}
dir=${SEED:-$SEED_CACHE/feige-$n}
count() { if [ -f "$1/accounts" ]; then wc -l <"$1/accounts"; else echo 0; fi; }
if [ -f "$dir/seed-complete" ] && [ "$(count "$dir")" -ge "$n" ]; then
    echo "$dir"
    exit 0
fi
bench=${BENCH_BIN:-target/release/feige-bench}
BENCH_TMP=$(mktemp -d)
export BENCH_TMP
source benches/scripts/servers.sh
pid=""
cleanup() { stop_server "$pid"; rm -rf "$BENCH_TMP"; }
trap cleanup EXIT
# The first free port from SEED_PORT on (another seed may be under way).
port=${SEED_PORT:-17990}
while ! port_free "$port" 2>/dev/null; do port=$((port + 1)); done
rm -f "$dir/seed-complete"
echo "seed: $n bench accounts in $dir (once) ..." >&2
start_feige "$dir" process "$port"; pid=$FEIGE_PID
"$bench" seed --addr "127.0.0.1:$port" --accounts "$dir/accounts" -n "$n" --time-limit 36000 >&2
# A clean stop (SIGTERM), so that copies start from a closed store.
stop_server "$pid"; pid=""
touch "$dir/seed-complete"
echo "$dir"
