#!/usr/bin/env bash
# preload_epoll_cost.sh — epoll_wait on kb's sockets costs what is ready,
# not what is registered: the preload harness's test_cost_epoll holds K
# connections in one epoll set and makes one ready per call; callgrind
# counts cost_epoll's instructions over N rounds at two lengths, the
# difference per extra round is one call. Asserts that a call with 4000
# connections registered costs at most twice one with 64 (plus 200).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/check.sh"
prog=${PRELOAD_HARNESS:?PRELOAD_HARNESS: path of test_preload_harness}

command -v valgrind >/dev/null || { bad "valgrind is not installed (scripts/setup installs it)"; finish; }

# insns K N: instructions inside cost_epoll over N rounds with K connections
insns() {
	KB_COST_K=$1 KB_COST_N=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		--toggle-collect="cost_epoll*" "$prog" test_cost_epoll 2>&1 |
		awk '/Collected/ { if ($4 > m) m = $4 } END { print m }'
}
per() { awk -v a="$(insns "$1" 1000)" -v b="$(insns "$1" 3000)" 'BEGIN { printf "%.1f", (b - a) / 2000 }'; }
small=$(per 64)
big=$(per 4000)
check "epoll_wait with one of 64 connections ready: $small instructions a call" \
	awk -v x="$small" 'BEGIN { exit !(x > 0) }'
check "... with one of 4000 ready: $big instructions a call (at most 2 x $small + 200)" \
	awk -v x="$big" -v s="$small" 'BEGIN { exit !(x > 0 && x <= 2 * s + 200) }'
finish
