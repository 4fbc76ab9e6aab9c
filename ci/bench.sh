#!/usr/bin/env bash
# ci/bench.sh -- pollmux serve against reference echo servers, on loopback.
#
# Builds pollmux and the dev-only reference servers in refservers/ (tokio
# multi-thread and current-thread, mio single-thread, std thread-per-
# connection) in release mode, then runs ci/bench.py: profiles a..e of
# `pollmux bench`, servers interleaved, >= 3 runs per cell (median, min, max),
# server CPU per message from /proc, syscalls per message from `strace -c -f`,
# RSS per idle connection; prints one table with ratios to pollmux and writes
# BENCHMARKS.md. Linux only. Not part of the test command; takes about 10 minutes.
#
#   ci/bench.sh                       # the full run, writes BENCHMARKS.md
#   ci/bench.sh --runs 1 --duration 1 --profiles b --output -   # a quick look
#   ci/bench.sh --help                # every knob
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [ "$(uname -s)" != Linux ]; then
    echo "ci/bench.sh: Linux only (it reads /proc and uses strace)" >&2
    exit 2
fi
case " $* " in
*" --help "* | *" -h "*) exec python3 ci/bench.py --help ;;
esac

# 10,100 connections on each side of profile e: raise the open-files limit
# (root may lift the hard limit too; the binaries raise soft to hard).
ulimit -Hn 65536 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

command -v strace >/dev/null || echo "ci/bench.sh: strace not found; syscall counts are skipped" >&2

cargo build --release --locked -p pollmux -p refservers

exec python3 ci/bench.py --command "ci/bench.sh${*:+ $*}" "$@"
