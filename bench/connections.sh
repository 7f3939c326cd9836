#!/usr/bin/env bash
# bench/connections.sh — many connections, kernel path and kb side by side
# in one run, alternated (issue 10's benchmark):
#   1. keep-alive: wrk with CONNS connections at once to each server, each
#      round the kernel path then kb — req/s, p99, the slowest request,
#      socket errors; for kb also the SYNs kbstackd dropped and the
#      connections it reset;
#   2. connection rate: ab, 50 at a time, "Connection: close" (the server
#      closes first), RATE_N connections per run — connections/s; with
#      RATE_SPLIT, a run is that many ab runs in a row on the same server
#      and kbstackd, each's rate shown (is the rate steady?);
#   3. idle memory (kb): IDLE_N keep-alive connections that made one request
#      each, held open and idle — kbstackd's RSS and the region's pages
#      (kbstat region_kib) a connection, and its CPU (user + system time
#      over 5 s, % of a core), before and while they are held;
#   4. short connections in a row (kb): SHORT_N connections through ab, then
#      slots, PCBs other than TIME_WAIT, segments, mbufs and region pages
#      compared with before the first;
#   5. bulk: 1 MiB responses from the epoll server, wrk with BULK_CONNS
#      keep-alive connections, each round the kernel path then kb — MB/s,
#      p99, the slowest request and wrk's timeouts (2 s).
#
# Environment:
#   KB_BENCH_OUT      directory for the results (required): keepalive.csv,
#                     rate.csv, idle.txt, short.txt, summary.md
#   KB_BENCH_ROUNDS   rounds of 1 and 2 (default 2)
#   KB_BENCH_SECONDS  wrk's duration per point (default 5)
#   KB_BENCH_CONNS    keep-alive connection counts (default "1000 10000")
#   KB_BENCH_SERVERS  of: epoll nginx (default both; nginx if installed)
#   KB_BENCH_RATE_N   connections per rate run (default 100000)
#   KB_BENCH_RATE_SPLIT  ab runs a rate run is made of (default 1)
#   KB_BENCH_IDLE_N   idle connections held (default 10000)
#   KB_BENCH_SHORT_N  short connections in a row (default 1000000)
#   KB_BENCH_BULK_CONNS  bulk connection counts (default "1 64")
#   KB_BENCH_PARTS    which of keepalive rate idle short bulk to run (default all)
#   KB_BENCH_NICE     kbstackd's KB_NICE (default: unset, kbstackd's own default)
#   KB_BUILD          the build directory (default build/)
#
# Layout A (2 cores): wrk/ab/python on core 0; the server on core 1; kbstackd
# adaptive on core 1 (the kernel path's server on core 1 too). A client and
# a server need an fd per connection: the hard RLIMIT_NOFILE bounds CONNS
# (this script raises the soft limit to it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
src=$top
bld=${KB_BUILD:-$top/build}
out=${KB_BENCH_OUT:?KB_BENCH_OUT: where the results go}
rounds=${KB_BENCH_ROUNDS:-2}
secs=${KB_BENCH_SECONDS:-5}
read -ra conns <<<"${KB_BENCH_CONNS:-1000 10000}"
read -ra servers <<<"${KB_BENCH_SERVERS:-epoll nginx}"
rate_n=${KB_BENCH_RATE_N:-100000}
rate_split=${KB_BENCH_RATE_SPLIT:-1}
[[ $rate_split =~ ^[1-9][0-9]*$ ]] && [ $((rate_n % rate_split)) = 0 ] ||
	{ echo "connections.sh: KB_BENCH_RATE_SPLIT must divide KB_BENCH_RATE_N" >&2; exit 2; }
idle_n=${KB_BENCH_IDLE_N:-10000}
short_n=${KB_BENCH_SHORT_N:-1000000}
read -ra bulk_conns <<<"${KB_BENCH_BULK_CONNS:-1 64}"
parts=" ${KB_BENCH_PARTS:-keepalive rate idle short bulk} "
for p in $parts; do
	case $p in keepalive|rate|idle|short|bulk) ;;
	*) echo "connections.sh: KB_BENCH_PARTS: unknown part '$p' (keepalive rate idle short bulk)" >&2; exit 2 ;;
	esac
