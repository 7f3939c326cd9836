#!/usr/bin/env bash
# faults.sh — kbstackd against misbehaving applications and bad frames:
#   - an application scribbling on its own shared region (kbtest_hostile)
#     while a well-behaved server keeps serving byte-exact;
#   - an application killed with open connections: they end at the client
#     (as on Linux: what it had queued, then FIN) and its slots and context
#     are freed;
#   - an application that writes and exits at once (closing, or killed):
#     every byte its writes accepted reaches the client, then FIN;
#   - malformed frames (truncated, bad lengths, bad offsets, random bytes)
#     dropped without harm.
# kbstackd must be alive and serving after each. Layout: kbstackd core 1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/kb.sh"
need_root
hostile=${KBTEST_HOSTILE:-$src/build/tests/kbtest_hostile}

www=$(mktemp -d)
srv=
test_cleanup() {
	[ -n "$srv" ] && { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }
	rm -rf "$www"
}
bed_up
head -c 1048576 /dev/urandom >"$www/f1m"
chmod -R a+rX "$www"
want=$(sha256sum <"$www/f1m")
cx() { ip netns exec "$KB_TB_CNS" taskset -c 0 "$@"; }
kb() {
	exec ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL="${ACCEL:-listen:8080}" \
		LD_PRELOAD="$lib" taskset -c 0 "$@"
}
alive() { kill -0 "$pid" 2>/dev/null && kb_running "$stack"; }
serves() { [ "$(cx curl -s --max-time 10 http://198.18.0.1:8080/f1m | sha256sum)" = "$want" ]; }

kb "$httpd" --port 8080 --root "$www" >/dev/null 2>&1 &
srv=$!
wait_for 10 serves
check "a well-behaved server serves through kbstackd" serves

# 1. A hostile application in the same kbstackd.
seed=$RANDOM
echo "# hostile seed $seed (replay: kbtest_hostile STACK 6 $seed)"
ip netns exec "$KB_TB_SNS" taskset -c 0 "$hostile" "$stack" 6 "$seed" >"$log.h" 2>&1 &
hpid=$!
# Live flows for it: connections to the ports it listens on, carrying data
# both ways, so its scribbles meet rings, accept queues and PCBs in use.
cx timeout 8 python3 - <<'PY' >/dev/null 2>&1 &
import random, socket, time
end = time.time() + 6
conns = []
while time.time() < end:
    try:
        s = socket.create_connection(("198.18.0.1", 9000 + random.randrange(50)), timeout=0.2)
        s.settimeout(0.05)
        s.sendall(b"x" * random.randrange(1, 200000))
        conns.append(s)
    except OSError:
        time.sleep(0.01)
    for c in conns[-8:]:
        try:
            c.recv(65536)
        except OSError:
            pass
    if len(conns) > 64:
        for c in conns[:32]:
            c.close()
        del conns[:32]
PY
flows=$!
good=0 total=0
end=$((SECONDS + 5))
while [ $SECONDS -lt $end ]; do
	total=$((total + 1))
	serves && good=$((good + 1))
done
wait "$hpid"
wait "$flows"
check "the hostile application ran ($(cat "$log.h"))" grep -q scribbles "$log.h"
check_eq "while it scribbled: every fetch of the good server byte-exact ($total)" "$good" "$total"
check "kbstackd alive after the hostile application" alive
cut=$(( $(kbstat_of "$stack" ctx_reset_ring) + $(kbstat_of "$stack" ctx_reset_accept) ))
check "kbstackd's log has no sanitizer report" sanitizer_clean
check "kbstackd cut off the hostile contexts and counted them by reason ($cut)" [ "$cut" -ge 1 ]
check "the hostile application's context is freed after it exits" \
	wait_for 5 kbstat_is "$stack" contexts 1
check "the good server still serves" serves

