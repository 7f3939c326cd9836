#!/usr/bin/env bash
# apache.sh [MPM...] — Debian's Apache httpd, unmodified, started with
# `LD_PRELOAD=libkbpreload.so apachectl start` in the server namespace of
# the test bed and served through kbstackd, for each MPM (event, worker,
# prefork): static files of 64 B, 10 KiB, 1 MiB and 100 MiB byte-exact with
# EnableSendfile On and Off; the same server on 127.0.0.1 (kernel path);
# 32 keep-alive connections under wrk without errors; `apachectl graceful`
# then serving again; `apachectl stop` leaving no process, socket or
# context behind. Apache runs its children as www-data.
# Layout: kbstackd core 1; Apache and the clients core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root
mpms=("$@")
[ ${#mpms[@]} -gt 0 ] || mpms=(event worker prefork)

top=$(mktemp -d /tmp/kbapache.XXXXXX)
test_cleanup() {
	[ -f "$top/run/httpd.pid" ] && kill "$(cat "$top/run/httpd.pid")" 2>/dev/null
	rm -rf "$top"
}
bed_up

mkdir -p "$top/conf" "$top/www" "$top/run" "$top/logs"
sizes=(64 10240 1048576 104857600)
for n in "${sizes[@]}"; do head -c "$n" /dev/urandom >"$top/www/f$n"; done
chmod -R a+rX "$top"
chown -R www-data "$top/logs" "$top/run"

# apachectl reads $APACHE_CONFDIR/envvars and apache2.conf
cat >"$top/conf/envvars" <<EOV
export APACHE_RUN_USER=www-data APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE=$top/run/httpd.pid APACHE_RUN_DIR=$top/run
export APACHE_LOCK_DIR=$top/run APACHE_LOG_DIR=$top/logs LANG=C
EOV
conf() { # MPM SENDFILE
	cat >"$top/conf/apache2.conf" <<EOC
ServerRoot /etc/apache2
ServerName kbtest
PidFile \${APACHE_PID_FILE}
Listen 8080
LoadModule mpm_$1_module /usr/lib/apache2/modules/mod_mpm_$1.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
TypesConfig /etc/mime.types
User \${APACHE_RUN_USER}
Group \${APACHE_RUN_GROUP}
ErrorLog $top/logs/error.log
LogLevel warn mpm_$1:debug
DocumentRoot $top/www
<Directory $top/www>
  Require all granted
</Directory>
EnableSendfile $2
KeepAlive On
MaxKeepAliveRequests 0
EOC
	# event/worker: each child has a worker for every wrk connection. With
	# fewer, event MPM closes keep-alive connections when its workers are
	# all busy ("All workers busy" at LogLevel debug) and wrk counts read
	# errors — on the kernel path too (seen on loopback at 64 connections
	# with 25 threads per child).
	[ "$1" != prefork ] && printf '%s\n' "StartServers 2" "ThreadsPerChild 64" \
		"MaxRequestWorkers 128" "MinSpareThreads 64" "MaxSpareThreads 128" \
		>>"$top/conf/apache2.conf"
	# prefork: one connection per process; keep-alive clients need that many
	[ "$1" = prefork ] && printf '%s\n' "StartServers 80" "MinSpareServers 80" \
		"MaxSpareServers 100" "MaxRequestWorkers 120" >>"$top/conf/apache2.conf"
}
ctl() { # apachectl ACTION, preloaded, in the server namespace
	ip netns exec "$KB_TB_SNS" env APACHE_CONFDIR="$top/conf" KB_STACK="$stack" \
		KB_ACCEL=listen:8080 LD_PRELOAD="$lib" taskset -c 0 apachectl "$1"
}
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
# The parent (pid file) and its children.
apache_pids() {
	local p
	p=$(cat "$top/run/httpd.pid" 2>/dev/null) || return 0
	echo "$p"
	pgrep -P "$p"
}
none_alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }

bodies() { # NAME
	local n bad_sizes=""
	for n in "${sizes[@]}"; do
		[ "$(cx curl -sS --max-time 60 "http://198.18.0.1:8080/f$n" | sha256sum)" = \
		  "$(sha256sum <"$top/www/f$n")" ] || bad_sizes+=" $n"
	done
	if [ -z "$bad_sizes" ]; then ok "$1: ${sizes[*]} bytes byte-exact";
	else bad "$1: wrong body for sizes:$bad_sizes"; fi
}

for mpm in "${mpms[@]}"; do
	for sf in On Off; do
		[ "$mpm" != event ] && [ "$sf" = Off ] && continue
		name="$mpm MPM, EnableSendfile $sf"
		conf "$mpm" "$sf"
		: >"$top/logs/error.log"
		if ! ctl start || ! wait_for 10 cx curl -s -o /dev/null http://198.18.0.1:8080/f64; then
			bad "$name: apachectl start"; sed 's/^/    /' "$top/logs/error.log"; continue
		fi
		ok "$name: started with LD_PRELOAD=libkbpreload.so apachectl start"
		bodies "$name"
		# 50 requests for 10 KiB on one keep-alive connection: Apache sets
		# TCP_NODELAY on its listener only; without Linux's inheritance
		# each response's last segment would wait ~40 ms for a delayed ACK.
		args=()
		for _ in $(seq 50); do args+=(-o /dev/null http://198.18.0.1:8080/f10240); done
		t=$(cx curl -s --max-time 20 -w '%{time_total}\n' "${args[@]}" | awk '{ s += $1 } END { print s }')
		check "$name: 50 keep-alive 10 KiB responses in ${t}s (< 1 s: TCP_NODELAY inherited)" \
			awk -v t="$t" 'BEGIN { exit !(t > 0 && t < 1.0) }'
		got=$(ip netns exec "$KB_TB_SNS" curl -s --max-time 10 http://127.0.0.1:8080/f1048576 | sha256sum)
		check_eq "$name: also serves 127.0.0.1 (kernel path)" "$got" "$(sha256sum <"$top/www/f1048576")"
		out=$(cx wrk -t1 -c32 -d3s http://198.18.0.1:8080/f64 2>&1)
		if grep -q 'requests in' <<<"$out" && ! grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
			ok "$name: wrk, 32 keep-alive connections, no errors ($(awk '/Requests\/sec/{print $2}' <<<"$out") req/s)"
		else
			bad "$name: wrk:"; sed 's/^/    /' <<<"$out"
			echo "    Apache's own closes (debug log):"
			grep -E 'busy|keep-alive|Too many' "$top/logs/error.log" | head -5 | sed 's/^/    /'
			echo "    kbstackd's counters:"; KB_STACK=$stack "$kbstat" | sed 's/^/    /'
		fi
		check_eq "$name: kbstackd reset no connection (accept queue, lwIP aborts)" \
			"$(kbstat_of "$stack" tcp_accept_reset) $(kbstat_of "$stack" tcp_aborted)" "0 0"
		if [ "$sf" = On ]; then
			ctl graceful
			sleep 1
			check "$name: serves after apachectl graceful" \
				sh -c "[ \"\$(ip netns exec $KB_TB_CNS curl -s --max-time 10 http://198.18.0.1:8080/f10240 | sha256sum)\" = \"\$(sha256sum <$top/www/f10240)\" ]"
		fi
		pids=$(apache_pids)
		ctl stop
		# shellcheck disable=SC2086
		check "$name: apachectl stop leaves no Apache process ($(echo $pids | wc -w) were running)" \
			wait_for 10 none_alive $pids
		check_stack_empty "$name stopped"
		if grep -qE '\[(error|crit|alert|emerg)\]' "$top/logs/error.log"; then
			bad "$name: errors in Apache's log:"; grep -E '\[(error|crit|alert|emerg)\]' "$top/logs/error.log" | head -5 | sed 's/^/    /'
		else
			ok "$name: no error in Apache's log"
		fi
	done
done
finish
