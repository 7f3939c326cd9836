# tests/lib/check.sh — assertions for kb's shell tests. Source it; every
# check prints one line; `finish` prints "N passed, N failed" and sets the
# exit status. A check that cannot run counts as failed, never skipped.

kb_pass=0
kb_fail=0

ok()   { kb_pass=$((kb_pass + 1)); printf 'ok   - %s\n' "$*"; }
bad()  { kb_fail=$((kb_fail + 1)); printf 'FAIL - %s\n' "$*"; }

# check DESCRIPTION COMMAND... : passes when COMMAND exits 0
check() {
	local what=$1; shift
	if "$@"; then ok "$what"; else bad "$what"; return 1; fi
}

# check_eq DESCRIPTION GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: got '$2', want '$3'"; return 1; fi
}

need_root() {
	if [ "$(id -u)" != 0 ]; then
		bad "must run as root (namespaces, XDP, hugepages)"
		finish
	fi
}

finish() {
	printf '%d passed, %d failed\n' "$kb_pass" "$kb_fail"
	[ "$kb_fail" = 0 ] && [ "$kb_pass" -gt 0 ]
	exit $?
}

# wait_for SECONDS COMMAND... : poll every 0.1 s until COMMAND succeeds
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# reap SECONDS PID: wait for a child that should exit by itself; after
# SECONDS kill it (a test must fail, never hang). 1 if it had to be killed.
reap() {
	local rc=0
	wait_for "$1" sh -c "! kill -0 $2 2>/dev/null" || { kill -KILL "$2" 2>/dev/null; rc=1; }
	wait "$2" 2>/dev/null
	return $rc
}
