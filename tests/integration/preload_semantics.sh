#!/usr/bin/env bash
# preload_semantics.sh [SCENARIO...] — socket semantics under
# LD_PRELOAD=libkbpreload.so, one scenario of kbtest_semantics at a time
# (tests/servers/kbtest_semantics.c, kbtest_lifecycle.c). By default:
#   rcvtimeo, eintr, epoll_two_sets, epoll_ctl_from_thread, oneshot_et,
#   rdhup_hup, epoll_fork, nonblock_connect, fionread_peek, dup_close,
#   select_mixed.
# KBSTACKD picks the kbstackd build (kb.sh); KBTEST_ARGS are more options for
# the side under test (--tw-ms, --pcbs: what that build's lwIP does);
# KBTEST_MODES=kb skips the kernel runs. kbstackd must be alive after every
# scenario and its log free of sanitizer reports; if not, that is a failure,
# and a new kbstackd serves the next scenario.
# Each runs twice:
#   kernel  the program without the preload in the client namespace, its
#           peer connecting to 198.18.0.2 there: Linux's answers, which
#           validate the scenario itself;
#   kb      the program under the preload in the server namespace, served by
#           kbstackd (af_xdp) at 198.18.0.1; its peer is the same program
#           without the preload in the client namespace (198.18.0.2).
# The two sides step through a scenario over two FIFOs, not the connection
# under test. Every "ok - "/"FAIL - " line the program prints becomes a
# check line here; a non-zero exit without a FAIL line is a failure too.
# Layout: kbstackd on core 1; both sides on core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root
prog=${KBTEST_SEMANTICS:-$src/build/tests/kbtest_semantics}

tb=$("$src/scripts/testbed" up) || { bad "test bed up"; finish; }
eval "$tb"
log=$(mktemp)
work=$(mktemp -d)
peer=
cleanup() {
	[ -n "$peer" ] && kill -KILL "$peer" 2>/dev/null && wait "$peer" 2>/dev/null
	stop_kbstackd
	"$src/scripts/testbed" down "$KB_TB_ID" 2>/dev/null
	rm -rf "$log" "$work"
}
trap cleanup EXIT
stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
stack_up() {
	start_kbstackd "$KB_TB_SNS" "$stack" "$log" --dev="net_af_xdp0,iface=$KB_TB_SIF" \
		--ip=198.18.0.1/24 --core=1
}
stack_up

# run MODE SCENARIO PORT [KB_ACCEL]: one scenario with its peer; its lines
# become checks named "MODE SCENARIO: ...".
run() {
	local mode=$1 sc=$2 port=$3 accel=${4:-listen:$3} d=$work/$1-$2 rc line nfail=0 npass=0
	local host=198.18.0.1 opts lim=20
	# accept_overflow waits for clients' SYNs sent again (1 s, 3 s, 7 s, ...)
	[ "$sc" = accept_overflow ] && lim=60
	mkdir -p "$d" && mkfifo "$d/cmd" "$d/ack"
	# shellcheck disable=SC2206 # KBTEST_ARGS: options split on spaces
	opts=(--ctl "$d" --port "$port" --target 198.18.0.2 --closed-port 9 --peer-port 9100
	      ${KBTEST_ARGS:-})
	[ "$mode" = kernel ] && host=198.18.0.2
	ip netns exec "$KB_TB_CNS" taskset -c 0 timeout -k 1 $((lim + 5)) \
		"$prog" peer --ctl "$d" --host "$host" --port "$port" >"$d/peer" 2>&1 &
	peer=$!
	if [ "$mode" = kb ]; then
		ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL="$accel" LD_PRELOAD="$lib" \
			taskset -c 0 timeout -k 1 $lim "$prog" "$sc" "${opts[@]}" >"$d/out" 2>"$d/err"
	else
		ip netns exec "$KB_TB_CNS" taskset -c 0 timeout -k 1 $lim \
			"$prog" "$sc" "${opts[@]}" >"$d/out" 2>"$d/err"
	fi
	rc=$?
	# The peer leaves on "quit"; if the side under test died first, the
	# FIFOs close and it leaves too. Otherwise it is killed.
	reap 3 "$peer"
	peer=
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "$mode $sc: ${line#ok - }"; npass=$((npass + 1)) ;;
		"FAIL - "*) bad "$mode $sc: ${line#FAIL - }"; nfail=$((nfail + 1)) ;;
		esac
	done <"$d/out"
	if [ "$rc" != 0 ] && [ "$nfail" = 0 ]; then
		case $rc in 124|137) bad "$mode $sc: timed out (exit $rc)" ;;
		*) bad "$mode $sc: exited with status $rc" ;; esac
	elif [ "$rc" = 0 ] && [ "$npass" = 0 ]; then
		bad "$mode $sc: no check ran"
	fi
	if [ "$rc" != 0 ]; then
		[ -s "$d/err" ] && sed 's/^/    stderr: /' "$d/err" | head -20
		[ -s "$d/peer" ] && sed 's/^/    peer: /' "$d/peer" | head -20
	fi
	rm -rf "$d"
	[ "$mode" = kb ] && stack_sane "$mode $sc"
}

