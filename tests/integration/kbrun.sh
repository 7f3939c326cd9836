#!/usr/bin/env bash
# kbrun.sh — the launcher: runs a server on kb from flags or a config file,
# says what it accelerates through which kbstackd, refuses to start when
# kbstackd does not answer (exit 1) or a setting is bad (exit 2).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root

tmp=$(mktemp -d)
srv=
test_cleanup() {
	[ -n "$srv" ] && { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }
	rm -rf "$tmp"
}
bed_up
echo hello >"$tmp/f"
sx() { exec ip netns exec "$KB_TB_SNS" "$@"; }

printf '# kb settings\nKB_ACCEL=listen:8080\nKB_STACK=%s\n' "$stack" >"$tmp/kb.conf"
sx "$kbrun" -c "$tmp/kb.conf" "$httpd" --port 8080 --root "$tmp" >"$tmp/out" 2>&1 &
srv=$!
wait_for 10 grep -q '^ready' "$tmp/out"
check "kbrun says what it accelerates and through which kbstackd" \
	grep -q "kbrun: $httpd: accelerating listen:8080 through kbstackd (198.18.0.1/24 on net_af_xdp0" "$tmp/out"
check_eq "the server runs under kbrun's pid (exec)" "$(tr '\0' ' ' </proc/$srv/cmdline | cut -d' ' -f1)" "$httpd"
out=$(ip netns exec "$KB_TB_CNS" curl -s --max-time 5 http://198.18.0.1:8080/f)
check_eq "and is served through kbstackd" "$out" hello
kill "$srv"; wait "$srv" 2>/dev/null; srv=

(sx "$kbrun" -a listen:8080 -s /run/kb/none.sock true) 2>"$tmp/err"
check_eq "kbstackd not answering: exit 1" "$?" 1
check "... with a line saying so" grep -q "kbstackd does not answer at KB_STACK=/run/kb/none.sock" "$tmp/err"
(sx "$kbrun" -a listen:0 -s "$stack" true) 2>"$tmp/err"
check_eq "bad --accel: exit 2" "$?" 2
check "... naming KB_ACCEL" grep -q "KB_ACCEL: bad listen port" "$tmp/err"
printf 'KB_BOGUS=1\n' >"$tmp/bad.conf"
(sx "$kbrun" -c "$tmp/bad.conf" true) 2>"$tmp/err"
check_eq "bad config line: exit 2" "$?" 2
check "... naming the file and line" grep -q "bad.conf:1: expected" "$tmp/err"
finish