done
part() { [[ $parts == *" $1 "* ]]; }
kbstackd=$bld/stack/kbstackd
kbstat=$bld/stack/kbstat
httpd=$bld/tests/kbtest_httpd
lib=$bld/preload/libkbpreload.so
for f in "$kbstackd" "$kbstat" "$httpd" "$lib"; do
	[ -e "$f" ] || { echo "connections.sh: $f missing: run scripts/build" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "connections.sh: must run as root (namespaces)" >&2; exit 1; }
if ! command -v nginx >/dev/null; then
	read -ra servers <<<"${servers[*]/nginx/}"
	echo "connections.sh: nginx not installed (scripts/setup): epoll server only" >&2
fi
nofile=$(ulimit -Hn)
ulimit -n "$nofile"
for c in "${conns[@]}"; do
	[ "$c" -lt $((nofile - 100)) ] || {
		echo "connections.sh: $c connections need more fds than RLIMIT_NOFILE allows ($nofile)" >&2; exit 1; }
done
mkdir -p "$out"
. "$top/tests/lib/nginx.sh"

eval "$("$top/scripts/testbed" up --kernel-ip)"
stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
dev="net_af_xdp0,iface=$KB_TB_SIF"
www=$(mktemp -d /tmp/kbconn.XXXXXX)
mkdir -p "$www/html" "$www/run"
head -c 64 /dev/urandom >"$www/html/f64"
head -c 1048576 /dev/urandom >"$www/html/f1m"
cp "$www/html/f64" "$www/f64"
nginx_conf "$www/html" "$www/run" "$nofile" >"$www/nginx.conf"
chmod -R a+rX "$www"
spid='' hpid='' server=''

sxe() { exec ip netns exec "$KB_TB_SNS" "$@"; }
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
addr_of() { [ "$1" = kernel ] && echo 198.18.0.3 || echo 198.18.0.1; }
kbs() { KB_STACK=$stack "$kbstat" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }
say() { printf 'connections.sh: %s\n' "$*" >&2; }

server_start() { # kernel|kb
	local pre=(env)
	[ "$1" = kb ] && pre=(env KB_STACK="$stack" KB_ACCEL=listen:8080 LD_PRELOAD="$lib")
	case $server in
	epoll) sxe "${pre[@]}" taskset -c 1 "$httpd" --mode epoll --port 8080 --root "$www/html" \
			>/dev/null 2>&1 & ;;
	nginx) sxe "${pre[@]}" taskset -c 1 nginx -c "$www/nginx.conf" >/dev/null 2>&1 & ;;
	esac
	hpid=$!
}

stop() {
	if [ -n "$hpid" ]; then
		kill "$hpid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$hpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$hpid" 2>/dev/null || true
		wait "$hpid" 2>/dev/null || true
	fi
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
	fi
	hpid='' spid=''
}
cleanup() { stop; "$top/scripts/testbed" down "$KB_TB_ID" 2>/dev/null; rm -rf "$www"; }
trap cleanup EXIT

start() { # kernel|kb
	if [ "$1" = kb ]; then
		sxe env KB_STACK="$stack" ${KB_BENCH_NICE:+KB_NICE=$KB_BENCH_NICE} "$kbstackd" \
			--dev="$dev" --ip=198.18.0.1/24 --core=1 >"$www/run/kbstackd.log" 2>&1 &
		spid=$!
		for _ in $(seq 100); do
			KB_STACK=$stack "$kbstat" 2>/dev/null | grep -q ' state running ' && break
			sleep 0.1
		done
	fi
	server_start "$1"
	for _ in $(seq 300); do
		cx curl -s --max-time 1 -o /dev/null "http://$(addr_of "$1"):8080/f64" && return 0
		sleep 0.1
	done
	say "$server did not answer on the $1 path"
	return 1
}

