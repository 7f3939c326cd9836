#!/usr/bin/env bash
# preload_cost.sh — what libkbpreload.so costs a call it does not accelerate.
# A pipe ping-pong (read/write, no socket) runs under callgrind with and
# without the library, at two lengths; the difference of differences is the
# library's instructions per interposed call, independent of start-up and of
# how loaded the machine is. Asserts at most KB_MAX_INSN_PER_CALL (20; 11 measured).
# Wall-clock figures, kernel vs preload side by side: bench/preload_overhead.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/check.sh"
lib=${KBPRELOAD:?KBPRELOAD: path of libkbpreload.so}
prog=${PIPE_PINGPONG:?PIPE_PINGPONG: path of pipe_pingpong}
max=${KB_MAX_INSN_PER_CALL:-20}

command -v valgrind >/dev/null || { bad "valgrind is not installed (scripts/setup installs it)"; finish; }

# insns PRELOAD N: instructions of the parent process (the larger count)
insns() {
	env ${1:+LD_PRELOAD=$1} KB_LOG=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		"$prog" "$2" 2>&1 | awk '/Collected/ { if ($4 > m) m = $4 } END { print m }'
}
a1=$(insns "" 10000); a2=$(insns "" 30000)
b1=$(insns "$lib" 10000); b2=$(insns "$lib" 30000)
# 20000 more round trips, 2 interposed calls each in the parent
per_call=$(awk -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" \
	'BEGIN { printf "%.1f", ((b2 - b1) - (a2 - a1)) / 40000 }')
printf '    libc alone: %s instructions per round trip; with the library: %s\n' \
	"$(awk -v a1="$a1" -v a2="$a2" 'BEGIN { printf "%.1f", (a2 - a1) / 20000 }')" \
	"$(awk -v b1="$b1" -v b2="$b2" 'BEGIN { printf "%.1f", (b2 - b1) / 20000 }')"
check "the library adds $per_call instructions per non-accelerated call (at most $max)" \
	awk -v x="$per_call" -v m="$max" 'BEGIN { exit !(x >= 0 && x <= m) }'
finish
