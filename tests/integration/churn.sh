#!/usr/bin/env bash
# tests/integration/churn.sh [N] — short connections in a row
# (integration.connections.churn): ab sends N requests (default 100000), 50
# at a time, each on its own connection that the server (kbtest_httpd under
# the preload, epoll) closes first. Every request answered, none reset or
# refused; afterwards slots, lwIP PCBs other than TIME_WAIT, TCP segments
# and mbufs are back where they were before the first connection, and
# TIME_WAIT stays within half the PCB pool. The rates are bench/'s
# business (bench/connections.sh); this checks that nothing is left behind.
. "$(dirname "$0")/../lib/kb.sh"
need_root
n=${1:-100000}
# kbstackd's PCB bound: 32768 here (KB_TCP_PCBS), so 100,000 connections a
# server closes first fill half of it with TIME_WAIT and the bound is tested
pcbs=32768
export KB_TCP_PCBS=$pcbs
www=$(mktemp -d)
test_cleanup() { httpd_down; rm -rf "$www"; }
bed_up
head -c 64 /dev/urandom >"$www/f64"
chmod -R a+rX "$www"
httpd_up "$www"
url=http://198.18.0.1:8080/f64

# gauges: "sockets pcbs-not-in-TIME_WAIT segs mbufs" once all settled
gauges() {
	KB_STACK=$stack "$kbstat" | awk '{ v[$1] = $2 } END {
		print v["sockets"], v["tcp_pcbs"] - v["tcp_timewait"], v["tcp_segs"], v["mbufs_in_use"] }'
}
sleep 0.2 # the curl's connection gone, TIME_WAIT counted
base=$(gauges)
rs0=$(kbstat_of "$stack" tcp_accept_reset)
t0=$SECONDS
out=$(ip netns exec "$KB_TB_CNS" taskset -c 0 timeout 600 \
	ab -q -r -n "$n" -c 50 -H 'Connection: close' "$url" 2>&1)
done_n=$(sed -n 's/^Complete requests: *//p' <<<"$out")
failed=$(sed -n 's/^Failed requests: *//p' <<<"$out")
rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$out")
check_eq "ab: $n connections closed by the server after one request each, all answered ($rps/s, $((SECONDS - t0)) s)" \
	"$done_n/$failed" "$n/0"
check_eq "no connection reset at accept" "$(($(kbstat_of "$stack" tcp_accept_reset) - rs0))" 0
# mbufs: af_xdp frees a sent frame's mbuf at a later transmission, so a
# few stay out; a leak of one per thousand connections would be 100.
settled() {
	local g b
	read -ra g <<<"$(gauges)"; read -ra b <<<"$base"
	[ "${g[0]} ${g[1]} ${g[2]}" = "${b[0]} ${b[1]} ${b[2]}" ] && [ "${g[3]}" -le $((b[3] + 32)) ]
}
wait_for 10 settled
check "slots, PCBs other than TIME_WAIT, segments back to before, mbufs within 32 (before: $base; now: $(gauges))" \
	settled
tw=$(kbstat_of "$stack" tcp_timewait)
check "TIME_WAIT within half the PCB bound, $pcbs ($tw PCBs, recycled early: $(kbstat_of "$stack" tcp_tw_recycled))" \
	test "$tw" -le $((pcbs / 2))
httpd_down
check_stack_empty "after the server exited"
finish
