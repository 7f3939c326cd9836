#!/usr/bin/env bash
# bench/preload_overhead.sh [RUNS] — wall-clock cost of libkbpreload.so on a
# program that uses no accelerated socket: a pipe ping-pong (read/write),
# run alternately without and with LD_PRELOAD, both processes on core 0.
# Prints the median round-trip time of each and their ratio.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-11}
prog=$top/build/tests/pipe_pingpong
lib=$top/build/preload/libkbpreload.so
plain=(); pre=()
for _ in $(seq "$runs"); do
	plain+=("$(taskset -c 0 "$prog" 100000 | awk '{ print $2 }')")
	pre+=("$(LD_PRELOAD=$lib KB_LOG=0 taskset -c 0 "$prog" 100000 | awk '{ print $2 }')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
a=$(median "${plain[@]}"); b=$(median "${pre[@]}")
printf 'pipe ping-pong, %d runs each alternated, core 0: libc %s ns, preload %s ns per round trip; ratio %s\n' \
	"$runs" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')"
