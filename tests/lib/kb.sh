# tests/lib/kb.sh — kbstackd helpers for kb's shell tests (sources check.sh).
# Sets src, kbstackd, kbstat, lib, httpd, kbrun (from KB_SRC, KBSTACKD, KBSTAT,
# KBPRELOAD, KBTEST_HTTPD, KBRUN when CTest gives
# them). kbstackd's pid goes in $pid so a test's cleanup can kill it.

. "$(dirname "${BASH_SOURCE[0]}")/check.sh"
src=${KB_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
kbstackd=${KBSTACKD:-$src/build/stack/kbstackd}
kbstat=${KBSTAT:-$src/build/stack/kbstat}
lib=${KBPRELOAD:-$src/build/preload/libkbpreload.so}
httpd=${KBTEST_HTTPD:-$src/build/tests/kbtest_httpd}
kbrun=${KBRUN:-$src/build/kbrun}
pid=

# kbstat_of STACK NAME: one counter's value
kbstat_of() { KB_STACK=$1 "$kbstat" | awk -v k="$2" '$1 == k { print $2 }'; }
kbstat_mac() { KB_STACK=$1 "$kbstat" | sed -n 's/.* mac \([0-9a-f:]*\) .*/\1/p'; }
# kbstat_is STACK NAME VALUE: that counter has that value now. Sampled
# counters (contexts, sockets) are published every 128 ms: use wait_for.
kbstat_is() { [ "$(kbstat_of "$1" "$2")" = "$3" ]; }

# check_stack_empty WHAT: kbstackd ($stack) ends up holding no socket and no
# context (after the programs of WHAT have gone).
check_stack_empty() {
	check "$1: kbstackd holds no socket for it" wait_for 10 kbstat_is "$stack" sockets 0
	check "$1: ... and no context" wait_for 10 kbstat_is "$stack" contexts 0
}

# sanitizer_clean: kbstackd's log ($log) holds no sanitizer report (a build
# with ASan/UBSan); otherwise print the report and fail.
kb_san_report='^(==[0-9]+==ERROR: AddressSanitizer|.*runtime error: )'
sanitizer_clean() {
	grep -qE "$kb_san_report" "$log" || return 0
	grep -E -A40 "$kb_san_report" "$log" | head -60 | sed 's/^/    /'
	return 1
}

kb_running() { KB_STACK=$1 "$kbstat" 2>/dev/null | grep -q ' state running '; }

# stop_kbstackd: SIGTERM, then SIGKILL after 5 s (cleanup paths)
stop_kbstackd() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_for 5 sh -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
}

# start_kbstackd NS STACK LOG ARGS...: start kbstackd in namespace NS and wait
# until it runs; on failure report its log and finish the test.
start_kbstackd() {
	local ns=$1 stack=$2 log=$3; shift 3
	ip netns exec "$ns" env KB_STACK="$stack" "$kbstackd" "$@" >"$log" 2>&1 &
	pid=$!
	if ! wait_for 30 kb_running "$stack"; then
		bad "kbstackd did not come up ($*):"
		sed 's/^/    /' "$log"
		finish
	fi
	ok "kbstackd running ($*, pid $pid)"
}

# bed_up: a test bed and kbstackd on its server end (af_xdp, core 1). Sets
# KB_TB_*, stack and log; on exit runs the test's own test_cleanup (if it
# defines one), stops kbstackd and removes the bed.
# bed_up [KBSTACKD-FLAGS...]: flags added to kbstackd's own. Options for
# `testbed up` (--impair, --kernel-ip) go in the array bed_opts.
bed_opts=()
bed_up() {
	local tb
	tb=$("$src/scripts/testbed" up "${bed_opts[@]}") || { bad "test bed up"; finish; }
	eval "$tb"
	log=$(mktemp)
	stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
	trap bed_down EXIT
	start_kbstackd "$KB_TB_SNS" "$stack" "$log" --dev="net_af_xdp0,iface=$KB_TB_SIF" \
		--ip=198.18.0.1/24 --core=1 "$@"
}

bed_down() {
	declare -F test_cleanup >/dev/null && test_cleanup
	stop_kbstackd
	"$src/scripts/testbed" down "$KB_TB_ID" 2>/dev/null
	rm -f "$log"
}

# httpd_up ROOT: kbtest_httpd (epoll) under the preload (KB_STRICT=1) in the
# server namespace on core 0, serving ROOT on port 8080 with the hard
# RLIMIT_NOFILE; its pid in hpid, its output in $log.srv. Checks that it
# answers ROOT/f64 within 10 s. httpd_down (from test_cleanup) stops it.
hpid=
httpd_up() { # ROOT [kbtest_httpd options…]
	ip netns exec "$KB_TB_SNS" bash -c "ulimit -n \$(ulimit -Hn) && exec env KB_STACK='$stack' \
		KB_ACCEL=listen:8080 KB_STRICT=1 LD_PRELOAD='$lib' taskset -c 0 '$httpd' --mode epoll \
		--port 8080 --root '$1' ${*:2}" >"$log.srv" 2>&1 &
	hpid=$!
	check "the server answers" wait_for 10 \
		ip netns exec "$KB_TB_CNS" curl -s --max-time 1 -o /dev/null http://198.18.0.1:8080/f64
}
httpd_down() {
	[ -z "$hpid" ] || { kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null; }
	hpid=
}
