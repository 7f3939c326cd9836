#!/usr/bin/env bash
# tests/integration/ring.sh — KB_RING sets every kb socket's rings, its TCP
# window and its send buffer (integration.ring.64k, integration.ring.4m).
#   ring.sh SIZE SCALE   SIZE as KB_RING takes it (64k, 4m), SCALE the
#                        window scale kbstackd must announce for it
# kbstackd started with --ring=SIZE says so in its ready line; a server
# under the preload (tests/impair/xfer.py) sends and receives 8 MiB
# byte-exact through rings of that size, both ends wrapping them many
# times; its SYN-ACK announces SCALE (the least that covers SIZE); and once
# a connection has exchanged a line, the window the kernel client sees is
# the ring's, within a page (Linux's snd_wnd in ss -i).
. "$(dirname "$0")/../lib/kb.sh"
need_root
size=$1 scale=$2
case $size in
*k) bytes=$((${size%k} * 1024)) ;;
*m) bytes=$((${size%m} * 1048576)) ;;
*) bytes=$size ;;
esac
spid= dpid=
cap=$(mktemp)
test_cleanup() {
	[ -z "$spid" ] || { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
	[ -z "$dpid" ] || { kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null; }
	rm -f "$cap"
}
bed_up --ring="$size"
check "kbstackd's ready line says $((bytes / 1024)) KiB rings" \
	wait_for 5 grep -q ", $((bytes / 1024)) KiB rings," "$log"
ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL=listen:9000 KB_STRICT=1 LD_PRELOAD="$lib" \
	python3 "$src/tests/impair/xfer.py" serve 9000 >"$log.srv" 2>&1 &
spid=$!
wait_for 10 grep -qs ready "$log.srv" || { bad "xfer server did not start: $(cat "$log.srv")"; finish; }

# the SYN-ACKs kbstackd sends, as the client's end sees them
ip netns exec "$KB_TB_CNS" tcpdump -l -n -i "$KB_TB_CIF" -c 1 \
	'src host 198.18.0.1 and tcp src port 9000 and tcp[tcpflags] & tcp-syn != 0' >"$cap" 2>/dev/null &
dpid=$!
sleep 1 # tcpdump listening

for dir in get put; do
	if out=$(ip netns exec "$KB_TB_CNS" timeout 60 \
		python3 "$src/tests/impair/xfer.py" $dir 198.18.0.1 9000 $((8 << 20)) 50 2>&1); then
		ok "$dir: 8 MiB byte-exact through $size rings, EOF after them (${out#* } s)"
	else
		bad "$dir: ${out:-timed out}"
	fi
done
wait_for 5 grep -q wscale "$cap"
check "the SYN-ACK announces window scale $scale ($(grep -o 'wscale [0-9]*' "$cap"))" \
	grep -q "wscale $scale\b" "$cap"

# A connection that sent "up 0" and waits: kbstackd has acknowledged the
# line with the ring's window; ss shows what the client may send.
wnd=$(ip netns exec "$KB_TB_CNS" python3 - <<'EOF'
import re, socket, subprocess, time
s = socket.create_connection(("198.18.0.1", 9000), timeout=10)
s.sendall(b"up 0\n")
time.sleep(0.5)
out = subprocess.run(["ss", "-tin", "dst", "198.18.0.1", "dport", "=", "9000"],
                     capture_output=True, text=True).stdout
m = re.search(r"snd_wnd:(\d+)", out)
print(m.group(1) if m else "none")
s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode().split()[0])
EOF
)
check_eq "a connection that sent a line: the server answered ok" "$(sed -n 2p <<<"$wnd")" ok
w=$(head -1 <<<"$wnd")
check "the client's send window is the ring's, within a page (snd_wnd $w of $bytes)" \
	test "$w" != none -a "$w" -le "$bytes" -a "$w" -gt $((bytes - 4096))
finish
