#!/usr/bin/env bash
# The Qt client's end-to-end test, run by .ci/run: builds feige-server, installs the C SDK
# into a prefix (client-sdk/ffi/install.sh), builds qt-chat against that installed SDK with
# CMake, then starts a real server (free port, temporary data directory) and drives two
# headless instances (QT_QPA_PLATFORM=offscreen) in the client's scripted mode: alice and bob
# become friends and each sends N numbered messages to the other; alice then sends a file of
# 600 KiB, which bob downloads, and creates a group with bob to say hello in it. Once bob has a third of alice's messages, the server is
# SIGKILLed and restarted on the same data directory and port. Checks: every message arrives
# exactly once and in order ("alice #1".."alice #N", then the file), with growing seqs equal to
# the seqs of the sender's acks; the download equals the file; each client, reopening its
# chat, pages the history back to seq 1 and shows seqs 1..2N+1 once each; a third start of
# alice resumes the session from the token its settings file kept; messages alice queues while
# the server is down, exiting before they could go, are sent by her next start and reach bob
# once, in order. Exits non-zero on failure.
#   client-sdk/examples/qt-chat/test.sh                      # N = 300
#   QT_CHAT_MESSAGES=1000 QT_CHAT_SCREENSHOT=alice.png client-sdk/examples/qt-chat/test.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${QT_CHAT_MESSAGES:-300}
work=$(mktemp -d)
server_pid=""
pids=()
cleanup() {
    for p in "${pids[@]}" $server_pid; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "qt-chat test: FAIL: $*" >&2; for f in "$work"/*.log; do echo "--- $f"; tail -20 "$f"; done >&2; exit 1; }

# 1. The server; the SDK built and installed under a prefix (client-sdk/ffi/install.sh), qt-chat built against it. Both
#    live in target/qt-chat/ (fixed paths, so CMake's cache stays valid and rebuilds are small).
cargo build -q -p feige-server
root="$PWD/target/qt-chat"
# FEIGE_PREFIX: an SDK already installed there (skips the install).
prefix=${FEIGE_PREFIX:-}
if [ -z "$prefix" ]; then
    prefix="$root/prefix"
    rm -rf "$prefix"
    client-sdk/ffi/install.sh --prefix "$prefix" >"$work/install.log" 2>&1 || fail "SDK install"
fi
cmake -S client-sdk/examples/qt-chat -B "$root/build" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 || fail "cmake configure"
cmake --build "$root/build" -j2 >>"$work/cmake.log" 2>&1 || fail "cmake build"
chat="$root/build/qt-chat"
# The binary must load libfeige from the install prefix, not from the build tree.
ldd "$chat" | grep libfeige | grep -q "$prefix/" || fail "qt-chat does not load libfeige from $prefix"

# 2. The server, on a free port; restarted on the same port and data directory.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_server() {
    FEIGE_TRUSTED_ADDRS=127.0.0.1 target/debug/feige-server --listen "127.0.0.1:$port" \
        --http-listen off --data-dir "$work/data" --log warn >>"$work/server.log" 2>&1 &
    server_pid=$!
    disown "$server_pid" # no job notice when it is SIGKILLed
    for _ in $(seq 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    fail "the server did not start"
}
start_server

# 3. Two clients, headless.
export QT_QPA_PLATFORM=offscreen
run_client() { # user peer expect [more options]
    local user=$1 peer=$2 expect=$3
    shift 3
    "$chat" --script --settings "$work/$user.ini" --server "127.0.0.1:$port" --user "$user" \
        --peer "$peer" --count "$N" --expect "$expect" --interval-ms 5 --timeout 90 --page-history \
        --received "$work/$user.received" --sent "$work/$user.sent" \
        --screenshot "$work/$user.png" "$@" >"$work/$user.log" 2>&1
}
# After her messages alice sends a file of 600 KiB (three upload chunks), which bob downloads;
# when both are done, alice creates the group "team" with bob and says hello in it.
head -c 614400 /dev/urandom >"$work/data.bin"
mkdir "$work/downloads"
run_client alice bob "$N" --send-file "$work/data.bin" --group team & pids+=($!)
run_client bob alice $((N + 1)) --download-dir "$work/downloads" --expect-group 1 & pids+=($!)

# 4. SIGKILL the server once bob has a third of alice's messages; restart it.
for _ in $(seq 600); do
    got=$( { wc -l <"$work/bob.received"; } 2>/dev/null || echo 0)
    [ "$got" -ge $((N / 3)) ] && break
    sleep 0.05
done
[ "$got" -ge $((N / 3)) ] || fail "bob received only $got messages before the kill"
[ "$got" -lt "$N" ] || fail "bob had every message before the kill: nothing was tested (raise QT_CHAT_MESSAGES)"
kill -9 "$server_pid"
while kill -0 "$server_pid" 2>/dev/null; do sleep 0.05; done
echo "qt-chat test: server killed with bob at $got of $N; restarting"
start_server

for p in "${pids[@]}"; do wait "$p" || fail "a client exited with $?"; done
pids=()
for u in alice bob; do
    grep -q "history paged back" "$work/$u.log" || fail "$u did not page its history back"
done
grep -q "group message: team: hello" "$work/bob.log" || fail "bob did not get alice's group message"

# 5. Exactly once, in order, with the seqs the senders were acked.
python3 - "$work" "$N" <<'PY' || fail "delivery check"
import sys
work, n = sys.argv[1], int(sys.argv[2])
for me, peer in (("alice", "bob"), ("bob", "alice")):
    rows = [l.rstrip("\n").split("\t") for l in open(f"{work}/{me}.received", encoding="utf-8")]
    texts = [r[3] for r in rows]
    want = [f"{peer} #{i}" for i in range(1, n + 1)] + (["file:data.bin"] if peer == "alice" else [])
    if texts != want:
        extra = len(texts) - len(set(texts))
        sys.exit(f"{me} received {len(texts)} messages ({extra} duplicated), not {peer} #1..#{n} in order (and alice's file last)")
    seqs = [int(r[2]) for r in rows]
    if any(a >= b for a, b in zip(seqs, seqs[1:])):
        sys.exit(f"{me}: seqs not increasing")
    acked = [int(l.split("\t")[0]) for l in open(f"{work}/{peer}.sent", encoding="utf-8")]
    if sorted(acked) != seqs:
        sys.exit(f"{me}: the seqs received differ from the seqs {peer} was acked")
    print(f"qt-chat test: {me} received {len(want)} of {peer}'s messages once each, in order")
PY
cmp "$work/data.bin" "$work/downloads/data.bin" || fail "bob's download differs from alice's file"

# 6. The token kept in the settings file resumes the session on the next start.
"$chat" --script --settings "$work/alice.ini" --user alice --resume-only --timeout 20 \
    >"$work/resume.log" 2>&1 || fail "alice's saved session did not resume"
grep -q "by resume" "$work/resume.log" || fail "no resume in the log"

# 7. Sends queued while the server is down survive the application's exit: alice queues 5
#    messages once the server is gone and exits; with the server back, a new start of alice
#    sends them from the outbox file, and bob gets them once, in order.
"$chat" --script --settings "$work/alice.ini" --user alice --peer bob --count 5 --first 1001 \
    --offline-send --timeout 30 >"$work/alice-offline.log" 2>&1 & pids+=($!)
for _ in $(seq 300); do
    grep -q "waiting for the server to go" "$work/alice-offline.log" && break
    sleep 0.05
done
grep -q "waiting for the server to go" "$work/alice-offline.log" || fail "alice did not get ready to queue"
kill -9 "$server_pid"
while kill -0 "$server_pid" 2>/dev/null; do sleep 0.05; done
wait "${pids[0]}" || fail "alice's offline run exited with $?"
pids=()
grep -q "queued 5 messages offline" "$work/alice-offline.log" || fail "alice queued nothing"
start_server
"$chat" --script --settings "$work/bob.ini" --user bob --peer alice --count 0 --expect 5 \
    --received "$work/bob-offline.received" --timeout 60 >"$work/bob-offline.log" 2>&1 & pids+=($!)
"$chat" --script --settings "$work/alice.ini" --user alice --peer bob --count 0 --wait-outbox 5 \
    --timeout 60 >"$work/alice-replay.log" 2>&1 || fail "alice's outbox was not sent after the restart"
wait "${pids[0]}" || fail "bob did not get the messages alice queued offline"
pids=()
got=$(cut -f4 "$work/bob-offline.received" | tr '\n' ' ')
[ "$got" = "alice #1001 alice #1002 alice #1003 alice #1004 alice #1005 " ] \
    || fail "bob got '$got' from alice's outbox, not alice #1001..#1005 in order"
echo "qt-chat test: 5 messages queued offline arrived after alice's restart, once, in order"

[ -s "$work/alice.png" ] || fail "no screenshot"
if [ -n "${QT_CHAT_SCREENSHOT:-}" ]; then cp "$work/alice.png" "$QT_CHAT_SCREENSHOT"; fi
echo "qt-chat test: ok"
