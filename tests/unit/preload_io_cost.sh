#!/usr/bin/env bash
# preload_io_cost.sh — what an uncontended accelerated read() and write()
# cost, in instructions: the preload harness's test_cost_uncontended makes
# N rounds of one 64-byte write and one 64-byte read on one socket through
# cost_write/cost_read (what the interposed symbols do: look the fd up,
# take a call reference, the kbp_* call, drop it), counted by callgrind
# with --toggle-collect at two lengths; the difference over the extra
# rounds is one call's instructions. Asserts at most KB_MAX_IO_INSN
# (default 400) per call, each direction.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/check.sh"
prog=${PRELOAD_HARNESS:?PRELOAD_HARNESS: path of test_preload_harness}
max=${KB_MAX_IO_INSN:-400}

command -v valgrind >/dev/null || { bad "valgrind is not installed (scripts/setup installs it)"; finish; }

# insns FUNCTION N: instructions inside FUNCTION over N rounds
insns() {
	KB_COST_N=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		--toggle-collect="$1*" "$prog" test_cost_uncontended 2>&1 |
		awk '/Collected/ { if ($4 > m) m = $4 } END { print m }'
}
for f in cost_read cost_write; do
	a=$(insns $f 2000); b=$(insns $f 6000)
	per=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 4000 }')
	check "$f: $per instructions per uncontended call (at most $max)" \
		awk -v x="$per" -v m="$max" 'BEGIN { exit !(x > 0 && x <= m) }'
done
finish
