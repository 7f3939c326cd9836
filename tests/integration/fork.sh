#!/usr/bin/env bash
# fork.sh SCENARIO — servers that fork, under LD_PRELOAD=libkbpreload.so on
# the test bed (tests/servers/kbtest_fork.c), with kernel clients in the
# client namespace:
#   accept_close  accept, fork, the parent closes the accepted socket at
#                 once (inetd; kbtest_fork and Python's ForkingTCPServer):
#                 200 sequential connections each, every request tagged with
#                 its number and answered to its own client — none lost,
#                 none crossed over
#   master        a master forks a worker and closes its listener: 5 starts,
#                 the worker serves through kbstackd every time; then 5
#                 starts where the worker execs: the new image serves the
#                 inherited listener on the kernel path, and kbstackd, the
#                 old image's holder gone, refuses the port at once
#   prefork       1000 generations of pre-forked children, each serving one
#                 connection with epoll and poll, then exiting: every answer
#                 right; afterwards kbstackd's sockets, waiter entries and
#                 processes back to where they were, and no child ever fell
#                 back to polling for want of a waiter entry
#   epoll_close   a child closes its inherited copy of the parent's epoll fd
#                 (and makes one of its own): the parent's epoll_wait on
#                 that instance is still woken by a connection, within 200 ms
# Layout: kbstackd on core 1; servers and clients on core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/serve.sh"
need_root
prog=${KBTEST_FORK:-$src/build/tests/kbtest_fork}
port=8090

test_cleanup() { serve_cleanup; }
bed_up

# serve ARGS...: kbtest_fork ARGS (serve_cmd, serve.sh).
serve() { serve_cmd "$prog" "$@"; }

# One request line to 198.18.0.1:PORT; prints the answer line, or
# "refused", "reset", "timeout", "eof".
ask='import socket, sys
try:
    s = socket.create_connection(("198.18.0.1", int(sys.argv[1])), timeout=float(sys.argv[3]))
    s.sendall(sys.argv[2].encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        b = s.recv(256)
        if not b:
            break
        data += b
    print(data.decode().strip() or "eof")
except ConnectionRefusedError:
    print("refused")
except ConnectionResetError:
    print("reset")
except socket.timeout:
    print("timeout")'

# N sequential connections, request "req I"; the answer must carry "req I"
# (after PREFIX, a regex). Prints "answered crossed lost" and the first
# wrong answers. Stops after 20 wrong ones.
sequential='import re, socket, sys
n, prefix = int(sys.argv[2]), sys.argv[3]
ok = crossed = lost = 0
notes = []
for i in range(n):
    data = b""
    try:
        s = socket.create_connection(("198.18.0.1", int(sys.argv[1])), timeout=2)
        s.sendall(b"req %d\n" % i)
        while not data.endswith(b"\n"):
            b = s.recv(256)
            if not b:
                break
            data += b
        s.close()
    except OSError as e:
        data = data or repr(e).encode()
    line = data.decode(errors="replace").strip()
    m = re.fullmatch(prefix + r"req (\d+)", line)
    if m and int(m.group(1)) == i:
        ok += 1
        continue
    if m:
        crossed += 1
    else:
        lost += 1
    if len(notes) < 5:
        notes.append("connection %d got %r" % (i, line))
    if crossed + lost >= 20:
        notes.append("stopped after %d connections" % (i + 1))
        break
print(ok, crossed, lost)
for x in notes:
    print(x)'

# Python's socketserver.ForkingTCPServer: the same pattern in a library
# (the parent closes the request right after fork), answering the line.
forking='import socketserver, sys
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())
class Server(socketserver.ForkingTCPServer):
    allow_reuse_address = True
s = Server(("0.0.0.0", int(sys.argv[1])), Echo)
print("ready", flush=True)
s.serve_forever()'

sc_accept_close() {
	local out good crossed lost n=200 name port=$port
	for name in kbtest_fork ForkingTCPServer; do
		if [ "$name" = kbtest_fork ]; then
			serve accept_close "$port"
		else
			port=$((port + 1)) # (a server stuck on the last port must not matter)
			serve_cmd python3 -c "$forking" "$port"
		fi
		ready || { bad "$name did not start"; sed 's/^/    /' "$srvlog"; continue; }
		out=$(cx timeout 120 python3 -c "$sequential" "$port" "$n" "")
		read -r good crossed lost <<<"$(head -1 <<<"$out")"
		check_eq "$name: accept, fork, the parent closes: connections answered by their own child" \
			"$good/$n" "$n/$n"
		check_eq "$name: ... answers that reached another client" "${crossed:-?}" 0
		tail -n +2 <<<"$out" | sed 's/^/    /'
		stop "$srv"
		check_stack_empty "$name killed"
	done
}

