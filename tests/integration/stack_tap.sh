#!/usr/bin/env bash
# stack_tap.sh — kbstackd on DPDK's net_tap, the one test-bed PMD that
# offers checksum offloads (rx verification and tx generation), so the
# offload paths run for real: pings and an RST must carry checksums the
# kernel accepts, and a frame with a bad TCP checksum must be dropped and
# counted as rx_drop_cksum.
#
# Layout: kbstackd on core 1 in its own namespace; the kernel side of the
# tap in the same namespace is the client.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root

id=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=kbtap-$id
ifc=kbtap$id
stack=/run/kb/tap-$id/kbstackd.sock
log=$(mktemp)
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -f "$log"
}
trap cleanup EXIT
ip netns add "$ns" || { bad "create namespace $ns"; finish; }
ip -n "$ns" link set lo up
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

stat_of() { kbstat_of "$stack" "$1"; }
nx() { ip netns exec "$ns" taskset -c 0 "$@"; }

start_kbstackd "$ns" "$stack" "$log" --dev="net_tap0,iface=$ifc" --ip=198.18.1.1/24 --core=1
check "port reports rx and tx checksum offload" \
	grep -q 'rx checksum offload, tx checksum offload' "$log"
ip -n "$ns" addr add 198.18.1.2/24 dev "$ifc"
ip -n "$ns" link set "$ifc" up

out=$(nx ping -c 200 -i 0 -W 2 -q 198.18.1.1)
got=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
check_eq "200 pings answered over net_tap" "$got" 200

res=$(nx python3 -c '
import socket
s = socket.socket(); s.settimeout(3)
try:
    s.connect(("198.18.1.1", 81)); print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("error", e)')
check_eq "RST with an offloaded TCP checksum accepted by the kernel" "$res" refused

# A SYN whose TCP checksum is wrong, sent raw on the tap: the port flags it,
# kbstackd drops it before lwIP and counts it.
mac=$(kbstat_mac "$stack")
before=$(stat_of rx_drop_cksum)
nx python3 - "$ifc" "$mac" <<'PY'
import socket, struct, sys
ifc, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = socket.inet_aton("198.18.1.2"), socket.inet_aton("198.18.1.1")
tcp = struct.pack("!HHIIBBHHH", 40001, 80, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
good = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
tcp = tcp[:16] + struct.pack("!H", good ^ 0x1234) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifc, 0))
s.send(mac + s.getsockname()[4] + b"\x08\x00" + ip + tcp)
PY
sleep 0.3
check_eq "bad TCP checksum counted as rx_drop_cksum" "$(stat_of rx_drop_cksum)" "$((before + 1))"

kill -TERM "$pid"
wait "$pid"
check_eq "kbstackd exit status after SIGTERM" "$?" 0
pid=
check "stats file removed" test ! -e "$stack.stats"
finish
