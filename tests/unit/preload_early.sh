#!/usr/bin/env bash
# preload_early.sh — libkbpreload.so works from the first constructor: a
# library that uses sockets and files in its constructor (kbtest_early_lib,
# as libcap-ng read()s in its own) runs under the preload whether its
# constructor runs before kb's or after, with KB_ACCEL unset and with
# KB_ACCEL matching every socket but no kbstackd. The library calls every
# interposed symbol from its constructor, a signal handler, a thread that
# runs while kb's constructor does, and main; kbtest_early exits 0 only if
# each call did what Linux does. Loopback only, no kbstackd, no root.
#
# Three arrangements: the program linked against the library (the library's
# constructor runs first: it is a dependency, kb is not), and the library
# also preloaded after kb or before it in LD_PRELOAD (ld.so runs preloaded
# objects' constructors last-listed first). Which constructor ran first is
# read from stderr: kb says "KB_ACCEL is not set" in its own; the test
# requires both orders to have occurred. A fourth preloads
# kbtest_early_hook, whose dlsym calls write/read/dup/close: kb's lookups of
# libc's functions re-enter kb's symbols from inside dlsym.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/check.sh"
lib=${KBPRELOAD:?KBPRELOAD: path of libkbpreload.so}
prog=${KBTEST_EARLY:?KBTEST_EARLY: path of kbtest_early}
early=${KBTEST_EARLY_LIB:?KBTEST_EARLY_LIB: path of libkbtest_early_lib.so}
hook=${KBTEST_EARLY_HOOK:?KBTEST_EARLY_HOOK: path of libkbtest_early_hook.so}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
accel=(KB_ACCEL='listen:*;connect:127.0.0.0/8' KB_STACK="$dir/none.sock")
lib_first=0 kb_first=0

# run NAME PRELOAD ENV...: kbtest_early under LD_PRELOAD=PRELOAD, 3 times
# (the constructor's thread races kb's start-up differently each time)
run() {
	local name=$1 preload=$2 i rc err=$dir/err; shift 2
	for i in 1 2 3; do
		timeout 20 env -i PATH="$PATH" LD_PRELOAD="$preload" "$@" "$prog" 2>"$err"
		rc=$?
		[ $rc = 0 ] || break
	done
	if ! check "$name: exits 0 (rc $rc, round $i)" test $rc = 0; then
		sed 's/^/    /' "$err"
		return
	fi
	check "$name: the library's constructor made every call" \
		grep -qx 'kbtest_early: constructor: ok' "$err"
	check "$name: main made every call" grep -qx 'kbtest_early: main: ok' "$err"
	if [ $# = 0 ]; then
		# KB_ACCEL unset: whose constructor ran first
		local order
		order=$(grep -o -m1 -e 'kbtest_early: constructor$' -e 'KB_ACCEL is not set' "$err")
		case $order in
		kbtest_early*) lib_first=$((lib_first + 1)); ok "$name: the library's constructor ran before kb's" ;;
		KB_ACCEL*)     kb_first=$((kb_first + 1)); ok "$name: kb's constructor ran before the library's" ;;
		*)             bad "$name: no constructor line on stderr" ;;
		esac
	else
		# the first socket KB_ACCEL matches after kb's start-up tries to attach
		check_eq "$name: one line says no kbstackd is reachable" \
			"$(grep -c "no kbstackd reachable at KB_STACK=$dir/none.sock" "$err")" 1
	fi
}

run "linked, KB_ACCEL unset" "$lib"
run "linked, KB_ACCEL set, no kbstackd" "$lib" "${accel[@]}"
run "LD_PRELOAD=kb:library, KB_ACCEL unset" "$lib:$early"
run "LD_PRELOAD=kb:library, KB_ACCEL set, no kbstackd" "$lib:$early" "${accel[@]}"
run "LD_PRELOAD=library:kb, KB_ACCEL unset" "$early:$lib"
run "LD_PRELOAD=library:kb, KB_ACCEL set, no kbstackd" "$early:$lib" "${accel[@]}"
run "LD_PRELOAD=kb:dlsym hook, KB_ACCEL unset" "$lib:$hook"
check "dlsym hook: its calls into kb from inside dlsym worked" \
	grep -Eq '^kbtest_early_hook: ([1-9][0-9]*) of \1 calls ok$' "$dir/err"
check "both constructor orders were tested ($lib_first library first, $kb_first kb first)" \
	test $lib_first -gt 0 -a $kb_first -gt 0
finish
