#!/usr/bin/env bash
# kbrun.sh — the launcher: runs a server on kb from flags or a config file,
# says what it accelerates through which kbstackd, refuses to start when
# kbstackd does not answer (exit 1) or a setting is bad (exit 2). Every
# setting, from one table first: as a flag, a variable and a config line,
# valid, bad and empty, and a flag over a variable (--no-check: no kbstackd).
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
# case WHAT STATUS EXPECT [NAME=VALUE...] [-- KBRUN_ARGS...]: kbrun with
# that environment (nothing else of KB_*) and those arguments runs `env`
# (status 0: EXPECT is a line of its output, the setting as the command
# sees it) or refuses with STATUS and one line on stderr containing EXPECT.
case_() {
	local what=$1 want=$2 expect=$3 envs=() rc lines; shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	env -i PATH="$PATH" "${envs[@]}" "$kbrun" --no-check "$@" env >"$tmp/out" 2>"$tmp/err"
	rc=$?
	lines=$(grep -c . "$tmp/err")
	if [ "$want" = 0 ]; then
		check "$what: starts, $expect" test $rc = 0 -a "$(grep -cxF -- "$expect" "$tmp/out")" = 1 ||
			sed 's/^/    /' "$tmp/err"
	else
		check "$what: exit $want, one line: $(cat "$tmp/err")" \
			test $rc = "$want" -a "$lines" = 1 -a "$(grep -cF -- "$expect" "$tmp/err")" = 1
	fi
}
a=(-a listen:8080)
printf 'KB_LOG=1\n' >"$tmp/log1.conf"
printf 'KB_LOG=9\n' >"$tmp/log9.conf"
printf 'KB_SPIN_US=abc\n' >"$tmp/spin.conf"
printf 'KB_ACCEL=listen:8081\nKB_STACK=/tmp/c.sock\n' >"$tmp/good.conf"
printf '# kb\nKB_BOGUS=1\n' >"$tmp/bad.conf"
case_ "--accel"             0 KB_ACCEL=listen:8080 -- "${a[@]}"
case_ "--accel bad"         2 "KB_ACCEL: bad listen port: expected" -- -a listen:0
case_ "--accel ';'"         2 "KB_ACCEL: empty rule: expected" -- -a ';'
case_ "--accel 'listen:80;;'" 2 "KB_ACCEL: empty rule: expected" -- -a 'listen:80;;'
case_ "--accel empty"       2 "-a needs a value" -- -a ''
case_ "KB_ACCEL"            0 KB_ACCEL=listen:81 KB_ACCEL=listen:81
case_ "KB_ACCEL bad"        2 "KB_ACCEL: unknown rule: expected" KB_ACCEL=bogus:1
case_ "KB_ACCEL empty"      2 "nothing to accelerate" KB_ACCEL=
case_ "--stack"             0 KB_STACK=/tmp/x.sock -- "${a[@]}" -s /tmp/x.sock
case_ "--stack bad"         2 "-s rel: expected an absolute path" -- "${a[@]}" -s rel
case_ "--stack empty"       2 "--stack needs a value" -- "${a[@]}" --stack ''
case_ "KB_STACK"            0 KB_STACK=/tmp/y.sock KB_STACK=/tmp/y.sock -- "${a[@]}"
case_ "KB_STACK bad"        2 "KB_STACK=/tmp/: expected an absolute path" KB_STACK=/tmp/ -- "${a[@]}"
case_ "KB_STACK empty"      0 KB_STACK=/run/kb/kbstackd.sock KB_STACK= -- "${a[@]}"
case_ "--spin-us"           0 KB_SPIN_US=50 -- "${a[@]}" --spin-us 50
case_ "--spin-us bad"       2 "--spin-us abc: expected microseconds" -- "${a[@]}" --spin-us abc
case_ "--spin-us too big"   2 "--spin-us 1000001: expected microseconds" -- "${a[@]}" --spin-us 1000001
case_ "--spin-us empty"     2 "--spin-us needs a value" -- "${a[@]}" --spin-us ''
case_ "KB_SPIN_US"          0 KB_SPIN_US=7 KB_SPIN_US=7 -- "${a[@]}"
case_ "KB_SPIN_US bad"      2 "KB_SPIN_US=-1: expected microseconds" KB_SPIN_US=-1 -- "${a[@]}"
case_ "KB_SPIN_US empty"    0 KB_SPIN_US= KB_SPIN_US= -- "${a[@]}"
case_ "--log"               0 KB_LOG=2 -- "${a[@]}" --log 2
case_ "--log x"             2 "--log x: expected 0 (errors), 1 (notices) or 2 (debug)" -- "${a[@]}" --log x
case_ "--log 9"             2 "--log 9: expected 0 (errors)" -- "${a[@]}" --log 9
case_ "--log empty"         2 "--log needs a value" -- "${a[@]}" --log ''
case_ "KB_LOG"              0 KB_LOG=0 KB_LOG=0 -- "${a[@]}"
case_ "KB_LOG bad"          2 "KB_LOG=abc: expected 0 (errors)" KB_LOG=abc -- "${a[@]}"
case_ "KB_LOG empty"        0 KB_LOG= KB_LOG= -- "${a[@]}"
case_ "--strict"            0 KB_STRICT=1 -- "${a[@]}" --strict
case_ "KB_STRICT"           0 KB_STRICT=0 KB_STRICT=0 -- "${a[@]}"
case_ "KB_STRICT bad"       2 "KB_STRICT=no: expected 0 or 1" KB_STRICT=no -- "${a[@]}"
case_ "KB_STRICT empty"     0 KB_STRICT= KB_STRICT= -- "${a[@]}"
case_ "--config"            0 KB_STACK=/tmp/c.sock -- -c "$tmp/good.conf"
case_ "--config bad value"  2 "KB_SPIN_US=abc: expected microseconds" -- "${a[@]}" -c "$tmp/spin.conf"
case_ "--config missing"    2 "cannot read it" -- "${a[@]}" -c "$tmp/none.conf"
case_ "--config empty"      2 "--config needs a value" -- "${a[@]}" --config ''
case_ "--config unknown name" 2 "bad.conf:2: expected KB_ACCEL" -- "${a[@]}" -c "$tmp/bad.conf"
case_ "flag over a bad variable: --log 1, KB_LOG=9" 0 KB_LOG=1 KB_LOG=9 -- "${a[@]}" --log 1
case_ "flag over a bad variable: --spin-us 5, KB_SPIN_US=abc" 0 KB_SPIN_US=5 KB_SPIN_US=abc -- "${a[@]}" --spin-us 5
case_ "flag over a bad variable: -s, KB_STACK=rel" 0 KB_STACK=/tmp/z.sock KB_STACK=rel -- "${a[@]}" -s /tmp/z.sock
case_ "flag over a bad variable: -a, KB_ACCEL=';'" 0 KB_ACCEL=listen:8080 "KB_ACCEL=;" -- "${a[@]}"
case_ "flag over a bad variable: --strict, KB_STRICT=no" 0 KB_STRICT=1 KB_STRICT=no -- "${a[@]}" --strict
case_ "config over a bad variable: KB_LOG=1 in the file, KB_LOG=9" 0 KB_LOG=1 KB_LOG=9 -- "${a[@]}" -c "$tmp/log1.conf"
case_ "flag over a bad config line: --log 2, KB_LOG=9 in the file" 0 KB_LOG=2 -- "${a[@]}" -c "$tmp/log9.conf" --log 2

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
finish
