#!/usr/bin/env bash
# bench/ping_rtt.sh [ROUNDS] — ICMP echo RTT on the test bed: the kernel's
# own stack against kbstackd (af_xdp, adaptive and busy idle policy) on the
# same veth, alternated round by round; plus kbstackd's CPU use when idle.
#
# Layout: kbstackd pinned to core 1; ping pinned to core 0.
# Two loads: a flood (-i 0: the next ping leaves when the reply is in) and
# a paced one (-i 0.01: the stack is idle 10 ms between pings, so adaptive
# mode has gone to sleep and its wake-up shows in the RTT).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
rounds=${1:-3}
count=${KB_BENCH_PINGS:-1000}
kbstackd=$top/build/stack/kbstackd
kbstat=$top/build/stack/kbstat
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "usage: ping_rtt.sh [ROUNDS 1-99]" >&2; exit 2; }

eval "$("$top/scripts/testbed" up --kernel-ip)"
stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	"$top/scripts/testbed" down "$KB_TB_ID" 2>/dev/null
}
trap cleanup EXIT

start_kb() { # POLL
	ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" "$kbstackd" \
		--dev="net_af_xdp0,iface=$KB_TB_SIF" --ip=198.18.0.1/24 --core=1 \
		--poll="$1" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		KB_STACK=$stack "$kbstat" 2>/dev/null | grep -q ' state running ' && return 0
		sleep 0.1
	done
	echo "ping_rtt: kbstackd did not start" >&2
	exit 1
}
stop_kb() { kill -TERM "$pid"; wait "$pid" || true; pid=; }

# ping_avg ADDR INTERVAL -> "min avg max" in microseconds
ping_rtt() {
	ip netns exec "$KB_TB_CNS" taskset -c 0 ping -q -c "$count" -i "$2" -W 2 "$1" |
		awk -F'[/ =]+' '/^rtt/ { printf "%.1f %.1f %.1f\n", $6*1000, $7*1000, $8*1000 }
		                /received/ { if ($4 != $1) lost = 1 } END { exit lost }'
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A res
idle=()
for r in $(seq "$rounds"); do
	echo "round $r/$rounds: kernel" >&2
	res[kernel,0,$r]=$(ping_rtt 198.18.0.3 0)
	res[kernel,0.01,$r]=$(ping_rtt 198.18.0.3 0.01)
	for poll in adaptive busy; do
		echo "round $r/$rounds: kb $poll" >&2
		start_kb "$poll"
		ping_rtt 198.18.0.1 0 >/dev/null # ARP and warm-up
		if [ "$poll" = adaptive ]; then
			sleep 1
			t0=$(cpu_ticks "$pid")
			sleep 5
			t1=$(cpu_ticks "$pid")
			idle+=("$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
				'BEGIN { printf "%.1f", 100 * t / hz / 5 }')")
		fi
		res[kb-$poll,0,$r]=$(ping_rtt 198.18.0.1 0)
		res[kb-$poll,0.01,$r]=$(ping_rtt 198.18.0.1 0.01)
		stop_kb
	done
done

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { # PATH INTERVAL FIELD
	for r in $(seq "$rounds"); do echo "${res[$1,$2,$r]}" | cut -d' ' -f"$3"; done | median
}

out=$(
	echo "kb ping RTT — test bed veth, $count pings per run, $rounds rounds alternated"
	echo "layout: kbstackd on core 1 (af_xdp, native XDP), ping on core 0; median of rounds, µs"
	echo
	printf '%-22s %8s %8s %8s   %8s %8s %8s\n' "" "flood" "" "" "paced" "10 ms" ""
	printf '%-22s %8s %8s %8s   %8s %8s %8s\n' path min avg max min avg max
	for p in kernel kb-adaptive kb-busy; do
		printf '%-22s %8s %8s %8s   %8s %8s %8s\n' "$p" \
			"$(col $p 0 1)" "$(col $p 0 2)" "$(col $p 0 3)" \
			"$(col $p 0.01 1)" "$(col $p 0.01 2)" "$(col $p 0.01 3)"
	done
	echo
	for p in kb-adaptive kb-busy; do
		awk -v p="$p" -v k="$(col kernel 0 2)" -v a="$(col $p 0 2)" \
		    -v k2="$(col kernel 0.01 2)" -v a2="$(col $p 0.01 2)" \
		    'BEGIN { printf "avg RTT %s / kernel: flood %.2f, paced %.2f\n", p, a / k, a2 / k2 }'
	done
	echo "kbstackd CPU while idle (adaptive, 5 s, per round): ${idle[*]} %"
)
mkdir -p "$top/bench/results"
printf '%s\n' "$out" | tee "$top/bench/results/ping_rtt-$(date +%Y%m%d-%H%M%S).txt"
