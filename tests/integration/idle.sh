#!/usr/bin/env bash
# tests/integration/idle.sh [N] — what an idle connection costs
# (integration.connections.idle): N keep-alive connections (default 200) to
# kbtest_httpd under the preload each send and receive a full ring's worth
# (idle_client.py: both of its rings wrap), then stay open and idle. Once
# idle, the contexts' shared memory (kbstat region_kib) is at most 4 KiB a
# connection above what it was before the first one: the rings gave their
# pages back (ring_trims). Then every connection still serves a request,
# byte-exact, on fresh pages.
. "$(dirname "$0")/../lib/kb.sh"
need_root
n=${1:-200}
www=$(mktemp -d)
test_cleanup() {
	httpd_down
	[ -z "${COPROC_PID:-}" ] || kill "$COPROC_PID" 2>/dev/null
	rm -rf "$www"
}
bed_up
head -c 64 /dev/urandom >"$www/f64"
head -c 65536 /dev/urandom >"$www/f64k"
chmod -R a+rX "$www"
httpd_up "$www"
# The curl's slot idle and trimmed too: the baseline is a context with no
# connection's pages.
sleep 0.6
base=$(kbstat_of "$stack" region_kib)
trims0=$(kbstat_of "$stack" ring_trims)

ring=$(sed -n 's/.* \([0-9]*\) KiB rings.*/\1/p' "$log" | head -1)
check "kbstackd's ready line names its rings' size (${ring:-none} KiB)" test -n "$ring"
coproc ip netns exec "$KB_TB_CNS" env KB_IDLE_RING=$((${ring:-1024} * 1024)) \
	python3 "$src/tests/integration/idle_client.py" 198.18.0.1 8080 "$n" "$www"
read -r -t 120 line <&"${COPROC[0]}"
check_eq "$n connections wrapped both rings ($ring KiB), every response byte-exact" "$line" idle
# Trimmed after one to two periods of 128 ms without an event; region_kib
# is sampled every 128 ms.
trimmed() { [ $(( $(kbstat_of "$stack" ring_trims) - trims0 )) -ge $((2 * n)) ]; }
check "both rings of every connection gave their pages back (ring_trims +$(wait_for 5 trimmed; echo $(( $(kbstat_of "$stack" ring_trims) - trims0 ))))" \
	trimmed
sleep 0.3
now=$(kbstat_of "$stack" region_kib)
check "idle: region memory at most 4 KiB a connection above the baseline ($base KiB before, $now KiB with $n idle connections: $(( (now - base) * 1024 / n )) bytes each)" \
	test $((now - base)) -le $((4 * n))
echo go >&"${COPROC[1]}"
read -r -t 60 line <&"${COPROC[0]}"
check_eq "every connection serves again after the idle time, byte-exact" "$line" "ok $n"
wait "$COPROC_PID" 2>/dev/null
httpd_down
check_stack_empty "after the server exited"
finish
