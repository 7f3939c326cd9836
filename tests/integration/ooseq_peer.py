#!/usr/bin/env python3
"""ooseq_peer.py IFACE STACK_MAC PORT CONNS SEGS [KEEP] — a hostile peer on
the wire: from an address of its own (198.18.0.50, answering ARP for it),
it opens CONNS connections to 198.18.0.1:PORT, then on each sends SEGS
one-byte segments just beyond a hole it never fills, so that each sits in
the stack's out-of-order queue holding a packet buffer. Prints
"opened N" (handshakes completed) and "sent M" (out-of-order segments).
With KEEP, an honest connection comes first: KEEP segments beyond its
hole, then the flood, then the byte that fills its hole at once; prints
"keeper acked A of B" — the bytes the stack's acknowledgment covers within
3 s (the filling byte sent again every 0.3 s), of the KEEP + 1 sent (all of them when what it held beyond the
hole was kept through the flood). Source ports from PEER_SPORT (default
20000). Run in the client namespace of a test bed (raw socket: root)."""
import os
import select
import socket
import struct
import sys
import time

# Frames as the fuzz corpus builds them (to 198.18.0.1, the bed's stack too).
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz"))
import gen_corpus as gc  # noqa: E402

ifc, mac_s, port, conns, segs = sys.argv[1:6]
port, conns, segs = int(port), int(conns), int(segs)
keep = int(sys.argv[6]) if len(sys.argv) > 6 else 0
sport0 = int(os.environ.get("PEER_SPORT", "20000"))
stack_mac = bytes.fromhex(mac_s.replace(":", ""))
my_mac = bytes.fromhex("020000000032")
my_ip = socket.inet_aton("198.18.0.50")

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((ifc, 0))


def tcp_frame(sport, seq, ack, flags, data=b"", opts=b""):
    f = gc.tcp(sport, seq, ack, flags, data, opts, dport=port, src=my_ip)
    return stack_mac + my_mac + f[12:]


def answer_arp(f):
    """Answer an ARP request for our address; True if F was one."""
    if len(f) < 42 or f[12:14] != b"\x08\x06" or f[20:22] != b"\x00\x01" or f[38:42] != my_ip:
        return False
    rep = gc.arp(2, my_mac, my_ip, f[22:28], f[28:32])
    s.send((f[6:12] + rep[6:]).ljust(60, b"\0"))
    return True


def from_stack(sport, wait):
    """The stack's next segment to SPORT within WAIT s (answering ARP
    meanwhile): (seq, ack, flags), or None."""
    end = time.time() + wait
    while time.time() < end:
        r, _, _ = select.select([s], [], [], 0.05)
        if not r:
            continue
        f = s.recv(2048)
        if answer_arp(f) or len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6:
            continue
        ihl = (f[14] & 15) * 4
        t = f[14 + ihl:]
        sp, dp, seq, ack = struct.unpack("!HHII", t[:12])
        if f[30:34] == my_ip and sp == port and dp == sport:
            return seq, ack, t[13]
    return None


def synack(sport):
    """The stack's SYN-ACK to SPORT: its ISN, or None."""
    end = time.time() + 3
    while time.time() < end:
        got = from_stack(sport, end - time.time())
        if got and got[2] & 0x12 == 0x12:
            return got[0]
    return None


def open_conn(sport, isn):
    """Connect from SPORT: the stack's ISN, or None."""
    s.send(tcp_frame(sport, isn, 0, 0x02, opts=b"\x02\x04\x05\xb4"))  # SYN, MSS 1460
    theirs = synack(sport)
    if theirs is not None:
        s.send(tcp_frame(sport, isn + 1, theirs + 1, 0x10))
    return theirs


def send_beyond(sport, isn, theirs, n):
    """N one-byte segments beyond byte isn+1, the hole: they all wait."""
    for k in range(n):
        s.send(tcp_frame(sport, isn + 2 + k, theirs + 1, 0x10, b"x"))
    while select.select([s], [], [], 0)[0]:  # keep answering ARP
        answer_arp(s.recv(2048))
    return n


opened = sent = 0
flood = []
for i in range(conns):
    sport, isn = sport0 + i, 1000000 * (i + 1)
    theirs = open_conn(sport, isn)
    if theirs is None:
        continue
    opened += 1
    if keep:  # the keeper opens last, so the flood's frames come after it
        flood.append((sport, isn, theirs))
    else:  # open while flooding
        sent += send_beyond(sport, isn, theirs, segs)
if keep:
    k_sport, k_isn = sport0 + conns, 7000000
    k_theirs = open_conn(k_sport, k_isn)
    if k_theirs is not None:
        send_beyond(k_sport, k_isn, k_theirs, keep)
    for sport, isn, theirs in flood:
        sent += send_beyond(sport, isn, theirs, segs)
print("opened", opened)
print("sent", sent)
if keep:
    acked = 0
    end = time.time() + 3
    while k_theirs is not None and acked <= keep and time.time() < end:
        # the hole, sent again every 0.3 s until acknowledged (a frame
        # lost on a loaded bed is not the stack's doing)
        s.send(tcp_frame(k_sport, k_isn + 1, k_theirs + 1, 0x10, b"x"))
        again = min(time.time() + 0.3, end)
        while time.time() < again and acked <= keep:
            got = from_stack(k_sport, again - time.time())
            if got:
                acked = max(acked, (got[1] - (k_isn + 1)) & 0xffffffff)
    print("keeper acked %d of %d" % (acked, keep + 1))
