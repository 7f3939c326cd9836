#!/usr/bin/env bash
# bench/http_compare.sh — the measuring half of scripts/bench (which passes
# these settings; see `scripts/bench --help`): unmodified HTTP servers on
# the kernel path and on kb, and the in-process peer, on one test bed, under
# wrk with keep-alive. Writes raw.csv (one row a point and round),
# syscalls.csv and meta.txt into OUT; bench/report.py turns them into
# tables and figures. Not meant to be read as results on its own.
#
#   KB_BENCH_OUT      directory for the CSV files (required)
#   KB_BENCH_ROUNDS   rounds; in each, every server runs on both paths,
#                     which path goes first alternating round by round
#   KB_BENCH_SECONDS  wrk's duration per point
#   KB_BENCH_CONNS    connection counts, e.g. "1 2 4 8 16 32 64"
#   KB_BENCH_SERVERS  of: apache epoll flask peer
#   KB_BENCH_LAYOUT   kb's layout, A (default) or B (below)
#   KB_BENCH_SYSCALLS 1: also count each server's system calls (strace)
#   KB_BUILD          the build directory (default build/)
#
# Layouts (2 cores): the kernel path runs wrk on core 0 and the server on
# core 1 (the kernel's softirq work runs where the packets land).
#   A   wrk core 0, server and kbstackd (adaptive polling) core 1: the same
#       cores as the kernel path
#   B   wrk and server core 0, kbstackd (busy polling) core 1
# The peer (kbpeer_httpd) busy-polls core 1 with wrk on core 0: the same
# PMD, port, lwIP options and core as kbstackd.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${KB_BENCH_OUT:?KB_BENCH_OUT: where the CSV files go}
rounds=${KB_BENCH_ROUNDS:-5}
secs=${KB_BENCH_SECONDS:-3}
read -ra conns <<<"${KB_BENCH_CONNS:-1 2 4 8 16 32 64}"
read -ra servers <<<"${KB_BENCH_SERVERS:-apache epoll flask peer}"
layout=${KB_BENCH_LAYOUT:-A}
do_syscalls=${KB_BENCH_SYSCALLS:-1}
bld=${KB_BUILD:-$top/build}
httpd=$bld/tests/kbtest_httpd
peer=$bld/bench/kbpeer_httpd
kbstackd=$bld/stack/kbstackd
kbstat=$bld/stack/kbstat
lib=$bld/preload/libkbpreload.so
hz_clk=$(getconf CLK_TCK)

eval "$("$top/scripts/testbed" up --kernel-ip)"
stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
dev="net_af_xdp0,iface=$KB_TB_SIF"
www=$(mktemp -d /tmp/kbbench.XXXXXX)
head -c 64 /dev/urandom >"$www/f64"
head -c 10240 /dev/urandom >"$www/f10k"
mkdir -p "$www/run" "$www/static"
chmod -R a+rX "$www"
chown www-data "$www/run"
spid='' hpid='' server=''

sx() { ip netns exec "$KB_TB_SNS" "$@"; }
# for `sxe CMD &`: exec, so $! is the command's own pid
sxe() { exec ip netns exec "$KB_TB_SNS" "$@"; }
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
addr_of() { [ "$1" = kernel ] && echo 198.18.0.3 || echo 198.18.0.1; }

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

# The files (URL paths) each server is measured on.
files_of() {
	case $1 in
	apache|peer) echo f64 f10k ;;
	epoll) echo f64 ;;
	flask) echo page ;;
	esac
}
url_of() { [ "$2" = page ] && echo "http://$(addr_of "$1"):8080/" || echo "http://$(addr_of "$1"):8080/$2"; }

# Start $server on CORE, with the preload when $1 is kb; pid in hpid.
server_start() { # kernel|kb CORE
	local pre=(env)
	[ "$1" = kb ] && pre=(env KB_STACK="$stack" KB_ACCEL=listen:8080 LD_PRELOAD="$lib")
	case $server in
	epoll)
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

