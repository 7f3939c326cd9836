#!/usr/bin/env python3
"""ooseq_peer.py IFACE STACK_MAC STACK_IP PORT CONNS SEGS — a hostile peer
on the wire: from an address of its own (198.18.0.50, answering ARP for
it), it opens CONNS connections to STACK_IP:PORT, then on each sends SEGS
one-byte segments just beyond a hole it never fills, so that each sits in
the stack's out-of-order queue holding a packet buffer. Prints
"opened N" (handshakes completed) and "sent M" (out-of-order segments).
Run in the client namespace of a test bed (raw socket: root)."""
import select
import socket
import struct
import sys
import time

ifc, mac_s, stack_ip, port, conns, segs = sys.argv[1:7]
port, conns, segs = int(port), int(conns), int(segs)
stack_mac = bytes.fromhex(mac_s.replace(":", ""))
my_mac = bytes.fromhex("020000000032")
my_ip = socket.inet_aton("198.18.0.50")
dst_ip = socket.inet_aton(stack_ip)

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((ifc, 0))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF


def tcp_frame(sport, seq, ack, flags, data=b"", opts=b""):
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, port, seq, ack, off << 4, flags, 65535, 0, 0) + opts
    pseudo = my_ip + dst_ip + struct.pack("!BBH", 0, 6, len(h) + len(data))
    c = csum(pseudo + h + data)
    h = h[:16] + struct.pack("!H", c) + h[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(h) + len(data), 0, 0x4000, 64, 6, 0, my_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return stack_mac + my_mac + b"\x08\x00" + ip + h + data


def answer_arp(f):
    """Answer an ARP request for our address; True if F was one."""
    if len(f) < 42 or f[12:14] != b"\x08\x06" or f[20:22] != b"\x00\x01" or f[38:42] != my_ip:
        return False
    rep = f[6:12] + my_mac + b"\x08\x06" + f[14:20] + b"\x00\x02" + my_mac + my_ip + f[22:28] + f[28:32]
    s.send(rep.ljust(60, b"\0"))
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
