#!/usr/bin/env bash
# tests/integration/nginx.sh [CONNS] — nginx (one worker, its master forks
# it) under the preload (integration.preload.nginx):
#   - files of 0 B … 16 MiB byte-exact (nginx sends them with sendfile);
#   - CONNS keep-alive connections at once (default 3000, beyond the 1024
#     sockets an application once had) under wrk: no socket error, no
#     non-2xx answer, no connection reset by kbstackd;
#   - after nginx stops: no socket and no context left in kbstackd.
# Layout: kbstackd on core 1; nginx and clients on core 0.
set -uo pipefail
. "$(dirname "$0")/../lib/kb.sh"
. "$(dirname "$0")/../lib/nginx.sh"
need_root
command -v nginx >/dev/null || { bad "nginx not installed (scripts/setup installs nginx-light)"; finish; }
conns=${1:-3000}
www=$(mktemp -d)
ngx=
test_cleanup() {
	[ -z "$ngx" ] || { kill -KILL "$ngx" 2>/dev/null; wait "$ngx" 2>/dev/null; }
	[ -f "$www/run/nginx.pid" ] && kill -KILL "$(cat "$www/run/nginx.pid")" 2>/dev/null
	rm -rf "$www"
}
bed_up
sizes=(0 1 1024 65536 1048576 16777216)
mkdir -p "$www/run" "$www/html"
for n in "${sizes[@]}"; do head -c "$n" /dev/urandom >"$www/html/f$n"; done
head -c 64 /dev/urandom >"$www/html/f64"
nginx_conf "$www/html" "$www/run" 16384 >"$www/nginx.conf"
chmod -R a+rX "$www"
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL=listen:8080 KB_STRICT=1 LD_PRELOAD="$lib" \
	taskset -c 0 nginx -c "$www/nginx.conf" >"$log.srv" 2>&1 &
ngx=$!
url=http://198.18.0.1:8080
if ! check "nginx answers under the preload" wait_for 10 cx curl -s --max-time 1 -o /dev/null "$url/f64"; then
	sed 's/^/    /' "$www/run/error.log" "$log.srv"
	finish
fi
check "nginx's worker is accelerated (kbstat: the curl's connection accepted by kbstackd)" \
	test "$(kbstat_of "$stack" tcp_accepted)" -ge 1

for n in "${sizes[@]}"; do
	got=$(cx curl -s --max-time 30 "$url/f$n" | sha256sum)
	check_eq "f$n byte-exact" "$got" "$(sha256sum <"$www/html/f$n")"
done

rs0=$(kbstat_of "$stack" tcp_accept_reset)
out=$(cx bash -c "ulimit -n 16384 && exec wrk -t1 -c$conns -d3s --timeout 5s $url/f64" 2>&1)
reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
check "wrk: $conns keep-alive connections at once, ${reqs:-no} requests answered" \
	test "${reqs:-0}" -ge "$conns"
check "wrk: no socket error ($(grep -E 'Socket errors' <<<"$out" || echo none))" \
	sh -c "! grep -q 'Socket errors' <<'X'
$out
X"
check "wrk: no non-2xx answer" sh -c "! grep -q 'Non-2xx' <<'X'
$out
X"
check_eq "no connection reset at accept" "$(( $(kbstat_of "$stack" tcp_accept_reset) - rs0 ))" 0

kill -TERM "$ngx" 2>/dev/null; wait "$ngx" 2>/dev/null; ngx=
check_stack_empty "nginx stopped"
grep -E '\[(alert|emerg|crit)\]' "$www/run/error.log" | sed 's/^/    /'
check "nginx logged no alert" sh -c "! grep -qE '\[(alert|emerg|crit)\]' $www/run/error.log"
finish