# wrk → "rps p99_ms max_ms errors" (errors: connect+read+write+timeout, non-2xx)
run_wrk() { # PATH CONNS
	cx bash -c "ulimit -n $nofile && exec wrk -t1 -c$2 -d${secs}s --timeout 10s --latency \
		http://$(addr_of "$1"):8080/f64" 2>&1 |
	awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; return v * 1000 }
	     /^ +Latency +[0-9]/ { max = ms($4) } /^ +99%/ { p99 = ms($2) }
	     /Requests\/sec/ { rps = $2 }
	     /Socket errors/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
	     /Non-2xx/ { err += $NF }
	     END { printf "%.0f %.1f %.1f %d\n", rps, p99, max, err }'
}

echo "round,server,conns,path,rps,p99_ms,max_ms,errors,syn_drops,ring_drops,accept_resets" >"$out/keepalive.csv"
echo "round,server,path,conns_per_s,failed,pieces" >"$out/rate.csv"
echo "round,conns,path,mb_per_s,p99_ms,max_ms,timeouts,errors" >"$out/bulk.csv"
: >"$out/idle.txt"; : >"$out/short.txt"

# 1. keep-alive
part keepalive && for r in $(seq "$rounds"); do
	for c in "${conns[@]}"; do
		for server in "${servers[@]}"; do
			for path in kernel kb; do
				start "$path"
				d0=0 g0=0 a0=0
				[ $path = kb ] && d0=$(( $(kbs tcp_syn_drop_queue) + $(kbs tcp_syn_drop_slots) )) \
					g0=$(kbs rx_drop_ring) a0=$(kbs tcp_accept_reset)
				read -r rps p99 max err <<<"$(run_wrk "$path" "$c")"
				d=- g=- a=-
				if [ $path = kb ]; then
					sleep 0.2 # rx_drop_ring: sampled every 128 ms
					d=$(( $(kbs tcp_syn_drop_queue) + $(kbs tcp_syn_drop_slots) - d0 ))
					g=$(( $(kbs rx_drop_ring) - g0 )) a=$(( $(kbs tcp_accept_reset) - a0 ))
				fi
				echo "$r,$server,$c,$path,$rps,$p99,$max,$err,$d,$g,$a" >>"$out/keepalive.csv"
				say "round $r $server -c$c $path: $rps req/s, p99 $p99 ms, max $max ms, errors $err, SYN drops $d, frames dropped before the port's queue $g, resets $a"
				stop
			done
		done
	done
done

# 2. connection rate
part rate && for r in $(seq "$rounds"); do
	for server in "${servers[@]}"; do
		for path in kernel kb; do
			start "$path"
			pieces=() failed=0 secs_all=0
			for piece in $(seq "$rate_split"); do
				o=$(cx timeout 600 ab -q -r -n $((rate_n / rate_split)) -c 50 \
					-H 'Connection: close' "http://$(addr_of "$path"):8080/f64" 2>&1)
				pieces+=("$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$o")")
				f=$(sed -n 's/^Failed requests: *//p' <<<"$o")
				failed=$((failed + ${f:-0}))
				secs_all=$(awk -v a="$secs_all" -v t="$(sed -n 's/^Time taken for tests: *\([0-9.]*\).*/\1/p' <<<"$o")" \
					'BEGIN { print a + t }')
				[ "$rate_split" = 1 ] || say "round $r $server rate $path: piece $piece of $rate_split: ${pieces[-1]} connections/s"
			done
			cps=$(awk -v n="$rate_n" -v t="$secs_all" 'BEGIN { printf "%.2f", (t > 0 ? n / t : 0) }')
			echo "$r,$server,$path,$cps,$failed,${pieces[*]}" >>"$out/rate.csv"
			say "round $r $server rate $path: $cps connections/s, failed $failed"
			stop
		done
	done
done

