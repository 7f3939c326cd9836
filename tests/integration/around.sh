#!/usr/bin/env bash
# around.sh SCENARIO — servers that reach their accelerated sockets around
# the usual calls, under LD_PRELOAD=libkbpreload.so on the test bed
# (tests/servers/kbtest_around.c), with kernel clients in the client
# namespace:
#   spawn       children that ran no fork handler — vfork() closing
#               everything (close, close_range), vfork() dup2()ing over and
#               from the connection, _Fork() closing, posix_spawn() with
#               file actions — while the server holds a live connection:
#               the connection still answers, kbstackd still holds both
#               sockets, a new connection is served
#   subprocess  the same from Python: subprocess.run(close_fds=True)
#               (CPython 3.11: vfork, then close_range in the child), also
#               with the connection as the child's stdin
#   syscall     50 connections read, answered and closed with syscall()
#               (SYS_read, SYS_write, SYS_close: libuv's way); the file
#               opened next gets the connection's fd number and reads back
#               its own bytes; with the files still open, kbstackd holds no
#               connection
#   pass        a master sends an accepted connection to a worker with
#               SCM_RIGHTS: refused (EOPNOTSUPP) each time, said once,
#               counted (kbstat fd_pass_refused); the master serves the
#               connection itself; the listener it sends goes, and the
#               worker accepts on it (kernel path)
# Layout: kbstackd on core 1; servers and clients on core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/serve.sh"
need_root
prog=${KBTEST_AROUND:-$src/build/tests/kbtest_around}
port=8095

tmp=$(mktemp -d)
test_cleanup() {
	serve_cleanup
	rm -rf "$tmp"
}
bed_up

# serve ARGS...: kbtest_around ARGS (serve_cmd, serve.sh).
serve() { serve_cmd "$prog" "$@"; }
srv_fail() { bad "$1"; sed 's/^/    /' "$srvlog"; }

