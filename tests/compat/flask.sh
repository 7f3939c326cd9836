#!/usr/bin/env bash
# flask.sh — a Flask application (tests/compat/flaskapp: template, static
# files, POST body and form, streamed chunked response), unmodified, under
# LD_PRELOAD=libkbpreload.so, served through kbstackd on the test bed by:
# the Werkzeug development server (threaded: poll/select), gunicorn with
# sync workers (forked), and gunicorn gthread. Every body is checked by
# sha256; the kernel path (127.0.0.1) answers too; 200 sequential requests;
# after each server stops kbstackd holds nothing for it.
# Debian's python3 and python3-flask/gunicorn (/usr/bin).
# Layout: kbstackd core 1; servers and clients core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root
py=/usr/bin/python3
app=$here/flaskapp

tmp=$(mktemp -d /tmp/kbflask.XXXXXX)
srv=
test_cleanup() {
	[ -n "$srv" ] && { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }
	rm -rf "$tmp"
}
bed_up

mkdir -p "$tmp/static"
for n in 64 10240 1048576; do head -c "$n" /dev/urandom >"$tmp/static/f$n"; done
head -c 1048576 /dev/urandom >"$tmp/post"
head -c 76800 /dev/urandom | base64 -w 0 >"$tmp/form" # 100 KiB of text
chmod -R a+rX "$tmp"
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
kb() {
	cd "$app" && exec ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL=listen:8080 \
		KB_FLASK_STATIC="$tmp/static" LD_PRELOAD="$lib" taskset -c 0 "$@"
}
stream_sha=$($py -c '
import hashlib, sys
sys.path.insert(0, "'"$app"'")
h = hashlib.sha256()
for i in range(256):
    h.update((b"%08d" % i) * 512)
print(h.hexdigest())')

serve_checks() { # NAME
	local n got
	got=$(cx curl -s --max-time 10 http://198.18.0.1:8080/)
	check "$1: template rendered" grep -q "<h1>Hello, kb</h1>" <<<"$got"
	for n in 64 10240 1048576; do
		got=$(cx curl -s --max-time 30 "http://198.18.0.1:8080/static/f$n" | sha256sum)
		check_eq "$1: static file of $n bytes byte-exact" "$got" "$(sha256sum <"$tmp/static/f$n")"
	done
	got=$(cx curl -s --max-time 30 --data-binary @"$tmp/post" -H 'Content-Type: application/octet-stream' \
		http://198.18.0.1:8080/echo)
	check_eq "$1: 1 MiB POST body received intact" "$got" \
		"1048576 $(sha256sum <"$tmp/post" | cut -d' ' -f1)"
	got=$(cx curl -s --max-time 30 --data-urlencode "text@$tmp/form" http://198.18.0.1:8080/form)
	check_eq "$1: 100 KiB form field POSTed intact" "$got" \
		"$(wc -c <"$tmp/form") $(sha256sum <"$tmp/form" | cut -d' ' -f1)"
	got=$(cx curl -s --max-time 30 -D "$tmp/hdr" http://198.18.0.1:8080/stream/256 | sha256sum | cut -d' ' -f1)
	check_eq "$1: streamed response (1 MiB) byte-exact" "$got" "$stream_sha"
	check "$1: ... sent chunked" grep -qi '^transfer-encoding: chunked' "$tmp/hdr"
	got=$(ip netns exec "$KB_TB_SNS" curl -s --max-time 10 http://127.0.0.1:8080/)
	check "$1: the kernel path (127.0.0.1) answers too" grep -q "Hello, kb" <<<"$got"
	got=$(for _ in $(seq 200); do cx curl -s --max-time 5 -o /dev/null -w '%{http_code}\n' http://198.18.0.1:8080/; done |
		grep -c '^200$')
	check_eq "$1: 200 sequential requests answered" "$got" 200
}

run() { # NAME CMD...
	local name=$1; shift
	: >"$tmp/out"
	kb "$@" >"$tmp/out" 2>&1 &
	srv=$!
	if ! wait_for 20 ip netns exec "$KB_TB_SNS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' ||
	   ! wait_for 10 cx curl -s --max-time 2 -o /dev/null http://198.18.0.1:8080/; then
		bad "$name did not start:"; tail -20 "$tmp/out" | sed 's/^/    /'
		kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; srv=
		return
	fi
	ok "$name started under the preload"
	serve_checks "$name"
	kill -TERM "$srv"; wait "$srv" 2>/dev/null; srv=
	check_stack_empty "$name stopped"
}

run "Werkzeug development server (threaded)" $py app.py 8080
run "gunicorn, 2 sync workers" /usr/bin/gunicorn -b 0.0.0.0:8080 -w 2 app:app
run "gunicorn, 2 gthread workers x 4 threads" /usr/bin/gunicorn -b 0.0.0.0:8080 -w 2 \
	-k gthread --threads 4 app:app
finish
