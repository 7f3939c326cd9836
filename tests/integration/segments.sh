#!/usr/bin/env bash
# tests/integration/segments.sh — a send lwIP refuses for want of segments
# is sent later (integration.faults.segments). On kbstackd_fewsegs (64 TCP
# segments and pbuf headers for everyone; KB_TCP_PCBS=16 keeps the bound
# there, and 256 KiB rings keep it from growing with KB_RING), 8 clients
# download 4 MiB each at once from a server under the preload: lwIP runs
# out of segments, and a connection refused one while
# it had nothing in flight gets no ACK to push it again — kbstackd retries
# it every ms (tcp_tx_nomem counts them). Every download byte-exact within
# its time limit; without the retry some wait for ever.
. "$(dirname "$0")/../lib/kb.sh"
need_root
www=$(mktemp -d)
test_cleanup() { httpd_down; rm -rf "$www"; }
bed_up --tcp-pcbs=16 --ring=256k
head -c 64 /dev/urandom >"$www/f64"
head -c $((4 << 20)) /dev/urandom >"$www/f4m"
chmod -R a+rX "$www"
httpd_up "$www"
pids=()
for i in 1 2 3 4 5 6 7 8; do
	ip netns exec "$KB_TB_CNS" curl -s --max-time 30 -o "$www/got$i" http://198.18.0.1:8080/f4m &
	pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
check_eq "8 downloads of 4 MiB at once: none failed or timed out" "$fails" 0
same=0
for i in 1 2 3 4 5 6 7 8; do cmp -s "$www/got$i" "$www/f4m" && same=$((same + 1)); done
check_eq "all 8 byte-exact" "$same" 8
n=$(kbstat_of "$stack" tcp_tx_nomem)
check "lwIP ran out of segments with a connection idle, and kbstackd retried it (tcp_tx_nomem $n)" \
	test "${n:-0}" -gt 0
check "kbstackd alive" sh -c "kill -0 $pid 2>/dev/null"
finish
