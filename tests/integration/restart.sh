#!/usr/bin/env bash
# restart.sh [all|read] — a threaded server under LD_PRELOAD=libkbpreload.so outlives
# its kbstackd (tests/servers/kbtest_restart.c). Two kernel clients hold
# connections c1, c2; four threads block on them: read (c1), epoll_wait and
# poll (c2), accept (the listener). kbstackd is killed with SIGKILL:
#   - every blocked call returns within 1 s: read ECONNRESET, epoll and poll
#     ERR|HUP, accept ECONNABORTED; then read 0 and write EPIPE, as after a
#     reset in Linux (setsockopt answered, shutdown ENOTCONN); the server
#     says why, once
#   - the listener goes on through the kernel (a connection to 127.0.0.1)
#   - a new kbstackd is started: a new listener of the same process attaches
#     to it and serves a client on 198.18.0.1, without a restart
# With "read", only the reader blocks: no sleep watches the control
# connection, and the futex sleep must see kbstackd's death by itself.
# Layout: kbstackd on core 1; server and clients on core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root
prog=${KBTEST_RESTART:-$src/build/tests/kbtest_restart}
mode=${1:-all}
port1=8095 port2=8096
threads=(read epoll poll accept)
[ "$mode" = read ] && threads=(read)

srvlog=$(mktemp) flag=$(mktemp -u)
pids=()
test_cleanup() {
	local p
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -f "$srvlog" "$flag"
}
bed_up
kbflags=(--dev="net_af_xdp0,iface=$KB_TB_SIF" --ip=198.18.0.1/24 --core=1)

ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL="listen:$port1,$port2" KB_LOG=1 \
	LD_PRELOAD="$lib" taskset -c 0 "$prog" "$port1" "$port2" "$flag" \
	$([ "$mode" = read ] && echo read) >"$srvlog" 2>&1 &
srv=$!
pids+=("$srv")
wait_for 10 grep -q '^ready' "$srvlog" || { bad "server did not start"; sed 's/^/    /' "$srvlog"; finish; }

# Two connections held open, silent, until the test ends.
ip netns exec "$KB_TB_CNS" taskset -c 0 python3 -c '
import socket, sys, time
cs = [socket.create_connection(("198.18.0.1", int(sys.argv[1])), timeout=5) for _ in range(2)]
time.sleep(60)' "$port1" &
pids+=("$!")
wait_for 10 grep -q '^blocked' "$srvlog" || { bad "threads not blocked"; sed 's/^/    /' "$srvlog"; finish; }
check "kbstackd serves the server's two connections" kbstat_is "$stack" sockets 3

t0=$(python3 -c 'import time; print(int(time.monotonic() * 1000))')
kill -KILL "$pid"
wait "$pid" 2>/dev/null
pid=
check "every blocked thread returned after kbstackd's SIGKILL" \
	wait_for 5 grep -q '^returned' "$srvlog"

# took NAME: milliseconds from the kill to NAME's return
took() { sed -n "s/^$1 .* at=\([0-9]*\)$/\1/p" "$srvlog" | awk -v t0="$t0" '{ print $1 - t0 }'; }
within() { local ms; ms=$(took "$1"); [ -n "$ms" ] && [ "$ms" -le 1000 ]; }
for t in "${threads[@]}"; do
	check "$t returned within 1 s ($(took $t) ms)" within $t
done
check "read: ECONNRESET" grep -q '^read rc=-1 errno=ECONNRESET ' "$srvlog"
check "then read 0 and write EPIPE" grep -q '^after read=0 write=EPIPE$' "$srvlog"
check "setsockopt answered, shutdown ENOTCONN" \
	grep -q '^after setsockopt=0 shutdown=ENOTCONN$' "$srvlog"
check "the server says kbstackd has gone, once" \
	test "$(grep -c 'kbstackd at .* has gone' "$srvlog")" = 1
[ "$mode" = read ] || {
check "accept: ECONNABORTED (servers retry it)" grep -q '^accept rc=-1 errno=ECONNABORTED ' "$srvlog"
# EPOLLERR 0x8, EPOLLHUP 0x10 (POLLERR, POLLHUP alike)
hasbits() { local v; v=$(sed -n "s/^$1 n=1 $2=\(0x[0-9a-f]*\) .*/\1/p" "$srvlog"); [ -n "$v" ] && (( (v & 0x18) == 0x18 )); }
check "epoll_wait: EPOLLERR|EPOLLHUP" hasbits epoll events
check "poll: POLLERR|POLLHUP" hasbits poll revents

out=$(ip netns exec "$KB_TB_SNS" python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"k\n"); print(s.makefile().readline().strip())' "$port1" 2>&1)
check_eq "the old listener goes on through the kernel" "$out" "kernel k"
}

start_kbstackd "$KB_TB_SNS" "$stack" "$log" "${kbflags[@]}"
touch "$flag"
check "the same process listens again" wait_for 10 grep -q '^listening2' "$srvlog"
check "... on the new kbstackd (a context attached)" wait_for 5 kbstat_is "$stack" contexts 1
out=$(ip netns exec "$KB_TB_CNS" taskset -c 0 python3 -c '
import socket, sys
s = socket.create_connection(("198.18.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"x\n"); print(s.makefile().readline().strip())' "$port2" 2>&1)
check_eq "a client on 198.18.0.1 is served through the new kbstackd" "$out" "again x"
check "the server finished" wait_for 5 sh -c "! kill -0 $srv 2>/dev/null"
wait "$srv"
check_eq "... with status 0" "$?" 0
grep -q '^served2' "$srvlog" || sed 's/^/    /' "$srvlog"
check_stack_empty "the server exited"
finish
