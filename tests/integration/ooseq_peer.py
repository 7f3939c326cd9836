#!/usr/bin/env python3
"""ooseq_peer.py IFACE STACK_MAC PORT CONNS SEGS — a hostile peer on the
wire: from an address of its own (198.18.0.50, answering ARP for it), it
opens CONNS connections to 198.18.0.1:PORT, then on each sends SEGS
one-byte segments just beyond a hole it never fills, so that each sits in
the stack's out-of-order queue holding a packet buffer. Prints
"opened N" (handshakes completed) and "sent M" (out-of-order segments).
Run in the client namespace of a test bed (raw socket: root)."""
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


def synack(sport):
    """The stack's SYN-ACK to SPORT (answering ARP meanwhile): its ISN, or None."""
    end = time.time() + 3
    while time.time() < end:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        f = s.recv(2048)
        if answer_arp(f) or len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6:
            continue
        ihl = (f[14] & 15) * 4
        t = f[14 + ihl:]
        sp, dp, seq = struct.unpack("!HHI", t[:8])
        if f[30:34] == my_ip and sp == port and dp == sport and t[13] & 0x12 == 0x12:
            return seq
    return None


opened = sent = 0
for i in range(conns):
    sport = 20000 + i
    isn = 1000000 * (i + 1)
    s.send(tcp_frame(sport, isn, 0, 0x02, opts=b"\x02\x04\x05\xb4"))  # SYN, MSS 1460
    theirs = synack(sport)
    if theirs is None:
        continue
    s.send(tcp_frame(sport, isn + 1, theirs + 1, 0x10))
    opened += 1
    for k in range(segs):  # byte isn+1 never comes: everything after it waits
        s.send(tcp_frame(sport, isn + 2 + k, theirs + 1, 0x10, b"x"))
        sent += 1
    while select.select([s], [], [], 0)[0]:  # keep answering ARP
        answer_arp(s.recv(2048))
print("opened", opened)
print("sent", sent)