# 3. idle memory (kb)
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$spid/status"; }
cpu_pct() { # kbstackd's user + system time over 5 s, % of one core
	local c0 c1 t0 t1 hz
	hz=$(getconf CLK_TCK)
	c0=$(awk '{ print $14 + $15 }' "/proc/$spid/stat") t0=$(date +%s%N)
	sleep 5
	c1=$(awk '{ print $14 + $15 }' "/proc/$spid/stat") t1=$(date +%s%N)
	awk -v c="$((c1 - c0))" -v hz="$hz" -v ns="$((t1 - t0))" \
		'BEGIN { printf "%.1f", c / hz * 1e9 / ns * 100 }'
}
part idle && for server in "${servers[@]}"; do
	start kb
	sleep 0.6 # the curl's slot idle and trimmed
	rss0=$(rss_kib) reg0=$(kbs region_kib) cpu0=$(cpu_pct)
	coproc IDLE { cx bash -c "ulimit -n $nofile && exec python3 '$top/tests/integration/idle_client.py' \
		198.18.0.1 8080 $idle_n '$www/html' light" 2>&1; }
	read -r -t 600 line <&"${IDLE[0]}" || line=timeout
	sleep 1 # trim periods
	rss1=$(rss_kib) reg1=$(kbs region_kib) socks=$(kbs sockets) cpu1=$(cpu_pct)
	echo go >&"${IDLE[1]}"
	read -r -t 600 done_line <&"${IDLE[0]}" || done_line=timeout
	wait "$IDLE_PID" 2>/dev/null || true
	{
		echo "$server: $idle_n idle keep-alive connections ($line, then $done_line; kbstackd sockets $socks)"
		echo "  kbstackd RSS $rss0 -> $rss1 KiB: $(( (rss1 - rss0) * 1024 / idle_n )) bytes a connection"
		echo "  region pages $reg0 -> $reg1 KiB: $(( (reg1 - reg0) * 1024 / idle_n )) bytes a connection"
		echo "  kbstackd CPU $cpu0 -> $cpu1 % of a core (adaptive polling spins while it waits)"
	} | tee -a "$out/idle.txt" >&2
	stop
done

# 4. short connections in a row (kb)
gauges() { echo "sockets=$(kbs sockets) pcbs_not_tw=$(( $(kbs tcp_pcbs) - $(kbs tcp_timewait) )) segs=$(kbs tcp_segs) mbufs=$(kbs mbufs_in_use) region_kib=$(kbs region_kib)"; }
server=epoll
part short && {
start kb
sleep 0.6
g0=$(gauges)
t0=$SECONDS
o=$(cx timeout 3600 ab -q -r -n "$short_n" -c 50 -H 'Connection: close' http://198.18.0.1:8080/f64 2>&1)
sleep 1
{
	echo "$short_n short connections (epoll server, ab -c 50, $((SECONDS - t0)) s):" \
		"$(sed -n 's/^Complete requests: *//p' <<<"$o") complete," \
		"$(sed -n 's/^Failed requests: *//p' <<<"$o") failed," \
		"$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$o")/s"
	echo "  before: $g0"
	echo "  after:  $(gauges)"
	echo "  TIME_WAIT $(kbs tcp_timewait), recycled early $(kbs tcp_tw_recycled), resets at accept $(kbs tcp_accept_reset)"
} | tee -a "$out/short.txt" >&2
stop
}

# 5. bulk: wrk → "MB/s p99_ms max_ms timeouts errors"
part bulk && for r in $(seq "$rounds"); do
	for c in "${bulk_conns[@]}"; do
		for path in kernel kb; do
			start "$path"
			read -r mbs p99 max tmo err <<<"$(cx wrk -t1 -c"$c" -d"${secs}s" --timeout 2s --latency \
				"http://$(addr_of "$path"):8080/f1m" 2>&1 |
			awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; return v * 1000 }
			     function mb(v) { if (v ~ /GB$/) return v * 1024; if (v ~ /MB$/) return v + 0; if (v ~ /KB$/) return v / 1024; return v / 1048576 }
			     /^ +Latency +[0-9]/ { max = ms($4) } /^ +99%/ { p99 = ms($2) }
			     /Transfer\/sec/ { rate = mb($2) }
			     /Socket errors/ { gsub(/,/, ""); err += $4 + $6 + $8; tmo = $10 }
			     /Non-2xx/ { err += $NF }
			     END { printf "%.1f %.1f %.1f %d %d\n", rate, p99, max, tmo, err }')"
			echo "$r,$c,$path,$mbs,$p99,$max,$tmo,$err" >>"$out/bulk.csv"
			say "round $r bulk -c$c $path: $mbs MiB/s, p99 $p99 ms, max $max ms, timeouts $tmo, errors $err"
			stop
		done
	done