# stack_sane WHAT: kbstackd is alive and has reported no sanitizer error;
# otherwise a failure with its report, and a new kbstackd.
stack_sane() {
	if ! grep -qE "$kb_san_report" "$log" && kill -0 "$pid" 2>/dev/null; then
		return 0
	fi
	if grep -qE "$kb_san_report" "$log"; then
		bad "$1: kbstackd's sanitizer reported:"
		sanitizer_clean
	else
		bad "$1: kbstackd has died:"
		tail -20 "$log" | sed 's/^/    /'
	fi
	stop_kbstackd
	stack_up
}

scenarios=("$@")
[ $# -gt 0 ] || scenarios=(rcvtimeo eintr epoll_two_sets epoll_ctl_from_thread oneshot_et
			   rdhup_hup epoll_fork nonblock_connect fionread_peek dup_close
			   select_mixed)
for mode in ${KBTEST_MODES:-kernel kb}; do
	i=0
	for sc in "${scenarios[@]}"; do
		if [ "$mode" = kb ] && [ "$sc" = nonblock_connect ]; then
			run kb "$sc" $((8080 + i)) connect:198.18.0.2/32
		elif [ "$mode" = kb ] && [ "$sc" = accept_overflow ]; then
			# the SYNs kb had no room for were dropped, none answered by RST
			q0=$(kbstat_of "$stack" tcp_syn_drop_queue)
			s0=$(kbstat_of "$stack" tcp_syn_drop_slots)
			r0=$(kbstat_of "$stack" tcp_accept_reset)
			run kb "$sc" $((8080 + i))
			check "kb $sc: SYNs dropped for a full accept queue ($(($(kbstat_of "$stack" tcp_syn_drop_queue) - q0)))" \
				test "$(kbstat_of "$stack" tcp_syn_drop_queue)" -gt "$q0"
			check "kb $sc: SYNs dropped for want of a slot ($(($(kbstat_of "$stack" tcp_syn_drop_slots) - s0)))" \
				test "$(kbstat_of "$stack" tcp_syn_drop_slots)" -gt "$s0"
			check_eq "kb $sc: no connection reset at accept" \
				"$(($(kbstat_of "$stack" tcp_accept_reset) - r0))" 0
		elif [ "$mode" = kb ] && [ "$sc" = many_listeners ]; then
			# KBQ_NLISTEN listeners on kbstackd, the one beyond on the kernel
			# (the scenario checks that its listen() succeeded all the same)
			q0=$(kbstat_of "$stack" listen_refused_queues)
			a0=$(kbstat_of "$stack" tcp_accepted)
			run kb "$sc" $((8080 + i)) 'listen:*'
			check_eq "kb $sc: one listen refused for want of an accept queue" \
				"$(($(kbstat_of "$stack" listen_refused_queues) - q0))" 1
			check_eq "kb $sc: both connections went through kbstackd" \
				"$(($(kbstat_of "$stack" tcp_accepted) - a0))" 2
		elif [ "$mode" = kb ] && [ "$sc" = high_fd ]; then
			a0=$(kbstat_of "$stack" tcp_accepted)
			run kb "$sc" $((8080 + i))
			check "kb $sc: the connection on the high fd's listener went through kbstackd" \
				test "$(kbstat_of "$stack" tcp_accepted)" -gt "$a0"
		else
			run "$mode" "$sc" $((8080 + i))
		fi
		i=$((i + 1))
	done
done

# Every program under the preload has exited: kbstackd holds nothing for them.
check_stack_empty "afterwards (every program under the preload has exited)"
finish
