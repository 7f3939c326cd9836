#!/usr/bin/env bash
# preload_fallback.sh — non-acceleration is loud, never silent, never fatal
# unless asked: a server under libkbpreload.so with no kbstackd reachable
# serves on the kernel path and says so in exactly one line; KB_STRICT=1
# makes listen() fail instead; a bad KB_ACCEL is named in one line; with
# KB_ACCEL unset nothing is accelerated and one notice says so; a bad value
# of any other setting is one line, its default used, fatal with
# KB_STRICT=1. Loopback only, no kbstackd.
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

# 5. Any other bad setting: one line naming it, the default used; with
#    KB_STRICT=1, exit status 2 (the line then says nothing of a default).
# bad_setting NAME=VALUE EXPECT: EXPECT starts the one line
bad_setting() {
	local rc
	env -i LD_PRELOAD="$lib" KB_ACCEL="listen:$port" "$1" true 2>"$dir/err6"
	rc=$?
	check "$1: runs (status $rc), one line: $(cat "$dir/err6")" \
		sh -c "[ $rc = 0 ] && grep -c . '$dir/err6' | grep -qx 1 &&
		       grep -q '^kb\[[0-9]*\]: $2' '$dir/err6'"
	env -i LD_PRELOAD="$lib" KB_ACCEL="listen:$port" "$1" KB_STRICT=1 true 2>"$dir/err6"
	rc=$?
	check "$1 with KB_STRICT=1: exit status 2 (got $rc), one line" \
		sh -c "[ $rc = 2 ] && grep -c . '$dir/err6' | grep -qx 1"
}
bad_setting KB_LOG=abc    "KB_LOG=abc: expected 0 (errors), 1 (notices) or 2 (debug); using 1"
bad_setting KB_LOG=9      "KB_LOG=9: expected 0"
bad_setting KB_SPIN_US=x  "KB_SPIN_US=x: expected microseconds, 0 to 1000000; using 0"
bad_setting KB_STACK=rel  "KB_STACK=rel: expected an absolute path of at most 99 bytes; nothing is accelerated"
bad_setting "KB_ACCEL=;"  "KB_ACCEL: empty rule: expected"
env -i LD_PRELOAD="$lib" KB_ACCEL="listen:$port" KB_STRICT=no true 2>"$dir/err7"
check_eq "KB_STRICT=no: runs" "$?" 0
check "KB_STRICT=no: one line, strict mode off" \
	sh -c "grep -c . '$dir/err7' | grep -qx 1 && grep -q 'KB_STRICT=no: expected 0 or 1; using 0' '$dir/err7'"
# not strict: listen() on a matching socket falls back instead of failing
run_server "$dir/err8" KB_ACCEL="listen:$port" KB_STRICT=no
check "KB_STRICT=no: the server serves (kernel)" fetch_ok
stop_server
finish