done

# Summary: medians per point, kb over kernel.
python3 - "$out" <<'PY' | tee "$out/summary.md"
import csv, statistics, sys
out = sys.argv[1]
rows = list(csv.DictReader(open(out + "/keepalive.csv")))
if rows:
    print("| server | conns | kernel req/s | kb req/s | kb/kernel | kernel p99 / max (ms) | kb p99 / max (ms) | errors kernel / kb | kb SYN drops | kb rx_drop_ring |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted({(r["server"], int(r["conns"])) for r in rows})
    for srv, c in keys:
        k = [r for r in rows if r["server"] == srv and int(r["conns"]) == c and r["path"] == "kernel"]
        b = [r for r in rows if r["server"] == srv and int(r["conns"]) == c and r["path"] == "kb"]
        ratios = [float(y["rps"]) / float(x["rps"]) for x, y in zip(k, b) if float(x["rps"]) > 0]
        f = lambda rs, key: ", ".join(r[key] for r in rs)
        print("| %s | %d | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
            srv, c, f(k, "rps"), f(b, "rps"),
            "%.2f–%.2f×" % (min(ratios), max(ratios)) if ratios else "-",
            "; ".join("%s / %s" % (r["p99_ms"], r["max_ms"]) for r in k),
            "; ".join("%s / %s" % (r["p99_ms"], r["max_ms"]) for r in b),
            f(k, "errors"), f(b, "errors"), f(b, "syn_drops"), f(b, "ring_drops")))
rate = list(csv.DictReader(open(out + "/rate.csv")))
if rate:
    print()
    print("| server | kernel conn/s | kb conn/s | failed kernel / kb | kernel pieces, least–most | kb pieces, least–most |")
    print("|---|---:|---:|---:|---:|---:|")
    spread = lambda rs: "; ".join("%.0f–%.0f" % (min(v), max(v)) for v in
                                  ([float(x) for x in r["pieces"].split()] for r in rs) if v)
    for srv in sorted({r["server"] for r in rate}):
        k = [r for r in rate if r["server"] == srv and r["path"] == "kernel"]
        b = [r for r in rate if r["server"] == srv and r["path"] == "kb"]
        print("| %s | %s | %s | %s / %s | %s | %s |" % (srv, ", ".join(r["conns_per_s"] for r in k),
              ", ".join(r["conns_per_s"] for r in b), ", ".join(r["failed"] for r in k),
              ", ".join(r["failed"] for r in b), spread(k), spread(b)))
bulk = list(csv.DictReader(open(out + "/bulk.csv")))
if bulk:
    print()
    print("| bulk 1 MiB, conns | kernel MiB/s | kb MiB/s | kb/kernel | kernel p99 / max (ms) | kb p99 / max (ms) | timeouts kernel / kb |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for c in sorted({int(r["conns"]) for r in bulk}):
        k = [r for r in bulk if int(r["conns"]) == c and r["path"] == "kernel"]
        b = [r for r in bulk if int(r["conns"]) == c and r["path"] == "kb"]
        ratios = [float(y["mb_per_s"]) / float(x["mb_per_s"]) for x, y in zip(k, b) if float(x["mb_per_s"]) > 0]
        print("| %d | %s | %s | %s | %s | %s | %s / %s |" % (c, ", ".join(r["mb_per_s"] for r in k),
              ", ".join(r["mb_per_s"] for r in b),
              "%.2f–%.2f×" % (min(ratios), max(ratios)) if ratios else "-",
              "; ".join("%s / %s" % (r["p99_ms"], r["max_ms"]) for r in k),
              "; ".join("%s / %s" % (r["p99_ms"], r["max_ms"]) for r in b),
              ", ".join(r["timeouts"] for r in k), ", ".join(r["timeouts"] for r in b)))
PY
cat "$out/idle.txt" "$out/short.txt"