sc_master() {
	local i out w served=0 exec_ok=0 refused=0 empty=0
	for i in 1 2 3 4 5; do
		serve master "$port"
		if ready "ready worker"; then
			w=$(sed -n 's/^ready worker \([0-9]*\)$/\1/p' "$srvlog")
			pids+=("$w")
			out=$(cx python3 -c "$ask" "$port" hello 2)
			[ "$out" = "worker $w" ] && served=$((served + 1)) ||
				echo "    start $i: worker $w, client got '$out'"
			stop "$srv" "$w"
		else
			echo "    start $i: no worker"; sed 's/^/    /' "$srvlog"
			stop "$srv"
		fi
		wait_for 10 kbstat_is "$stack" sockets 0
	done
	check_eq "master forks a worker and closes its listener: the worker serves (starts)" \
		"$served/5" 5/5
	for i in 1 2 3 4 5; do
		serve master "$port" exec
		if ready "ready exec" && wait_for 10 grep -q '^master .* closed' "$srvlog"; then
			w=$(sed -n 's/^ready exec \([0-9]*\)$/\1/p' "$srvlog")
			pids+=("$w")
			out=$(ip netns exec "$KB_TB_SNS" python3 -c "${ask/198.18.0.1/127.0.0.1}" \
				"$port" hello 2)
			[ "$out" = "exec $w" ] && exec_ok=$((exec_ok + 1)) ||
				echo "    exec start $i: 127.0.0.1 got '$out'"
			# The master is alive and closed its copy; the old image is
			# gone: kbstackd holds no socket for the context any more.
			if wait_for 5 kbstat_is "$stack" sockets 0; then
				empty=$((empty + 1))
			else
				echo "    exec start $i: kbstackd still holds $(kbstat_of "$stack" sockets) socket(s)"
			fi
			out=$(cx python3 -c "$ask" "$port" hello 2)
			[ "$out" = refused ] && refused=$((refused + 1)) ||
				echo "    exec start $i: 198.18.0.1 got '$out'"
			stop "$srv" "$w"
		else
			echo "    exec start $i: no exec'd worker"; sed 's/^/    /' "$srvlog"
			stop "$srv"
		fi
		wait_for 10 kbstat_is "$stack" sockets 0
	done
	check_eq "worker execs: the new image serves the inherited listener on the kernel path" \
		"$exec_ok/5" 5/5
	check_eq "... kbstackd lets the port go with the old image (master alive)" "$empty/5" 5/5
	check_eq "... and refuses it at once instead of queueing for nobody" "$refused/5" 5/5
	check_stack_empty "masters killed"
}

sc_prefork() {
	local gens=1000 out good crossed lost s0 w0 p0 x
	KBLOG=2 serve prefork "$port" "$gens" 4
	ready || { bad "prefork server did not start"; sed 's/^/    /' "$srvlog"; return; }
	# Before any child: the parent holds the listener and nothing else
	# (counters are sampled every 128 ms).
	sleep 0.5
	s0=$(kbstat_of "$stack" sockets) w0=$(kbstat_of "$stack" waiters)
	p0=$(kbstat_of "$stack" procs)
	kill -USR1 "$srv"
	# (the counter counts: 4 children wait, each with an epoll waiter)
	check "kbstat waiters counts the children's waiter entries (at least 4)" \
		wait_for 5 at_least "$stack" waiters 4
	out=$(cx timeout 240 python3 -c "$sequential" "$port" "$gens" 'gen \d+ \d+: ')
	read -r good crossed lost <<<"$(head -1 <<<"$out")"
	check_eq "pre-fork server, $gens child generations: every connection answered" \
		"$good/$gens" "$gens/$gens"
	tail -n +2 <<<"$out" | sed 's/^/    /'
	check "every child has exited" wait_for 20 grep -q "^done $gens" "$srvlog"
	check "no child failed" sh -c "! grep -q 'failed' '$srvlog'"
	for x in "sockets $s0" "waiters $w0" "procs $p0"; do
		set -- $x ""
		if num "$2" && wait_for 5 kbstat_is "$stack" "$1" "$2"; then
			ok "kbstat $1 back to where it was before the children ($2)"
		else
			bad "kbstat $1: '$(kbstat_of "$stack" "$1")' after the children, '$2' before"
		fi
	done
	check "no child fell back to polling for want of a waiter entry" \
		sh -c "! grep -q 'no waiter entry free' '$srvlog'"
	grep -m3 'no waiter entry free' "$srvlog" | sed 's/^/    /'
	stop "$srv"
	check_stack_empty "prefork server killed"
}

sc_epoll_close() {
	local t woken ms
	serve epoll_close "$port"
	ready waiting || { bad "epoll_close server did not start"; sed 's/^/    /' "$srvlog"; return; }
	t=$(cx python3 -c 'import socket, time
s = socket.create_connection(("198.18.0.1", '"$port"'), timeout=3)
print(time.monotonic_ns())
time.sleep(0.5)')
	wait_for 5 grep -qE '^(woken|timeout)' "$srvlog"
	woken=$(sed -n 's/^woken \([0-9]*\)$/\1/p' "$srvlog")
	if num "$woken" && num "$t"; then
		ms=$(((woken - t) / 1000000))
		check "the parent's epoll_wait is woken by a connection after a child closed its copy (${ms} ms, at most 200)" \
			test "$ms" -lt 200
	else
		bad "the parent's epoll_wait was not woken by a connection after a child closed its copy ($(grep -E '^(woken|timeout)' "$srvlog"))"
	fi
	reap 5 "$srv"
	check_stack_empty "epoll_close server done"
}

[ $# -gt 0 ] || set -- accept_close master prefork epoll_close
for sc in "$@"; do
	"sc_$sc"
done
finish
