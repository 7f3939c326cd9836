#!/usr/bin/env bash
# stack_basic.sh PMD — kbstackd on the namespace test bed, driven through
# DPDK's PMD (af_xdp or af_packet), answering a kernel client in the client
# namespace: ARP, 1000 pings, RST for a closed port, counters that agree
# with the client's link counters, and a clean exit on SIGTERM.
#
# Layout: kbstackd pinned to core 1; the client tools on core 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"

pmd=${1:?usage: stack_basic.sh af_xdp|af_packet}
need_root

tb=$("$src/scripts/testbed" up) || { bad "test bed up"; finish; }
eval "$tb"
log=$(mktemp)
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	"$src/scripts/testbed" down "$KB_TB_ID" 2>/dev/null
	rm -f "$log"
}
trap cleanup EXIT

case $pmd in
af_xdp)    dev="net_af_xdp0,iface=$KB_TB_SIF" ;;
af_packet) dev="net_af_packet0,iface=$KB_TB_SIF" ;;
*)         bad "unknown PMD $pmd"; finish ;;
esac
stack=/run/kb/tb-$KB_TB_ID/kbstackd.sock
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
link() { ip netns exec "$KB_TB_CNS" cat "/sys/class/net/$KB_TB_CIF/statistics/$1"; }
stat_of() { kbstat_of "$stack" "$1"; }

tx0=$(link tx_packets)
rx0=$(link rx_packets)

start_kbstackd "$KB_TB_SNS" "$stack" "$log" --dev="$dev" --ip=198.18.0.1/24 --core=1
mac=$(kbstat_mac "$stack")

if [ "$pmd" = af_xdp ]; then
	check "XDP program attached while running" \
		sh -c "ip -n $KB_TB_SNS -d link show dev $KB_TB_SIF | grep -q 'prog/xdp'"
fi

# A second daemon on the same control socket is refused before it starts.
err=$(ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" "$kbstackd" --dev="$dev" \
	--ip=198.18.0.1/24 2>&1)
check_eq "second kbstackd on the same KB_STACK exits 1" "$?" 1
check "it says another kbstackd runs there" grep -q "another kbstackd is running" <<<"$err"

# ARP: the first ping resolves the stack's address to the port's MAC.
check "first ping answered" sh -c "ip netns exec $KB_TB_CNS ping -c 1 -W 2 -q 198.18.0.1 >/dev/null"
neigh=$(ip -n "$KB_TB_CNS" neigh show 198.18.0.1 | awk '{ print $5 }')
check_eq "ARP resolves 198.18.0.1 to the port's MAC" "$neigh" "$mac"

# 1000 pings, all answered.
out=$(cx ping -c 1000 -i 0 -W 2 -q 198.18.0.1)
got=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
check_eq "1000 pings answered" "$got" 1000
printf '%s\n' "$out" | tail -1 | sed 's/^/    /'

# A SYN to a closed port is refused at once by an RST.
res=$(cx python3 - <<'PY'
import socket, time
s = socket.socket()
s.settimeout(3)
t = time.monotonic()
try:
    s.connect(("198.18.0.1", 81))
    print("connected")
except ConnectionRefusedError:
    print("refused %.1f" % ((time.monotonic() - t) * 1000))
except OSError as e:
    print("error", e)
PY
)
case $res in
refused*) ms=${res#refused }
	  check "closed port refused at once (${ms} ms)" \
		  awk -v m="$ms" 'BEGIN { exit !(m < 500) }' ;;
*)	  bad "closed port: $res" ;;
esac

# Counters: every frame the client sent reached kbstackd (received or
# counted as dropped by the port), every frame kbstackd sent reached it.
sleep 0.3
sent=$(( $(link tx_packets) - tx0 ))
recv=$(( $(link rx_packets) - rx0 ))
check_eq "kbstat rx_packets + port drops = frames the client sent" \
	"$(( $(stat_of rx_packets) + $(stat_of rx_drop_port) ))" "$sent"
check_eq "kbstat tx_packets = frames the client received" "$(stat_of tx_packets)" "$recv"
check "at least 1002 frames each way (ARP, 1001 pings, SYN)" test "$sent" -ge 1002
for d in rx_drop_cksum rx_drop_multiseg rx_drop_nopbuf rx_drop_input tx_drop_nombuf \
	 tx_drop_toobig tx_drop_full; do
	check_eq "no $d" "$(stat_of "$d")" 0
done

# SIGTERM: clean exit, nothing left behind.
kill -TERM "$pid"
wait_for 10 sh -c "! kill -0 $pid 2>/dev/null"
wait "$pid"
rc=$?
check_eq "kbstackd exit status after SIGTERM" "$rc" 0
pid_was=$pid
pid=
check "process gone" sh -c "! kill -0 $pid_was 2>/dev/null"
check "no process left in the server namespace" \
	sh -c "[ -z \"\$(ip netns pids $KB_TB_SNS)\" ]"
check "no XDP program left on $KB_TB_SIF" \
	sh -c "! ip -n $KB_TB_SNS -d link show dev $KB_TB_SIF | grep -q 'prog/xdp'"
check "no hugepage file left" \
	sh -c "! ls /dev/hugepages 2>/dev/null | grep -q '^kbs$pid_was'"
check "no EAL runtime directory left" test ! -e "/var/run/dpdk/kbs$pid_was"
check "stats file removed" test ! -e "$stack.stats"
check "its directory removed" test ! -e "$(dirname "$stack")"

# A killed kbstackd leaves files behind; the test bed's down removes them.
start_kbstackd "$KB_TB_SNS" "$stack" "$log" --dev="$dev" --ip=198.18.0.1/24 --core=1
check "answers again after a restart" \
	sh -c "ip netns exec $KB_TB_SNS true && ip netns exec $KB_TB_CNS ping -c 3 -i 0.1 -W 2 -q 198.18.0.1 >/dev/null"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
killed=$pid
pid=
check "SIGKILL leaves the EAL runtime directory" test -e "/var/run/dpdk/kbs$killed"
"$src/scripts/testbed" down "$KB_TB_ID" 2>/dev/null
check "testbed down removes the killed run's EAL directory" test ! -e "/var/run/dpdk/kbs$killed"
check "testbed down removes both namespaces" \
	sh -c "! ip netns list | grep -q 'kbtb-$KB_TB_ID-'"
finish