wait_port() { # PATH
	local f
	f=$(files_of "$server"); f=${f%% *}
	for _ in $(seq 300); do
		cx curl -s --max-time 1 -o /dev/null "$(url_of "$1" "$f")" && return 0
		sleep 0.1
	done
	echo "http_compare: $server did not answer on the $1 path" >&2
	return 1
}

stack_running() { KB_STACK=$stack "$kbstat" 2>/dev/null | grep -q ' state running '; }

# Start $server on PATH (kernel, kb or peer); the stack process in spid.
start() { # PATH
	case $1 in
	kernel)
		server_start kernel 1 ;;
	kb)
		local poll=adaptive core=1
		[ "$layout" = B ] && poll=busy core=0
		sxe env KB_STACK="$stack" "$kbstackd" --dev="$dev" \
			--ip=198.18.0.1/24 --core=1 --poll=$poll >/dev/null 2>&1 &
		spid=$!
		for _ in $(seq 100); do stack_running && break; sleep 0.1; done
		server_start kb $core ;;
	peer)
		sxe "$peer" --root "$www" --port 8080 --dev="$dev" --ip=198.18.0.1/24 \
			--core=1 --stack="$stack" >/dev/null 2>&1 &
		spid=$! ;;
	esac
	wait_port "$1"
}

# "busy_s" of the whole machine so far: every core's non-idle time.
machine_busy() {
	awk -v t="$hz_clk" '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8 + $9) / t; exit }' /proc/stat
}
# The stack process's counters: "cpu_s busy_cycles tsc_hz", zeros if none.
stack_sample() {
	local cpu=0
	if [ -n "$spid" ] && [ -r "/proc/$spid/stat" ]; then
		cpu=$(awk -v t="$hz_clk" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$spid/stat")
		KB_STACK=$stack "$kbstat" 2>/dev/null |
			awk -v c="$cpu" '$1 == "busy_cycles" { b = $2 } $1 == "tsc_hz" { h = $2 }
			                 END { printf "%s %.0f %.0f\n", c, b, h }'
	else
		echo "0 0 0"
	fi
}

# One wrk run → "requests rps avg_us p50_us p90_us p99_us errors".
run_wrk() { # PATH CONNS FILE
	cx wrk -t1 -c"$2" -d"${secs}s" --latency "$(url_of "$1" "$3")" |
	awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1e6 }
	     /^ +Latency +[0-9]/ { avg = us($2) }
	     /^ +50%/ { p50 = us($2) } /^ +90%/ { p90 = us($2) } /^ +99%/ { p99 = us($2) }
	     / requests in / { n = $1 } /Requests\/sec/ { rps = $2 }
	     /Socket errors|Non-2xx/ { err = 1 }
	     END { printf "%d %.0f %.1f %.1f %.1f %.1f %d\n", n, rps, avg, p50, p90, p99, err }'
}