# converse PORT STEP...: one connection to 198.18.0.1:PORT; a STEP sends
# itself as a line and prints the answer line ("eof", or the error's
# name), except wait:PATH, which waits (20 s at most) for PATH to exist.
converse='import os, socket, sys, time
s = socket.create_connection(("198.18.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
for step in sys.argv[2:]:
    if step.startswith("wait:"):
        t = time.monotonic() + 20
        while not os.path.exists(step[5:]) and time.monotonic() < t:
            time.sleep(0.05)
        continue
    try:
        s.sendall(step.encode() + b"\n")
        print(f.readline().decode().strip() or "eof", flush=True)
    except OSError as e:
        print(type(e).__name__, flush=True)'

# N sequential connections, each sends "req I" and must get it back.
# Prints the number answered.
echoes='import socket, sys
ok = 0
for i in range(int(sys.argv[2])):
    try:
        s = socket.create_connection(("198.18.0.1", int(sys.argv[1])), timeout=3)
        s.sendall(b"req %d\n" % i)
        ok += s.makefile("rb").readline() == b"req %d\n" % i
        s.close()
    except OSError:
        pass
print(ok)'

# hold_check WHAT: while the server holds its listener and one connection,
# kbstackd holds both (nothing a child did closed them). kbstackd samples
# its socket count every 128 ms: one taken after the children.
hold_check() {
	sleep 0.3
	check "$1: kbstackd still holds the listener and the connection (sockets 2)" \
		wait_for 5 kbstat_is "$stack" sockets 2
}

sc_spawn() {
	local out go=$tmp/spawn.go
	serve spawn "$port"
	ready || { srv_fail "kbtest_around spawn did not start"; return; }
	cx python3 -c "$converse" "$port" one "wait:$go" two >"$tmp/spawn.out" 2>&1 &
	pids+=("$!")
	if ready "children done"; then
		ok "vfork, _Fork and posix_spawn children ran and exited 0"
	else
		srv_fail "the children did not all exit 0"
	fi
	hold_check "after the children"
	touch "$go"
	wait_for 15 sh -c "[ \$(wc -l <'$tmp/spawn.out') -ge 2 ]"
	check_eq "the connection answers before the children" "$(sed -n 1p "$tmp/spawn.out")" before
	check_eq "... and after them (the children closed and dup2()ed over it)" \
		"$(sed -n 2p "$tmp/spawn.out")" after
	out=$(cx python3 -c "$converse" "$port" three)
	check_eq "the listener still serves a new connection" "$out" second
	check "the server closed everything" ready done
	check "kbstackd released both sockets (no slot leaked)" \
		wait_for 5 kbstat_is "$stack" sockets 0
	stop "$srv"
	check_stack_empty "spawn server killed"
}

# A Python server holding a live accelerated connection that runs
# subprocesses as CPython does by default (close_fds=True).
pysub='import socket, subprocess, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1])))
l.listen(8)
print("ready", flush=True)
c, _ = l.accept()
for line in c.makefile("rb"):
    line = line.strip()
    if line == b"spawn":
        for i in range(3):
            subprocess.run(["true"], close_fds=True, check=True)
        subprocess.run(["true"], stdin=c.fileno(), close_fds=True, check=True)
        print("spawned", flush=True)
        line = b"spawned"
    c.sendall(line + b"\n")'

sc_subprocess() {
	local go=$tmp/sub.go
	serve_cmd python3 -c "$pysub" "$port"
	ready || { srv_fail "the Python server did not start"; return; }
	cx python3 -c "$converse" "$port" spawn "wait:$go" hello >"$tmp/sub.out" 2>&1 &
	pids+=("$!")
	ready spawned || srv_fail "the Python server did not run its subprocesses"
	hold_check "after subprocess.run(close_fds=True)"
	touch "$go"
	wait_for 15 sh -c "[ \$(wc -l <'$tmp/sub.out') -ge 2 ]"
	check_eq "subprocess.run(close_fds=True) x3, and with the connection as stdin: answered" \
		"$(sed -n 1p "$tmp/sub.out")" spawned
	check_eq "... and the connection still works after them" "$(sed -n 2p "$tmp/sub.out")" hello
	stop "$srv"
	check_stack_empty "Python server killed"
}

sc_syscall() {
	local n=50 out good bads
	printf 'kb: the bytes of the file, not of a socket\n' >"$tmp/file"
	serve syscall "$port" "$n" "$tmp/file"
	ready || { srv_fail "kbtest_around syscall did not start"; return; }
	out=$(cx timeout 60 python3 -c "$echoes" "$port" "$n")
	check_eq "requests read and answered with syscall(SYS_read/SYS_write)" "$out/$n" "$n/$n"
	ready done || srv_fail "the server did not finish"
	good=$(grep -c '^file ok' "$srvlog")
	check_eq "after syscall(SYS_close, fd), a file opened on the same fd number reads its own bytes" \
		"$good/$n" "$n/$n"
	bads=$(grep -m3 '^file bad' "$srvlog")
	[ -z "$bads" ] || sed 's/^/    /' <<<"$bads"
	sleep 0.3 # a sample of kbstackd's taken after the last close
	check "kbstackd released every connection closed with syscall(), the files still open (sockets 1: the listener)" \
		wait_for 5 kbstat_is "$stack" sockets 1
	stop "$srv"
	check_stack_empty "syscall server killed"
}

sc_pass() {
	local out w before
	before=$(kbstat_of "$stack" fd_pass_refused)
	num "$before" || before=0
	serve pass "$port"
	ready || { srv_fail "kbtest_around pass did not start"; return; }
	out=$(cx python3 -c "$converse" "$port" hello)
	check_eq "the master serves the connection it could not pass" "$out" master
	check_eq "sendmsg(SCM_RIGHTS) of an accelerated connection fails, both times" \
		"$(grep -c '^refused EOPNOTSUPP$' "$srvlog")" 2
	check "... nothing was sent" sh -c "! grep -q '^sent' '$srvlog'"
	check_eq "... said once (KB_LOG 0), naming the fd and what to do instead" \
		"$(grep -c 'is a connection kbstackd serves.*Pass the listening socket' "$srvlog")" 1
	check "... and counted (kbstat fd_pass_refused up by 2)" \
		wait_for 5 at_least "$stack" fd_pass_refused $((before + 2))
	ready "passed listener" || srv_fail "the master could not pass its listener"
	check "passing the listener: a notice that the worker serves it through the kernel" \
		grep -q 'a listener kbstackd serves, goes to another process' "$srvlog"
	out=$(ip netns exec "$KB_TB_SNS" python3 -c "${converse/198.18.0.1/127.0.0.1}" "$port" hi)
	check "the worker accepts on the listener it was given (kernel path): '$out'" \
		grep -q "^worker [0-9]*$" <<<"$out"
	stop "$srv"
	check_stack_empty "pass server killed"
}

[ $# -gt 0 ] || set -- spawn subprocess syscall pass
for sc in "$@"; do
	"sc_$sc"
done
finish
