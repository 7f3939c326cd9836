#!/usr/bin/env bash
# threads.sh — two threads on one accepted socket, under
# LD_PRELOAD=libkbpreload.so on the test bed (tests/servers/kbtest_threads.c),
# the client (the same program, without the preload) in the client namespace:
#   write2  two server threads write 40 records each at once (writev, write,
#           send; 0 B to 300 KiB): the client finds every record whole, each
#           writer's in order, all there
#   read2   the client sends 8 MiB of a pattern; two server threads read it
#           at once, in reads of many sizes: the pieces they got tile the
#           stream (none lost, none read twice, each read one run)
# Each twice; bounded (the client gives up after 20 s without data).
# Layout: kbstackd on core 1; server and client on core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root
prog=${KBTEST_THREADS:-$src/build/tests/kbtest_threads}
port=8097

srvlog=$(mktemp)
srv=
test_cleanup() {
	[ -n "$srv" ] && kill -KILL "$srv" 2>/dev/null
	rm -f "$srvlog"
}
bed_up

cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 timeout 60 "$prog" "$@"; }

ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL="listen:$port" KB_LOG=1 \
	LD_PRELOAD="$lib" taskset -c 0 "$prog" serve "$port" >"$srvlog" 2>&1 &
srv=$!
if ! wait_for 10 grep -q '^ready' "$srvlog"; then
	bad "kbtest_threads serve did not start"
	sed 's/^/    /' "$srvlog"
	finish
fi

for round in 1 2; do
	out=$(cx write2 198.18.0.1 "$port" 2>&1)
	check "round $round: two threads wrote one socket: every record whole and in order ($out)" \
		test "${out%% *}" = ok
	out=$(cx read2 198.18.0.1 "$port" $((8 << 20)) 2>&1)
	check "round $round: two threads read one socket: each byte once ($out)" \
		test "${out%% *}" = ok
done
check "the server said nothing amiss" sh -c "! grep -qv -e '^ready' -e '^wrote ok' -e '^read ok' '$srvlog'"
grep -v -e '^ready' -e '^wrote ok' -e '^read ok' "$srvlog" | head -5 | sed 's/^/    /'
kill -KILL "$srv" 2>/dev/null
wait "$srv" 2>/dev/null
srv=
check_stack_empty "threads server killed"
finish
