#!/usr/bin/env bash
# bench/http_compare.sh [ROUNDS] [SECONDS] [SERVER] — the same unmodified
# HTTP server on the kernel path and on kb, side by side on the test bed:
# wrk at 1, 16 and 64 keep-alive connections, kernel and kb alternated
# within each round; medians over the rounds. Then the server's system
# calls per request on each path (strace -c -f while wrk runs).
#
# SERVER: kbtest (kbtest_httpd: epoll, 64-byte file; the default), apache
# (Debian's Apache httpd, event MPM: 64-byte and 10 KiB files) or flask
# (the test Flask app's template page under gunicorn gthread).
#
# Layouts (2 cores):
#   kernel   wrk core 0, server core 1 (the kernel's softirq work runs where
#            the packets land)
#   kb-A     wrk core 0, server and kbstackd (adaptive) core 1
#   kb-B     wrk and server core 0, kbstackd (busy poll) core 1
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
secs=${2:-5}
server=${3:-kbtest}
httpd=$top/build/tests/kbtest_httpd
kbstackd=$top/build/stack/kbstackd
kbstat=$top/build/stack/kbstat
lib=$top/build/preload/libkbpreload.so
conns=(1 16 64)
layouts=(kernel kb-A kb-B)

eval "$("$top/scripts/testbed" up --kernel-ip)"
stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
www=$(mktemp -d /tmp/kbbench.XXXXXX)
head -c 64 /dev/urandom >"$www/f64"
head -c 10240 /dev/urandom >"$www/f10k"
mkdir -p "$www/run" "$www/static"
chmod -R a+rX "$www"
chown www-data "$www/run"
spid= hpid=

sx() { ip netns exec "$KB_TB_SNS" "$@"; }
# for `sxe CMD &`: exec, so $! is the command's own pid
sxe() { exec ip netns exec "$KB_TB_SNS" "$@"; }
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
addr_of() { [ "$1" = kernel ] && echo 198.18.0.3 || echo 198.18.0.1; }

case $server in
kbtest) paths=(f64) ;;
apache)
	paths=(f64 f10k)
	cat >"$www/apache.conf" <<EOC
ServerRoot /etc/apache2
ServerName kbbench
PidFile $www/run/httpd.pid
Listen 8080
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
TypesConfig /etc/mime.types
User www-data
Group www-data
ErrorLog $www/run/error.log
DocumentRoot $www
<Directory $www>
  Require all granted
</Directory>
KeepAlive On
MaxKeepAliveRequests 0
# Each child has a worker for every wrk connection: with fewer, event MPM
# closes keep-alive connections when its workers are all busy (wrk counts
# read errors, on the kernel path as on kb).
StartServers 2
ThreadsPerChild 64
MaxRequestWorkers 128
MinSpareThreads 64
MaxSpareThreads 128
EOC
	;;
flask) paths=("") ;;
*) echo "http_compare: SERVER is kbtest, apache or flask" >&2; exit 2 ;;
esac

# Start the server on CORE, with the preload when $1 is kb; pid in hpid.
server_start() { # kernel|kb CORE
	local pre=(env)
	[ "$1" = kb ] && pre=(env KB_STACK="$stack" KB_ACCEL=listen:8080 LD_PRELOAD="$lib")
	case $server in
	kbtest)
		sxe "${pre[@]}" taskset -c "$2" "$httpd" --port 8080 --root "$www" >/dev/null 2>&1 &
		hpid=$! ;;
	apache)
		rm -f "$www/run/httpd.pid"
		sx "${pre[@]}" taskset -c "$2" apache2 -f "$www/apache.conf" -k start
		for _ in $(seq 100); do [ -s "$www/run/httpd.pid" ] && break; sleep 0.1; done
		hpid=$(cat "$www/run/httpd.pid") ;;
	flask)
		(cd "$top/tests/compat/flaskapp" &&
		 sxe "${pre[@]}" KB_FLASK_STATIC="$www/static" taskset -c "$2" /usr/bin/gunicorn \
			-b 0.0.0.0:8080 -w 2 -k gthread --threads 4 app:app >/dev/null 2>&1) &
		hpid=$! ;;
	esac
}

server_stop() {
	[ -n "$hpid" ] || return 0
	if [ "$server" = apache ]; then
		sx apache2 -f "$www/apache.conf" -k stop || true
	else
		kill "$hpid" 2>/dev/null || true
	fi
	for _ in $(seq 100); do kill -0 "$hpid" 2>/dev/null || break; sleep 0.1; done
	wait "$hpid" 2>/dev/null || true
	hpid=
}

stop() {
	server_stop
	[ -n "$spid" ] && { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true; }
	spid=
}
cleanup() { stop; "$top/scripts/testbed" down "$KB_TB_ID" 2>/dev/null; rm -rf "$www"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do cx curl -s --max-time 1 -o /dev/null "http://$1:8080/${paths[0]}" && return 0; sleep 0.1; done; return 1; }

start() { # LAYOUT
	case $1 in
	kernel)
		server_start kernel 1
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
		server_start kb $core
		wait_port 198.18.0.1 ;;
	esac
}