# Progress: point i of n, elapsed, an estimate of what is left.
t0=$(date +%s) point=0 npoints=0
for s in "${servers[@]}"; do
	nf=$(files_of "$s" | wc -w) np=2
	[ "$s" = peer ] && np=1
	npoints=$((npoints + nf * np * ${#conns[@]}))
done
npoints=$((npoints * rounds))
mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
progress() {
	local el=$(($(date +%s) - t0)) left
	point=$((point + 1))
	# first guess: wrk's seconds and about a second of starting and sampling
	left=", about $(mmss $(((npoints - point + 1) * (secs + 1)))) left"
	[ "$point" -gt 1 ] && left=", about $(mmss $((el * (npoints - point + 1) / (point - 1)))) left"
	printf '[%d/%d %s%s] %s\n' "$point" "$npoints" "$(mmss "$el")" "$left" "$*" >&2
}

raw=$out/raw.csv
echo "round,server,path,file,conns,seconds,requests,rps,avg_us,p50_us,p90_us,p99_us,errors,machine_busy_s,stack_cpu_s,stack_busy_cycles,tsc_hz" >"$raw"

measure() { # ROUND PATH
	local f c b0 b1 s0 s1 w n rps avg p50 p90 p99 err sc0 sb0 sc1 sb1 hz
	start "$2"
	for f in $(files_of "$server"); do # warm-up
		cx wrk -t1 -c16 -d1s "$(url_of "$2" "$f")" >/dev/null
	done
	for f in $(files_of "$server"); do
		for c in "${conns[@]}"; do
			progress "round $1/$rounds: $server /$f on $2, $c connections"
			s0=$(stack_sample) b0=$(machine_busy)
			w=$(run_wrk "$2" "$c" "$f")
			b1=$(machine_busy) s1=$(stack_sample)
			read -r n rps avg p50 p90 p99 err <<<"$w"
			read -r sc0 sb0 _ <<<"$s0"
			read -r sc1 sb1 hz <<<"$s1"
			printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' \
				"$1" "$server" "$2" "$f" "$c" "$secs" "$n" "$rps" "$avg" "$p50" "$p90" "$p99" "$err" \
				"$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.3f", b - a }')" \
				"$(awk -v a="$sc0" -v b="$sc1" 'BEGIN { printf "%.3f", b - a }')" \
				"$((sb1 - sb0))" "$hz" >>"$raw"
		done
	done
	stop
}

for r in $(seq "$rounds"); do
	for server in "${servers[@]}"; do
		if [ "$server" = peer ]; then
			measure "$r" peer
		elif [ $((r % 2)) = 1 ]; then
			measure "$r" kernel; measure "$r" kb
		else
			measure "$r" kb; measure "$r" kernel
		fi
	done
done

# System calls per request: strace -c -f on the server's processes while
# wrk (16 connections, 3 s) runs; calls divided by the requests wrk
# completed. "network" counts the calls kb takes over; the server's own
# file work (open, fstat, pread, close) is the same on both paths.
syscalls() { # PATH → "all network top"
	local f tmp reqs pids st
	tmp=$(mktemp)
	start "$1"
	f=$(files_of "$server"); f=${f%% *}
	pids=$( (echo "${hpid:-$spid}"; [ -n "$hpid" ] && pgrep -P "$hpid") || true)
	# shellcheck disable=SC2046,SC2086
	sxe strace -q -c -f $(printf -- '-p %s ' $pids) -o "$tmp" &
	st=$!
	sleep 1
	reqs=$(cx wrk -t1 -c16 -d3s "$(url_of "$1" "$f")" | awk '/requests in/ { print $1 }')
	kill -INT "$st"; wait "$st" 2>/dev/null || true
	stop
	awk -v n="$reqs" '
		$NF == "total" { total = $4; next }
		$NF ~ /^(read|readv|write|writev|sendfile|sendfile64|recvfrom|recvmsg|sendto|sendmsg|epoll_wait|epoll_pwait|epoll_pwait2|epoll_ctl|poll|ppoll|select|pselect6|accept|accept4)$/ { net += $4 }
		END { printf "%.3f,%.3f,", total / n, net / n }' "$tmp"
	awk -v n="$reqs" '$NF != "total" && $NF != "syscall" && $4 ~ /^[0-9]+$/ { print $4 / n, $NF }' "$tmp" |
		sort -rg | head -5 | awk '{ printf "%s%s %.2f", (NR > 1 ? "; " : ""), $2, $1 } END { print "" }'
	rm -f "$tmp"
}

if [ "$do_syscalls" = 1 ]; then
	echo "server,path,all_per_request,network_per_request,largest" >"$out/syscalls.csv"
	for server in "${servers[@]}"; do
		paths=(kernel kb)
		[ "$server" = peer ] && paths=(peer)
		for p in "${paths[@]}"; do
			echo "syscalls: $server on $p (strace, 16 connections, 3 s)" >&2
			echo "$server,$p,$(syscalls "$p")" >>"$out/syscalls.csv"
		done
	done
fi
