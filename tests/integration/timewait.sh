#!/usr/bin/env bash
# tests/integration/timewait.sh — TIME_WAIT bounded (integration.lifecycle.tw_bound).
# On kbstackd_shortmsl (a PCB pool of KB_TEST_TCP_PCBS, TIME_WAIT 2 s) a
# server under the preload closes first, one connection after another, so
# each leaves a TIME_WAIT PCB: more than half the pool is soon in
# TIME_WAIT, and kbstackd frees the oldest down to a quarter
# (tcp_tw_recycled) instead of waiting for lwIP to run out of PCBs. Every
# exchange completes; nothing is reset.
. "$(dirname "$0")/../lib/kb.sh"
need_root
n=${1:-80}
bed_up
spid=
test_cleanup() { [ -z "$spid" ] || { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }; }
ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL=listen:9000 KB_STRICT=1 LD_PRELOAD="$lib" \
	taskset -c 0 python3 -c '
import socket, sys
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", 9000))
ls.listen(64)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    req = c.recv(100)
    c.sendall(b"pong " + req)
    c.close()  # the server closes first: TIME_WAIT on its side
' >"$log.srv" 2>&1 &
spid=$!
wait_for 10 grep -qs ready "$log.srv" || { bad "server did not start: $(cat "$log.srv")"; finish; }

tw0=$(kbstat_of "$stack" tcp_tw_recycled)
rs0=$(kbstat_of "$stack" tcp_accept_reset)
out=$(ip netns exec "$KB_TB_CNS" taskset -c 0 python3 -c '
import socket, sys, time
n, good = int(sys.argv[1]), 0
for i in range(n):
    s = socket.create_connection(("198.18.0.1", 9000), timeout=5)
    s.sendall(b"ping%d" % i)
    got = b""
    while True:
        b = s.recv(100)
        if not b:
            break
        got += b
    s.close()
    good += got == b"pong ping%d" % i
    time.sleep(0.005)  # kbstackd looks at TIME_WAIT every 64 ms
print(good)
' "$n" 2>&1)
check_eq "$n connections closed by the server first, one after another: each answered, then EOF" "$out" "$n"
recycled() { [ "$(kbstat_of "$stack" tcp_tw_recycled)" -gt "$tw0" ]; }
wait_for 1 recycled # (the last look may be 64 ms away; TIME_WAIT lasts 2 s)
check "more than half the pool in TIME_WAIT: the oldest freed early (tcp_tw_recycled +$(($(kbstat_of "$stack" tcp_tw_recycled) - tw0)))" \
	recycled
check_eq "no connection reset at accept" "$(($(kbstat_of "$stack" tcp_accept_reset) - rs0))" 0
finish