# wrk → "req/s p50_us p90_us p99_us errors"
run_wrk() { # LAYOUT CONNS PATH
	cx wrk -t1 -c"$2" -d"${secs}s" --latency "http://$(addr_of "$1"):8080/$3" |
	awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1e6 }
	     /^ +50%/ { p50 = us($2) } /^ +90%/ { p90 = us($2) } /^ +99%/ { p99 = us($2) }
	     /Requests\/sec/ { rps = $2 } /Socket errors|Non-2xx/ { err = 1 }
	     END { printf "%.0f %.1f %.1f %.1f %s\n", rps, p50, p90, p99, err ? "yes" : "no" }'
}

declare -A res
for r in $(seq "$rounds"); do
	for l in "${layouts[@]}"; do
		echo "round $r/$rounds: $l" >&2
		start "$l"
		cx wrk -t1 -c16 -d1s "http://$(addr_of "$l"):8080/${paths[0]}" >/dev/null # warm-up
		for p in "${paths[@]}"; do
			for c in "${conns[@]}"; do
				res[$l,$p,$c,$r]=$(run_wrk "$l" "$c" "$p")
			done
		done
		stop
	done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
med() { for r in $(seq "$rounds"); do echo "${res[$1,$2,$3,$r]}" | cut -d' ' -f"$4"; done | median; }
errs() { for r in $(seq "$rounds"); do echo "${res[$1,$2,$3,$r]}" | cut -d' ' -f5; done | grep -q yes && echo " (errors)" || true; }

# Syscalls per request: strace -c -f on the server while wrk (16
# connections, 3 s) runs; calls divided by the requests wrk completed.
syscalls() { # LAYOUT
	local out reqs pids
	out=$(mktemp)
	start "$1"
	pids=$(echo "$hpid"; pgrep -P "$hpid" || true)
	# shellcheck disable=SC2046
	sxe strace -q -c -f $(printf -- '-p %s ' $pids) -o "$out" &
	local st=$!
	sleep 1
	reqs=$(cx wrk -t1 -c16 -d3s "http://$(addr_of "$1"):8080/${paths[0]}" | awk '/requests in/ { print $1 }')
	kill -INT "$st"; wait "$st" 2>/dev/null || true
	stop
	# lines: % time, seconds, usecs/call, calls, [errors,] syscall. The
	# server's own file work (open, fstat, pread/sendfile's source, close)
	# is the same on both paths; the network part is what kb removes.
	awk -v n="$reqs" '
		$NF == "total" { total = $4; next }
		$NF ~ /^(read|readv|write|writev|sendfile|sendfile64|recvfrom|recvmsg|sendto|sendmsg|epoll_wait|epoll_pwait|epoll_pwait2|epoll_ctl|poll|ppoll|select|pselect6|accept|accept4)$/ { net += $4 }
		END { printf "%.3f in all, %.3f network (%d requests)", total / n, net / n, n }' "$out"
	# the largest contributors, per request
	awk -v n="$reqs" '$NF != "total" && $NF != "syscall" && $4 ~ /^[0-9]+$/ { print $4 / n, $NF }' "$out" |
		sort -rg | head -8 | awk '{ printf "%s%s %.2f", (NR > 1 ? ", " : "; top: "), $2, $1 }' 
	rm -f "$out"
}

out=$(
	echo "kb vs kernel — $server, keep-alive, wrk -t1 ${secs}s; $rounds rounds, kernel and kb alternated; medians"
	echo "layouts: kernel = wrk core 0, server core 1; kb-A = wrk core 0, server + kbstackd (adaptive) core 1;"
	echo "         kb-B = wrk + server core 0, kbstackd (busy) core 1"
	echo
	printf '%-8s %-6s %5s %10s %9s %9s %9s %8s\n' layout path conns "req/s" "p50 us" "p90 us" "p99 us" "vs kern"
	for p in "${paths[@]}"; do
		for c in "${conns[@]}"; do
			k=$(med kernel "$p" "$c" 1)
			for l in "${layouts[@]}"; do
				printf '%-8s %-6s %5s %10s %9s %9s %9s %8s%s\n' "$l" "/$p" "$c" \
					"$(med "$l" "$p" "$c" 1)" "$(med "$l" "$p" "$c" 2)" \
					"$(med "$l" "$p" "$c" 3)" "$(med "$l" "$p" "$c" 4)" \
					"$(awk -v a="$(med "$l" "$p" "$c" 1)" -v k="$k" 'BEGIN { printf "%.2fx", a / k }')" \
					"$(errs "$l" "$p" "$c")"
			done
		done
	done
	echo
	echo "server syscalls per request (strace -c -f during wrk -c16 -d3s):"
	for l in "${layouts[@]}"; do
		echo "  $l: $(syscalls "$l")"
	done
)
mkdir -p "$top/bench/results"
printf '%s\n' "$out" | tee "$top/bench/results/http_compare-$server-$(date +%Y%m%d-%H%M%S).txt"
