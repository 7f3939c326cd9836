#!/usr/bin/env bash
# preload_servers.sh — unmodified servers under LD_PRELOAD=libkbpreload.so,
# served by kbstackd (af_xdp) on the test bed, with kernel clients (curl,
# wrk, python) in the client namespace:
#   - kbtest_httpd (epoll level- and edge-triggered, threads), python3
#     -m http.server: bodies of 0 B … 16 MiB byte-exact (sha256);
#   - the same listening socket answering on 127.0.0.1 (kernel path);
#   - 1000 sequential connections; 200 concurrent keep-alive under wrk;
#   - half-close and reset seen on both sides (tcp_semantics.py);
#   - a forked child's listener outliving its parent;
#   - a client under the preload connecting out through kbstackd;
#   - after each server stops: no socket and no context left in kbstackd.
# Layout: kbstackd on core 1; servers and clients on core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root

www=$(mktemp -d)
srv=
test_cleanup() {
	[ -n "$srv" ] && kill -KILL "$srv" 2>/dev/null
	rm -rf "$www" "${srvlog:-}"
}
bed_up

sizes=(0 1 1024 65536 1048576 16777216)
for n in "${sizes[@]}"; do head -c "$n" /dev/urandom >"$www/f$n"; done
chmod -R a+rX "$www"

cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
# In the server namespace under the preload (KB_ACCEL from ACCEL). It execs,
# so `kb CMD &` leaves $! = the command's pid; call it in a subshell otherwise.
kb() {
	exec ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL="${ACCEL:-listen:8080}" \
		LD_PRELOAD="$lib" taskset -c 0 "$@"
}
srvlog=$(mktemp)

start_server() { # NAME CMD...
	local name=$1; shift
	: >"$srvlog" # (an earlier server's "ready" must not count)
	kb "$@" >"$srvlog" 2>&1 &
	srv=$!
	if wait_for 10 grep -q -e '^ready' -e '^Serving HTTP' "$srvlog" &&
	   wait_for 10 ip netns exec "$KB_TB_SNS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080'; then
		ok "$name started under the preload"
	else
		bad "$name did not start:"; sed 's/^/    /' "$srvlog"
	fi
}

stop_server() { # NAME
	kill -TERM "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null # (not our child when it was forked by the server)
	wait_for 5 sh -c "! kill -0 $srv 2>/dev/null"
	srv=
	check_stack_empty "$1 stopped"
}

