#!/usr/bin/env bash
# tests/integration/many.sh [CONNS] — many keep-alive connections to one
# application (integration.connections.many): kbtest_httpd (epoll) under
# the preload, wrk with CONNS connections at once (default 10000) for 4 s
# and 1 s more per 5000.
# A process holds one fd per connection, and this test bed's hard
# RLIMIT_NOFILE (20000) is less than 20000 connections and a few files:
# beyond it the server forks workers sharing the listener (as nginx does,
# each holding at most the limit less 100), and wrk processes of at most
# 5000 connections share them. Every connection is accepted through kbstackd and
# served — no socket error, no non-2xx, no connection reset, kbstackd held
# CONNS of them at once in one application context — and once the server
# exits, nothing is left. Rates and latencies are bench/connections.sh's
# business.
. "$(dirname "$0")/../lib/kb.sh"
need_root
conns=${1:-10000}
nofile=$(ulimit -Hn)
per=${KB_MANY_PER:-$((nofile - 100))}  # connections one process may hold (a test may set fewer)
[ "$per" -ge 1000 ] || { bad "RLIMIT_NOFILE's hard limit ($nofile) is too low"; finish; }
procs=$(( (conns + per - 1) / per ))   # server workers
secs=$(( 4 + conns / 5000 ))          # the connect storm takes longer with more
www=$(mktemp -d)
test_cleanup() { httpd_down; rm -rf "$www"; }
bed_up
head -c 64 /dev/urandom >"$www/f64"
chmod -R a+rX "$www"
httpd_up "$www" --workers "$procs" --max-conns "$per" --backlog 4096
url=http://198.18.0.1:8080/f64
# one client address, one server port: a source port per connection (the
# client's namespace, not the host's)
[ "$conns" -le 28000 ] || ip netns exec "$KB_TB_CNS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
a0=$(kbstat_of "$stack" tcp_accepted) r0=$(kbstat_of "$stack" tcp_accept_reset)
# the sockets gauge, sampled while wrk holds its connections: the most seen
# from 2 s in to the end (a SYN the full queue dropped twice is retried 3 s
# after the first; one sample at 3 s missed such a connection on a busy machine)
( held=0
  sleep 2
  for ((k = 0; k < (secs - 2) * 4 - 1; k++)); do
	n=$(kbstat_of "$stack" sockets); [ "${n:-0}" -gt "$held" ] && held=$n
	sleep 0.25
  done
  echo "$held" >"$www/held" ) &
sampler=$!
# wrk processes of at most 5000 connections: one wrk of more than ~12000 on
# this bed's shared core stalls (on the kernel path too: one of 18000 got no
# answer in 8 s); at 20000 in all, two of 10000 and four of 5000 alike
# stalled now and then (README, Many connections)
wrkn=$(( (conns + 4999) / 5000 ))
for ((i = 0; i < wrkn; i++)); do        # CONNS split among them, the first takes the rest
	c=$(( conns / wrkn + (i == 0 ? conns % wrkn : 0) ))
	ip netns exec "$KB_TB_CNS" taskset -c 0 bash -c \
		"ulimit -n $nofile && exec wrk -t1 -c$c -d${secs}s --timeout 10s $url" >"$www/wrk$i" 2>&1 &
	wrks+=($!)
done
wait "${wrks[@]}"
wait "$sampler"
out=$(cat "$www"/wrk*)
grep -h "requests in" "$www"/wrk* | sed "s/^ */    wrk: /"
reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out" | awk '{ n += $1 } END { print n + 0 }')
check "wrk ($wrkn process(es)): $conns connections at once to $procs worker(s), ${reqs:-no} requests answered" test "${reqs:-0}" -ge "$conns"
check "wrk: no socket error ($(grep -E 'Socket errors' <<<"$out" || echo none))" \
	sh -c "! grep -q 'Socket errors' <<'X'
$out
X"
check "wrk: no non-2xx answer" sh -c "! grep -q 'Non-2xx' <<'X'
$out
X"
check "kbstackd accepted every connection ($(( $(kbstat_of "$stack" tcp_accepted) - a0 )))" \
	test $(( $(kbstat_of "$stack" tcp_accepted) - a0 )) -ge "$conns"
check "kbstackd held them all at once ($(cat "$www/held") sockets: the listener and $conns connections)" \
	test "$(cat "$www/held")" -ge $((conns + 1))
check_eq "no connection reset at accept" "$(( $(kbstat_of "$stack" tcp_accept_reset) - r0 ))" 0
echo "    dropped (the client retries): SYNs for the queue $(kbstat_of "$stack" tcp_syn_drop_queue), for slots $(kbstat_of "$stack" tcp_syn_drop_slots); frames before the port's queue $(kbstat_of "$stack" rx_drop_ring)"
httpd_down
check_stack_empty "after the server exited"
finish
