#!/usr/bin/env bash
# preload_fallback.sh — non-acceleration is loud, never silent, never fatal
# unless asked: a server under libkbpreload.so with no kbstackd reachable
# serves on the kernel path and says so in exactly one line; KB_STRICT=1
# makes listen() fail instead; a bad KB_ACCEL is named in one line; with
# KB_ACCEL unset nothing is accelerated and one notice says so. Loopback
# only, no kbstackd.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"

dir=$(mktemp -d)
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
head -c 100000 /dev/urandom >"$dir/body"
port=$((20000 + RANDOM % 20000))

# run_server ERRFILE ENV...: start kbtest_httpd under the preload
run_server() {
	local err=$1; shift
	env -i PATH="$PATH" LD_PRELOAD="$lib" KB_STACK="$dir/none.sock" "$@" \
		"$httpd" --port "$port" --root "$dir" >/dev/null 2>"$err" &
	srv=$!
}
stop_server() { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; srv=; }
fetch_ok() {
	wait_for 5 curl -s -o /dev/null "http://127.0.0.1:$port/body" &&
	[ "$(curl -s "http://127.0.0.1:$port/body" | sha256sum)" = "$(sha256sum <"$dir/body")" ]
}

# 1. No kbstackd: kernel path, one line.
run_server "$dir/err1" KB_ACCEL="listen:$port"
check "no kbstackd: the server serves on the kernel path" fetch_ok
for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$port/body"; done
stop_server
check_eq "no kbstackd: exactly one line on stderr" "$(grep -c . "$dir/err1")" 1
check "no kbstackd: the line says so and names KB_STACK" \
	grep -q "no kbstackd reachable at KB_STACK=$dir/none.sock" "$dir/err1"

# 2. KB_STRICT=1: listen() fails, the server exits.
run_server "$dir/err2" KB_ACCEL="listen:$port" KB_STRICT=1
wait "$srv"
rc=$?
srv=
check "strict: the server could not listen (exit $rc)" test "$rc" != 0
check "strict: listen failed with ENETDOWN" grep -q "Network is down" "$dir/err2"

# 3. A bad KB_ACCEL is named, nothing accelerated; strict makes it fatal.
run_server "$dir/err3" KB_ACCEL="listen:0"
check "bad KB_ACCEL: the server still serves (kernel)" fetch_ok
stop_server
check "bad KB_ACCEL: one line names it and the accepted form" \
	sh -c "grep -c . '$dir/err3' | grep -qx 1 && grep -q 'KB_ACCEL: bad listen port: expected' '$dir/err3'"
env LD_PRELOAD="$lib" KB_ACCEL="listen:0" KB_STRICT=1 true 2>/dev/null
check_eq "bad KB_ACCEL with KB_STRICT=1: exit status 2" "$?" 2

# 4. KB_ACCEL unset: one notice, kernel path.
run_server "$dir/err4"
check "KB_ACCEL unset: the server serves (kernel)" fetch_ok
stop_server
check "KB_ACCEL unset: one notice says nothing is accelerated" \
	sh -c "grep -c . '$dir/err4' | grep -qx 1 && grep -q 'KB_ACCEL is not set' '$dir/err4'"
env LD_PRELOAD="$lib" KB_ACCEL= KB_LOG=0 true 2>"$dir/err5"
check_eq "KB_LOG=0 silences the notice" "$(grep -c . "$dir/err5")" 0
finish
