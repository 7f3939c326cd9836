#!/usr/bin/env bash
# preload_programs.sh PROGRAM... — every program the build makes for the
# tests (and kbstackd, kbstat, kbrun, kbpeer_httpd) starts and exits under
# LD_PRELOAD=libkbpreload.so with KB_ACCEL unset exactly as without it:
# the same exit status, no signal, and from kb its "KB_ACCEL is not set"
# notice (so it was loaded) and nothing else. The unit tests run whole (a few seconds); servers and
# tools with --help or another call that needs no network and no root.
# CMake passes the programs (every executable target), so a new one fails
# here until it is given a way to run below.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/check.sh"
lib=${KBPRELOAD:?KBPRELOAD: path of libkbpreload.so}
[ $# -gt 0 ] || { bad "no programs given"; finish; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# args_of NAME: the arguments NAME is run with here (status 1: unknown)
args_of() {
	case $1 in
	test_*)           args=() ;;                     # cmocka, the whole test
	pipe_pingpong)    args=(2000) ;;
	kbtest_early)     args=() ;;                     # exits 0 when all went well
	kbtest_httpd)     args=(--help) ;;
	kbtest_semantics) args=() ;;                     # usage, status 2
	kbtest_hostile)   args=() ;;                     # usage, status 2
	kbtest_attach)    args=() ;;                     # usage, status 2
	kbtest_fork)      args=() ;;                     # usage, status 2
	kbtest_around)    args=() ;;                     # usage, status 2
	kbtest_restart)   args=() ;;                     # usage, status 2
	kbtest_threads)   args=() ;;                     # usage, status 2
	kbstackd|kbstackd_shortmsl|kbstackd_fewsegs) args=(--help) ;;
	kbpeer_httpd)     args=(--help) ;;
	lwip_demux)       args=(64) ;;                   # a few ms with 64 PCBs
	kbstat)           args=(-s "$dir/none.sock") ;;  # no kbstackd: status 1
	kbrun)            args=(--help) ;;
	*)                return 1 ;;
	esac
}

# run_one OUT PROGRAM [PRELOAD]: status of PROGRAM, stderr in OUT
run_one() {
	local out=$1 prog=$2
	timeout 30 env -u KB_ACCEL -u KB_LOG ${3:+LD_PRELOAD=$3} "$prog" "${args[@]}" \
		>/dev/null 2>"$out"
}

for prog in "$@"; do
	name=$(basename "$prog")
	if ! args_of "$name"; then
		bad "$name: no way to run it is known (add one to preload_programs.sh)"
		continue
	fi
	what="$name${args[*]:+ ${args[*]}}"
	run_one "$dir/plain" "$prog"
	want=$?
	run_one "$dir/kb" "$prog" "$lib"
	got=$?
	if [ $got != $want ]; then
		bad "$what: status $got under the preload, $want without"
		sed 's/^/    /' "$dir/kb" | tail -5
		continue
	fi
	check "$what: status $got, as without the preload" test $got -lt 128
	other=$(grep '^kb\[' "$dir/kb" | grep -v 'KB_ACCEL is not set: nothing is accelerated')
	check "$name: kb was loaded and said only its KB_ACCEL notice" \
		sh -c 'grep -q "KB_ACCEL is not set" "$1" && [ -z "$2" ]' - "$dir/kb" "$other" ||
		printf '    %s\n' "$other"
done
finish
