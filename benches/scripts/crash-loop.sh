#!/usr/bin/env bash
# Crash loop: runs the real feige-server with --dm-policy anyone under im-1to1-style load,
# SIGKILLs it at a random moment (20 times by default), restarts it on the same data directory,
# resends every unacked message with its same client_msg_id, and after each restart checks
# that every acked message is stored exactly once, in send order, with gapless seqs, and that
# Sync agrees with History. Exits non-zero on any violation. Loopback, where all the load comes
# from, is exempt from the server's abuse limits (FEIGE_TRUSTED_ADDRS=127.0.0.1) unless that
# variable is set. Arguments go to `feige-bench crash-loop` (see its --help), e.g.
#   benches/scripts/crash-loop.sh --rounds 3 --max-ms 1500     # the CI version
#   benches/scripts/crash-loop.sh -c 32 -w 64 --seed 7         # more load, a fixed schedule
# Uses whatever profile is built (BENCH_PROFILE=debug by default, so CI reuses its test build).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${BENCH_PROFILE:-debug}
flag=""; [ "$profile" = release ] && flag="--release"
cargo build $flag -q -p feige-server -p feige-tools
exec "target/$profile/feige-bench" crash-loop --server-bin "target/$profile/feige-server" "$@"