bodies() { # NAME
	local n got want bad_sizes=""
	for n in "${sizes[@]}"; do
		got=$(cx curl -sS --max-time 30 "http://198.18.0.1:8080/f$n" | sha256sum)
		want=$(sha256sum <"$www/f$n")
		[ "$got" = "$want" ] || bad_sizes+=" $n"
	done
	if [ -z "$bad_sizes" ]; then ok "$1: bodies of ${sizes[*]} bytes byte-exact";
	else bad "$1: wrong body for sizes:$bad_sizes"; fi
	got=$(ip netns exec "$KB_TB_SNS" curl -sS --max-time 10 http://127.0.0.1:8080/f1048576 | sha256sum)
	check_eq "$1: the same listener serves 127.0.0.1 (kernel path)" "$got" "$(sha256sum <"$www/f1048576")"
}

sequential() { # NAME COUNT
	local n
	n=$(cx python3 - "$2" <<'PY'
import socket, sys
ok = 0
for i in range(int(sys.argv[1])):
    s = socket.create_connection(("198.18.0.1", 8080), timeout=5)
    s.sendall(b"GET /f1024 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    ok += data.startswith(b"HTTP/1.") and b" 200 " in data[:20] and len(data) > 1024
print(ok)
PY
)
	check_eq "$1: $2 sequential connections answered" "$n" "$2" ||
		KB_STACK=$stack "$kbstat" | grep -E 'drop|sockets|contexts' | sed 's/^/    /'
}

keepalive() { # NAME CONNS
	local out
	out=$(cx wrk -t2 -c"$2" -d3s http://198.18.0.1:8080/f1024 2>&1)
	if grep -q 'requests in' <<<"$out" && ! grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
		ok "$1: wrk, $2 keep-alive connections, no errors ($(awk '/Requests\/sec/{print $2}' <<<"$out") req/s)"
	else
		bad "$1: wrk with $2 connections:"; sed 's/^/    /' <<<"$out"
	fi
}

start_server "epoll server" "$httpd" --mode epoll --port 8080 --root "$www"
bodies "epoll server"
sequential "epoll server" 1000
keepalive "epoll server" 200
stop_server "epoll server"

start_server "epoll server, edge-triggered, no sendfile" "$httpd" --mode epoll --et \
	--no-sendfile --port 8080 --root "$www"
bodies "edge-triggered server"
keepalive "edge-triggered server" 200
stop_server "edge-triggered server"

start_server "thread-per-connection server" "$httpd" --mode threads --port 8080 --root "$www"
bodies "threads server"
sequential "threads server" 200
keepalive "threads server" 50
stop_server "threads server"

start_server "python3 -m http.server" python3 -m http.server 8080 --bind 0.0.0.0 --directory "$www"
bodies "python http.server"
stop_server "python http.server"

# Half-close and reset, both directions.
start_server "tcp_semantics server" python3 -u "$here/tcp_semantics.py" server 8080
out=$(cx timeout 30 python3 "$here/tcp_semantics.py" client 198.18.0.1 8080)
check "client side: half-close and reset behave (${out//$'\n'/; })" test $? = 0
sleep 0.5
for want in "server H ok 300000" "server S ok" "server L ok" "server C ok"; do
	check "server side: $want" grep -qx "$want" "$srvlog"
done
stop_server "tcp_semantics server"

# A forked child's listener outlives its parent.
: >"$srvlog"
(kb python3 -u "$here/fork_server.py" 8080 >"$srvlog" 2>&1)
wait_for 10 grep -q '^ready' "$srvlog"
child=$(sed -n 's/^parent [0-9]* exits, child \([0-9]*\) serves/\1/p' "$srvlog")
srv=$child
out=$(cx curl -sS --http0.9 --max-time 5 http://198.18.0.1:8080/ 2>&1 | head -c 100)
check_eq "the forked child serves after its parent exited" "$out" "child $child"
stop_server "forked server"

# exec: the new image is preloaded too; an inherited accelerated listener is
# just its kernel socket there (the old image's context is gone with its
# control connection, so kbstackd refuses the port instead of black-holing).
: >"$srvlog"
kb python3 -u "$here/exec_server.py" 8080 >"$srvlog" 2>&1 &
srv=$!
wait_for 10 grep -q '^ready' "$srvlog"
check "after exec the program is still preloaded" grep -qx preloaded "$srvlog"
check "after exec the inherited listener is non-blocking (documented)" grep -qx nonblocking "$srvlog"
out=$(ip netns exec "$KB_TB_SNS" curl -sS --http0.9 --max-time 5 http://127.0.0.1:8080/ 2>&1)
check_eq "after exec the inherited listener accepts on the kernel path" "$out" exec
cx curl -s --max-time 5 -o /dev/null http://198.18.0.1:8080/
check_eq "after exec kbstackd refuses the port at once (curl exit 7)" "$?" 7
stop_server "exec'd server"

# A listener the program closes itself frees its port in kbstackd: the same
# program listens again on it, through kbstackd, and serves.
relisten='import socket
for i in range(2):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8083)); s.listen(8)
    if i == 0:
        s.close(); continue
    print("ready", flush=True)
    c, _ = s.accept(); c.recv(100); c.sendall(b"again\n"); c.close()'
: >"$srvlog"
ACCEL=listen:8083 kb python3 -c "$relisten" >"$srvlog" 2>&1 &
srv=$!
wait_for 10 grep -q ready "$srvlog"
check "listen, close, listen again: accelerated the second time" \
	sh -c "! grep -q 'cannot accelerate' '$srvlog'"
out=$(cx curl -s --http0.9 --max-time 5 http://198.18.0.1:8083/)
check_eq "... and it serves through kbstackd" "$out" again
reap 10 "$srv"
srv=

# A port another application already serves on kbstackd: the second
# listener is refused there, stays on the kernel, says so, and is counted.
listener='import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("0.0.0.0", 8081)); s.listen(8)
print("ready", flush=True); time.sleep(60)'
: >"$srvlog"
ACCEL=listen:8081 kb python3 -c "$listener" >"$srvlog" 2>&1 &
l1=$!
wait_for 10 grep -q ready "$srvlog"
: >"$srvlog.2"
ACCEL=listen:8081 kb python3 -c "$listener" >"$srvlog.2" 2>&1 &
l2=$!
wait_for 10 grep -q ready "$srvlog.2"
check "second listener on a port kbstackd already serves: refused, kernel path, said" 	grep -q "listen: cannot accelerate (Address already in use); using the kernel" "$srvlog.2"
check "kbstat counts it (fallback_refused)" 	wait_for 3 sh -c "KB_STACK=$stack $kbstat | grep -qE '^fallback_refused +1\$'"
kill "$l1" "$l2"; wait "$l1" "$l2" 2>/dev/null
rm -f "$srvlog.2"

# An IPv6-only listener and an IPv4 one on the same port (nginx's
# `listen [::]:80 ipv6only=on; listen 80;`): the IPv4 socket is kb's, the
# IPv6-only one stays the kernel's (no IPv4 can reach it), nothing refused.
dual='import select, socket
s6 = socket.socket(socket.AF_INET6)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind(("::", 8084)); s6.listen(8)
s4 = socket.socket()
s4.bind(("0.0.0.0", 8084)); s4.listen(8)
print("ready", flush=True)
r, _, _ = select.select([s6, s4], [], [], 20)
c, _ = r[0].accept(); c.recv(100)
c.sendall(b"v4\n" if r[0] is s4 else b"v6\n"); c.close()'
: >"$srvlog"
ACCEL=listen:8084 kb python3 -c "$dual" >"$srvlog" 2>&1 &
srv=$!
wait_for 10 grep -q ready "$srvlog"
out=$(cx curl -s --http0.9 --max-time 5 http://198.18.0.1:8084/)
check_eq "IPv6-only and IPv4 listeners on one port: kbstackd's connection reaches the IPv4 one" "$out" v4
check "... and neither was refused" sh -c "! grep -q 'cannot accelerate' '$srvlog'"
reap 25 "$srv"
srv=

# A client under the preload connects out through kbstackd. The server
# namespace's kernel has no address: only kbstackd can reach 198.18.0.2.
ip netns exec "$KB_TB_CNS" python3 -m http.server 9000 --bind 198.18.0.2 --directory "$www" \
	>/dev/null 2>&1 &
csrv=$!
wait_for 10 ip netns exec "$KB_TB_CNS" curl -s -o /dev/null http://198.18.0.2:9000/f0
got=$(ACCEL=connect:198.18.0.2/32 kb curl -sS --max-time 30 http://198.18.0.2:9000/f16777216 | sha256sum)
check_eq "curl under the preload fetches 16 MiB through kbstackd" "$got" "$(sha256sum <"$www/f16777216")"
ip netns exec "$KB_TB_SNS" curl -s --max-time 2 -o /dev/null http://198.18.0.2:9000/f0
check "(the kernel path cannot reach 198.18.0.2 from there)" test $? != 0
kill "$csrv"; wait "$csrv" 2>/dev/null
finish
