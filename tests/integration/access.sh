#!/usr/bin/env bash
# access.sh — who may attach to kbstackd and what a request may ask
# (README "Security model"):
#   - the control socket's mode and group (KB_GROUP), 0600 by default;
#   - a LISTEN posted straight into the region is held to the kernel's rule
#     for ports below 1024 (CAP_NET_BIND_SERVICE);
#   - JOIN only for the context's own uid;
#   - a PID message names its sender (the kernel's credentials), never the
#     process in its argument: a same-uid process cannot close a server's
#     sockets by claiming its pid and hanging up;
#   - KB_UID_CONTEXTS contexts per user, more refused and counted.
# The unprivileged user is nobody:nogroup. Layout: kbstackd core 1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root
attach_bin=${KBTEST_ATTACH:-$src/build/tests/kbtest_attach}
tools=$(mktemp -d)
www=$(mktemp -d)
srv=
test_cleanup() {
	[ -n "$srv" ] && { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }
	rm -rf "$tools" "$www"
}
# nobody must be able to run the tool wherever the build lives
cp "$attach_bin" "$tools/kbtest_attach"
chmod 755 "$tools" "$tools/kbtest_attach"
attach() { ip netns exec "$KB_TB_SNS" "$tools/kbtest_attach" "$stack" "$@"; }
attach_nobody() {
	ip netns exec "$KB_TB_SNS" setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$tools/kbtest_attach" "$stack" "$@"
}

bed_up --group=nogroup --uid-contexts=3
check_eq "KB_GROUP: the control socket is 0660 in that group" "$(stat -c '%a %G' "$stack")" "660 nogroup"

echo hello >"$www/f"
chmod -R a+rX "$www"
ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL=listen:8080 LD_PRELOAD="$lib" \
	taskset -c 0 "$httpd" --port 8080 --root "$www" >/dev/null 2>&1 &
srv=$!
serves() { [ "$(ip netns exec "$KB_TB_CNS" curl -s --max-time 5 http://198.18.0.1:8080/f)" = hello ]; }
check "a root server serves through kbstackd" wait_for 10 serves

check_eq "nobody (in KB_GROUP): LISTEN 80 through the region is refused (EACCES)" \
	"$(attach_nobody listen 80)" "rc -13"
check_eq "nobody: LISTEN 8090 is allowed" "$(attach_nobody listen 8090)" "rc 0"
check_eq "root: LISTEN 81 is allowed (CAP_NET_BIND_SERVICE)" "$(attach listen 81)" "rc 0"
check "kbstat counts the refused listen" [ "$(kbstat_of "$stack" listen_refused_priv)" -ge 1 ]
check_eq "nobody cannot JOIN a root context" "$(attach_nobody join-any 64)" "joined 0"
check "kbstat counts the refused join" [ "$(kbstat_of "$stack" ctl_refused_uid)" -ge 1 ]

out=$(attach pidclaim "$srv")
check "root joins the server's context and claims the server's pid ($out)" \
	[ "${out#claimed }" -ge 1 ]
sleep 0.3
check "the server still serves: the claim named the claimer, not the server" serves

check_eq "nobody: at most KB_UID_CONTEXTS=3 contexts, then EUSERS" \
	"$(attach_nobody contexts 5)" "attached 3 first-refusal -87"
check "kbstat counts the refused attach" [ "$(kbstat_of "$stack" ctx_refused_limit)" -ge 1 ]
check "kbstackd still serves" serves
kill "$srv"; wait "$srv" 2>/dev/null; srv=
check_stack_empty "after the server"

# The default: only kbstackd's own user.
stop_kbstackd
start_kbstackd "$KB_TB_SNS" "$stack" "$log" --dev="net_af_xdp0,iface=$KB_TB_SIF" \
	--ip=198.18.0.1/24 --core=1
check_eq "default: the control socket is 0600" "$(stat -c '%a' "$stack")" "600"
check_eq "default: nobody cannot attach" "$(attach_nobody listen 8090)" "attach -1002"
check_eq "default: root can" "$(attach listen 8090)" "rc 0"
finish
