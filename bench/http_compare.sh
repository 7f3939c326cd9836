#!/usr/bin/env bash
# bench/http_compare.sh [ROUNDS] [SECONDS] — the same unmodified HTTP server
# (kbtest_httpd, epoll, 64-byte file, keep-alive) on the kernel path and on
# kb, side by side on the test bed: wrk at 1, 16 and 64 connections, kernel
# and kb alternated within each round; medians over the rounds. Then
# syscalls per request on each path (strace -c -f on the server while wrk
# runs).
#
# Layouts (2 cores):
#   kernel   wrk core 0, server core 1 (the kernel's softirq work runs where
#            the packets land)
#   kb-A     wrk core 0, server core 1, kbstackd core 1 (adaptive: it sleeps
#            when idle and shares the server's core)
#   kb-B     wrk core 0, server core 0, kbstackd core 1 (busy poll)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
secs=${2:-5}
httpd=$top/build/tests/kbtest_httpd
kbstackd=$top/build/stack/kbstackd
kbstat=$top/build/stack/kbstat
lib=$top/build/preload/libkbpreload.so
conns=(1 16 64)

eval "$("$top/scripts/testbed" up --kernel-ip)"
stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
www=$(mktemp -d)
head -c 64 /dev/urandom >"$www/f64"
chmod -R a+rX "$www"
spid= hpid=
stop() {
	[ -n "$hpid" ] && { kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null || true; }
	[ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; }
	hpid= spid=
}
cleanup() { stop; "$top/scripts/testbed" down "$KB_TB_ID" 2>/dev/null; rm -rf "$www"; }
trap cleanup EXIT

sx() { ip netns exec "$KB_TB_SNS" "$@"; }
# for `sxe CMD &`: exec, so $! is the command's own pid
sxe() { exec ip netns exec "$KB_TB_SNS" "$@"; }
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
wait_port() { for _ in $(seq 100); do cx curl -s -o /dev/null "http://$1:8080/f64" && return 0; sleep 0.1; done; return 1; }

start() { # LAYOUT
	case $1 in
	kernel)
		sxe taskset -c 1 "$httpd" --port 8080 --root "$www" >/dev/null 2>&1 &
		hpid=$!
		wait_port 198.18.0.3 ;;
	kb-A|kb-B)
		local poll=adaptive core=1
		[ "$1" = kb-B ] && poll=busy core=0
		sxe env KB_STACK="$stack" "$kbstackd" --dev="net_af_xdp0,iface=$KB_TB_SIF" \
			--ip=198.18.0.1/24 --core=1 --poll=$poll >/dev/null 2>&1 &
		spid=$!
		for _ in $(seq 100); do
			KB_STACK=$stack "$kbstat" 2>/dev/null | grep -q ' state running ' && break
			sleep 0.1
		done
		sxe env KB_STACK="$stack" KB_ACCEL=listen:8080 LD_PRELOAD="$lib" \
			taskset -c $core "$httpd" --port 8080 --root "$www" >/dev/null 2>&1 &
		hpid=$!
		wait_port 198.18.0.1 ;;
	esac
}
addr_of() { [ "$1" = kernel ] && echo 198.18.0.3 || echo 198.18.0.1; }

# wrk → "req/s p50_us p90_us p99_us"
run_wrk() { # LAYOUT CONNS
	cx wrk -t1 -c"$2" -d"${secs}s" --latency "http://$(addr_of "$1"):8080/f64" |
	awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1e6 }
	     /^ +50%/ { p50 = us($2) } /^ +90%/ { p90 = us($2) } /^ +99%/ { p99 = us($2) }
	     /Requests\/sec/ { rps = $2 }
	     END { printf "%.0f %.1f %.1f %.1f\n", rps, p50, p90, p99 }'
}

declare -A res
layouts=(kernel kb-A kb-B)
for r in $(seq "$rounds"); do
	for c in "${conns[@]}"; do
		for l in "${layouts[@]}"; do
			echo "round $r/$rounds, $c connections: $l" >&2
			start "$l"
			cx wrk -t1 -c"$c" -d1s "http://$(addr_of "$l"):8080/f64" >/dev/null # warm-up
			res[$l,$c,$r]=$(run_wrk "$l" "$c")
			stop
		done
	done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
med() { for r in $(seq "$rounds"); do echo "${res[$1,$2,$r]}" | cut -d' ' -f"$3"; done | median; }

# Syscalls per request: strace -c -f on the server while wrk (16
# connections, 3 s) runs; calls divided by the requests wrk completed.
syscalls() { # LAYOUT
	local out reqs
	out=$(mktemp)
	start "$1"
	sxe strace -q -c -f -p "$hpid" -o "$out" &
	local st=$!
	sleep 1
	reqs=$(cx wrk -t1 -c16 -d3s "http://$(addr_of "$1"):8080/f64" | awk '/requests in/ { print $1 }')
	kill -INT "$st"; wait "$st" 2>/dev/null || true
	stop
	# lines: % time, seconds, usecs/call, calls, [errors,] syscall. The
	# server's own file work (open, fstat, pread/sendfile's source, close)
	# is the same on both paths; the network part is what kb removes.
	awk -v n="$reqs" '
		$NF == "total" { total = $4; next }
		$NF ~ /^(read|readv|write|writev|sendfile|sendfile64|recvfrom|recvmsg|sendto|sendmsg|epoll_wait|epoll_pwait|epoll_pwait2|poll|ppoll|select|pselect6|accept|accept4|futex)$/ { net += $4 }
		END { printf "%.3f in all, %.3f network (%d requests)", total / n, net / n, n }' "$out"
	rm -f "$out"
}

out=$(
	echo "kb vs kernel — kbtest_httpd (epoll, keep-alive), 64-byte file, wrk -t1 ${secs}s"
	echo "$rounds rounds, kernel and kb alternated; medians. Layouts: kernel = wrk core 0, server core 1;"
	echo "kb-A = wrk core 0, server + kbstackd (adaptive) core 1; kb-B = wrk + server core 0, kbstackd (busy) core 1"
	echo
	printf '%-8s %5s %10s %9s %9s %9s %8s\n' layout conns "req/s" "p50 us" "p90 us" "p99 us" "vs kern"
	for c in "${conns[@]}"; do
		k=$(med kernel "$c" 1)
		for l in "${layouts[@]}"; do
			printf '%-8s %5s %10s %9s %9s %9s %8s\n' "$l" "$c" "$(med "$l" "$c" 1)" \
				"$(med "$l" "$c" 2)" "$(med "$l" "$c" 3)" "$(med "$l" "$c" 4)" \
				"$(awk -v a="$(med "$l" "$c" 1)" -v k="$k" 'BEGIN { printf "%.2fx", a / k }')"
		done
	done
	echo
	echo "server syscalls per request (strace -c -f during wrk -c16 -d3s):"
	for l in kernel kb-A kb-B; do
		echo "  $l: $(syscalls "$l")"
	done
)
mkdir -p "$top/bench/results"
printf '%s\n' "$out" | tee "$top/bench/results/http_compare-$(date +%Y%m%d-%H%M%S).txt"