# 2. An application killed with open connections.
only_good_server_left() { kbstat_is "$stack" contexts 1 && kbstat_is "$stack" sockets 1; }
ACCEL=listen:8082 kb "$httpd" --port 8082 --root "$www" >/dev/null 2>&1 &
victim=$!
wait_for 10 cx curl -s -o /dev/null http://198.18.0.1:8082/f1m
out=$(cx timeout 20 python3 - "$victim" <<'PY'
import os, socket, signal, sys, time
conns = []
for i in range(10):
    s = socket.create_connection(("198.18.0.1", 8082), timeout=5)
    s.sendall(b"GET /f1m HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(1000)          # the response has started; most of it is unread
    conns.append(s)
os.kill(int(sys.argv[1]), signal.SIGKILL)
ended = 0
for s in conns:
    try:
        while s.recv(65536):
            pass
        ended += 1        # EOF
    except ConnectionResetError:
        ended += 1        # reset
    except socket.timeout:
        pass
print(ended)
PY
)
wait "$victim" 2>/dev/null
check_eq "SIGKILLed server: all 10 of its open connections ended at the client" "$out" 10
check "its slots and context are freed" \
	wait_for 5 only_good_server_left
check "kbstackd alive after the killed server" alive

# 2b. An application that writes, then exits at once (closing first, or
# killed without closing): as on Linux, every byte a write() accepted is
# still delivered, then FIN. The client reads all but the last 256 KiB,
# then the rest (most of it still queued in kbstackd) only after the exit.
for how in close-exit sigkill; do
	closed0=$(kbstat_of "$stack" tcp_closed_exit)
	ip netns exec "$KB_TB_SNS" env KB_STACK="$stack" KB_ACCEL=listen:8083 LD_PRELOAD="$lib" \
		taskset -c 0 python3 - "$how" <<'PY' &
import os, signal, socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 8083)); l.listen(1)
c, _ = l.accept()
c.sendall(bytes(range(256)) * 12288)     # 3 MiB; the last of it still queued
if sys.argv[1] == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
c.close()
os._exit(0)
PY
	victim=$!
	got=$(cx timeout 30 python3 - "$victim" <<'PY'
import hashlib, os, socket, sys, time
for _ in range(100):
    try:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # the rest waits in kb
        s.settimeout(10)
        s.connect(("198.18.0.1", 8083)); break
    except OSError:
        time.sleep(0.1)
h, n = hashlib.sha256(), 0
first = 3145728 - 262144  # all but 256 KiB, so the server's sendall can end
while n < first:
    b = s.recv(min(65536, first - n))
    h.update(b); n += len(b)
def alive(pid):  # not gone, not a zombie (its /proc entry may go while read)
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
while alive(sys.argv[1]):
    time.sleep(0.05)      # the server has gone before we read a byte
time.sleep(0.2)
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        h.update(b); n += len(b)
    print(n, h.hexdigest(), "eof")
except OSError as e:
    print(n, h.hexdigest(), type(e).__name__)
PY
)
	reap 10 "$victim"
	check_eq "$how after writing 3 MiB: the client reads every byte, then EOF" "$got" \
		"3145728 $(python3 -c 'import hashlib; print(hashlib.sha256(bytes(range(256)) * 12288).hexdigest())') eof"
	if [ "$how" = sigkill ]; then
		check "sigkill: kbstackd closed its sockets for it (tcp_closed_exit +2: listener, connection)" \
			test "$(kbstat_of "$stack" tcp_closed_exit)" -eq $((closed0 + 2))
	fi
	check "$how: its slots and context are freed once all is sent" wait_for 5 only_good_server_left
done

# 3. Malformed frames.
mac=$(kbstat_mac "$stack")
before=$(kbstat_of "$stack" rx_packets)
ip netns exec "$KB_TB_CNS" python3 - "$KB_TB_CIF" "$mac" <<'PY'
import os, random, socket, struct, sys
ifc, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifc, 0))
me = s.getsockname()[4]
src, dst = socket.inet_aton("198.18.0.2"), socket.inet_aton("198.18.0.1")
rnd = random.Random(7)
def ip(proto, payload, ihl=5, tot=None, frag=0):
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot if tot is not None else 20 + len(payload),
                       1, frag, 64, proto, 0, src, dst) + payload
frames = []
for i in range(300):
    kind = i % 6
    if kind == 0:   # truncated everything
        frames.append(mac + me + b"\x08\x00" + os.urandom(rnd.randint(0, 19)))
    elif kind == 1: # IP total length larger than the frame
        frames.append(mac + me + b"\x08\x00" + ip(6, os.urandom(8), tot=1500))
    elif kind == 2: # IHL below 5 / above the frame
        frames.append(mac + me + b"\x08\x00" + ip(6, os.urandom(30), ihl=rnd.choice([0, 1, 4, 15])))
    elif kind == 3: # TCP data offset past the segment
        tcp = struct.pack("!HHIIBBHHH", 40000, 8080, 1, 0, 15 << 4, 0x02, 1000, 0, 0)
        frames.append(mac + me + b"\x08\x00" + ip(6, tcp))
    elif kind == 4: # fragments that never complete
        frames.append(mac + me + b"\x08\x00" + ip(1, os.urandom(64), frag=0x2000 | rnd.randint(0, 100)))
    else:           # random bytes, ARP and IPv4 ethertypes
        frames.append(mac + me + rnd.choice([b"\x08\x06", b"\x08\x00"]) + os.urandom(rnd.randint(0, 200)))
for f in frames:
    s.send(f.ljust(60, b"\0"))
PY
sleep 0.5
after=$(kbstat_of "$stack" rx_packets)
check "300 malformed frames reached kbstackd ($((after - before)) frames)" test $((after - before)) -ge 300
check "kbstackd alive after malformed frames" alive
check "the good server still serves after malformed frames" serves
check "ping still answered" sh -c "ip netns exec $KB_TB_CNS ping -c 3 -i 0.2 -W 2 -q 198.18.0.1 >/dev/null"
rm -f "$log.h"
finish
