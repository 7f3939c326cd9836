#!/usr/bin/env python3
"""gen_corpus.py — write the seeds and regression inputs of fuzz_rx.

    tests/fuzz/gen_corpus.py [DIR]      (default: tests/fuzz/corpus/rx)

Each input is what a peer on the wire would send in one exchange with
kbstackd, in fuzz_rx.c's format: records of ctl (1 byte: bits 0-3 the time
to let pass, an index into fz_ms[]; bits 4-7 what the application does
next, enum fz_act), frame length (2 bytes, big endian) and the Ethernet
frame. The peer knows what the stack will answer: every ISN is FZ_ISN and
the application echoes what it reads, so the seeds acknowledge the stack's
data exactly.

seed-*: valid exchanges, one feature each. regress-*: inputs that crashed
fuzz_rx once, kept so that every CI run replays them (a crash found later
may also be kept as libFuzzer saved it, under a regress- name).
The addresses and numbers below are those of tests/fuzz/fz.h.
"""
import os
import struct
import sys

STACK_IP = bytes([198, 18, 0, 1])
PEER_IP = bytes([198, 18, 0, 2])
STACK_MAC = bytes(6)  # what net_ring gives the port
PEER_MAC = bytes([2, 0, 0, 0, 0, 2])
BCAST = b"\xff" * 6
PORT = 80
PEER_PORT = 8080
LPORT = 50000
ISN = 0x4B420000

# enum fz_act
(NONE, HOLD, CLOSE, SHUT_WR, BULK, OPTS, RELISTEN, CLOSE_ALL, CONNECT,
 EXIT, CHILD_EXIT, READ_SOME) = range(12)
# fuzz_rx.c's fz_ms[]: the times a record can let pass, in ms
MS = [0, 1, 10, 50, 100, 200, 500, 1000, 2000, 3000, 5000, 10000, 20000,
      30000, 65000, 130000]

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def rec(frame=b"", t=0, act=NONE, bbr=False, burst=False):
    """A record: t ms pass (a value of MS), then frame, then act; with bbr,
    connections the record makes use BBR (fuzz_rx.c's length bit 15); with
    burst, the frame only waits for the next record's, to go in one burst
    with it (bit 14; t and act are not used then)."""
    return (bytes([act << 4 | MS.index(t)]) +
            struct.pack(">H", len(frame) | (0x8000 if bbr else 0) |
                        (0x4000 if burst else 0)) + frame)


def csum(data, start=0):
    if len(data) % 2:
        data += b"\0"
    s = start + sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(payload, etype=0x0800, dst=STACK_MAC, src=PEER_MAC):
    return dst + src + struct.pack(">H", etype) + payload


def arp(op, sha, spa, tha, tpa):
    body = struct.pack(">HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + tha + tpa
    return eth(body, 0x0806, BCAST if op == 1 else STACK_MAC, sha)


def ip(proto, payload, src=PEER_IP, dst=STACK_IP, ident=1, frag=0, opts=b"",
       bad=False, ttl=64):
    ihl = 5 + len(opts) // 4
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload),
                      ident, frag, ttl, proto, 0, src, dst) + opts
    c = csum(hdr) ^ (0x5A5A if bad else 0)
    return hdr[:10] + struct.pack(">H", c) + hdr[12:] + payload


def tcp(sport, seq, ack, flags, data=b"", opts=b"", win=65535, dport=PORT,
        src=PEER_IP, bad=False):
    """A TCP segment from src:sport to the stack's dport, in a frame."""
    off = (20 + len(opts)) // 4
    hdr = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF,
                      ack & 0xFFFFFFFF, off << 4, flags, win, 0, 0) + opts
    seg = hdr + data
    pseudo = sum(struct.unpack(">HHHH", src + STACK_IP)) + 6 + len(seg)
    c = csum(seg, pseudo) ^ (0x5A5A if bad else 0)
    return eth(ip(6, seg[:16] + struct.pack(">H", c) + seg[18:], src=src))


def icmp_echo(ident, seq, data, bad=False):
    body = struct.pack(">BBHHH", 8, 0, 0, ident, seq) + data
    c = csum(body) ^ (0x5A5A if bad else 0)
    return body[:2] + struct.pack(">H", c) + body[4:]


# TCP options: MSS 1460, window scale 7, SACK permitted, timestamps.
OPT_MSS = b"\x02\x04\x05\xb4"
OPT_WS = b"\x01\x03\x03\x07"
OPT_SACKP = b"\x01\x01\x04\x02"
OPT_TS = b"\x01\x01\x08\x0a\x00\x00\x10\x00\x00\x00\x00\x00"
SYN_OPTS = OPT_MSS + OPT_WS + OPT_SACKP + OPT_TS


class Peer:
    """One TCP connection from the peer's side; tracks both sequence spaces."""

    def __init__(self, sport, seq, opts=SYN_OPTS):
        self.sport, self.seq, self.opts = sport, seq, opts
        self.ack = ISN + 1  # the stack's next sequence number, once synced

    def syn(self):
        f = tcp(self.sport, self.seq, 0, SYN, opts=self.opts)
        self.seq += 1
        return f

    def seg(self, flags=ACK, data=b"", seq=None, win=512):
        s = self.seq if seq is None else seq
        return tcp(self.sport, s, self.ack, flags, data, win=win)

    def send(self, data, flags=ACK | PSH):
        f = self.seg(flags, data)
        self.seq += len(data)
        return f

    def fin(self):
        f = self.seg(FIN | ACK)
        self.seq += 1
        return f

    def got(self, n):
        """The stack sent n more sequence numbers (data or FIN)."""
        self.ack += n

    def rst(self):
        return tcp(self.sport, self.seq, 0, RST)

    def open(self):
        return [rec(self.syn()), rec(self.seg())]


def tcp_session():
    p = Peer(40000, 1000)
    req = b"GET / HTTP/1.0\r\n\r\n"
    r = p.open() + [rec(p.send(req))]
    p.got(len(req))  # the echo
    r += [rec(p.seg(), t=200)]  # ack it, 200 ms later (a delayed ACK ran)
    r += [rec(p.fin())]  # EOF: the application closes, the stack's FIN
    p.got(1)
    r += [rec(p.seg())]
    return r


def tcp_reset():
    p = Peer(40001, 2000)
    r = p.open() + [rec(p.send(b"partial"))]
    return r + [rec(p.rst())]


def tcp_time_wait_reuse():
    # The application closes first: FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT; a new
    # SYN on the same 4-tuple reopens it (stack/kbs_tcp_hooks.c).
    p = Peer(40002, 5000)
    r = p.open() + [rec(p.send(b"hello"))]
    p.got(5)
    r += [rec(p.seg(), act=CLOSE)]  # ack the echo; the application closes
    p.got(1)
    r += [rec(p.seg())]  # ack the FIN: FIN_WAIT_2
    r += [rec(p.fin(), t=10)]  # the peer's FIN: TIME_WAIT
    q = Peer(40002, 90000)
    r += [rec(q.syn(), t=500), rec(q.seg()), rec(q.send(b"again"))]
    q.got(5)
    return r + [rec(q.rst())]


def tcp_out_of_order():
    p = Peer(40003, 7000)
    r = p.open()
    r += [rec(p.seg(ACK | PSH, b"world", seq=p.seq + 5))]  # a gap: SACK
    r += [rec(p.seg(ACK | PSH, b"hello"), act=HOLD)]  # fills it, unread
    p.seq += 10
    return r + [rec(p.fin(), act=CLOSE)]  # close with data unread: RST


def tcp_bulk_retransmit():
    p = Peer(40004, 11000)
    r = p.open() + [rec(act=BULK)]  # 64 KiB queued: a window's worth sent
    r += [rec(p.seg())] * 3  # nothing acknowledged: duplicate ACKs
    p.got(1460)
    r += [rec(p.seg())]  # one segment acknowledged
    r += [rec(t=5000)]  # 5 s: retransmission timeout
    p.got(1460 * 2)
    r += [rec(p.seg()), rec(t=20000)]
    return r + [rec(p.rst())]


def tcp_zero_window():
    # The peer's window closes while 64 KiB wait to be sent: the stack
    # probes it (persist timer) until it opens again.
    p = Peer(40007, 17000)
    r = p.open() + [rec(act=BULK)]
    p.got(1460)
    r += [rec(p.seg(win=0)), rec(t=5000), rec(t=10000)]
    return r + [rec(p.seg(win=512), t=100), rec(t=200), rec(p.rst())]


def tcp_read_some_child():
    # The application reads 100 bytes at a time (small window updates);
    # then the child process that accepted the connection dies.
    p = Peer(40008, 19000)
    r = p.open() + [rec(p.send(b"z" * 400), act=HOLD), rec(act=READ_SOME)]
    p.got(100)
    r += [rec(p.seg(), act=READ_SOME), rec(act=READ_SOME)]
    p.got(200)
    return r + [rec(p.seg(), act=CHILD_EXIT), rec(p.fin(), t=200)]


def tcp_keepalive():
    # TCP_NODELAY and keepalive after 1 s, 1 s apart, 2 probes: the peer
    # never answers, lwIP gives up and the application sees the error.
    p = Peer(40005, 13000)
    r = p.open() + [rec(act=OPTS), rec(t=2000), rec(t=2000), rec(t=2000)]
    return r + [rec(t=2000)]


def tcp_half_close():
    p = Peer(40006, 15000)
    r = p.open() + [rec(p.send(b"abc"))]
    p.got(3)
    r += [rec(p.seg(), act=SHUT_WR)]  # the stack's FIN
    p.got(1)
    r += [rec(p.send(b"more"))]  # read, not echoed: our side is shut
    r += [rec(p.fin())]
    return r + [rec(p.seg(), t=200)]


def tcp_backlog():
    # More handshakes than the listener's backlog (16), none accepted yet;
    # then the listener closes and listens again: the queued ones reset.
    r = [rec(Peer(41000 + i, 100 * i).syn(), act=HOLD) for i in range(20)]
    done = []
    for i in range(4):
        p = Peer(41000 + i, 100 * i + 1)
        done.append(rec(p.seg(), act=HOLD))
    return r + done + [rec(act=RELISTEN)]


def tcp_syn_variants():
    r = [rec(tcp(42000, 1, 0, SYN, opts=SYN_OPTS))]  # all options
    r.append(rec(tcp(42001, 1, 0, SYN)))  # no options
    r.append(rec(tcp(42002, 1, 0, SYN, opts=OPT_MSS)))
    r.append(rec(tcp(42003, 1, 0, SYN, opts=b"\x02\x04\x00\x10")))  # MSS 16
    r.append(rec(tcp(42004, 1, 0, SYN, opts=b"\x03\x03\x0e\x00")))  # wscale 14
    r.append(rec(tcp(42005, 1, 0, SYN | FIN)))
    r.append(rec(tcp(42006, 1, 0, SYN, dport=81)))  # closed port: RST
    r.append(rec(tcp(42007, 1, 0, SYN, bad=True)))  # bad checksum: dropped
    r.append(rec(tcp(42008, 5, 9, ACK)))  # no connection: RST
    return r


def tcp_close_all():
    p, q = Peer(43000, 1), Peer(43001, 1)
    r = p.open() + q.open() + [rec(p.send(b"x" * 100)), rec(q.send(b"y" * 100))]
    return r + [rec(act=CLOSE_ALL), rec(t=500)]


def tcp_connect():
    # The application connects out: SYN from FZ_LPORT to the peer's 8080.
    # lwIP's active open sends its SYN with sequence number ISN - 1.
    syn_ack = tcp(PEER_PORT, 7000, ISN, SYN | ACK, opts=OPT_MSS + OPT_WS,
                  dport=LPORT)
    r = [rec(act=CONNECT), rec(syn_ack)]
    r.append(rec(tcp(PEER_PORT, 7001, ISN, ACK | PSH, b"hi", dport=LPORT)))
    r.append(rec(tcp(PEER_PORT, 7003, ISN + 2, FIN | ACK, dport=LPORT)))  # EOF
    return r + [rec(tcp(PEER_PORT, 7004, ISN + 3, ACK, dport=LPORT))]


def tcp_connect_fail():
    # Refused (RST), then a second connect that nobody answers: SYNs
    # retransmitted until lwIP gives up (about 190 s).
    rst = tcp(PEER_PORT, 0, ISN, RST | ACK, dport=LPORT)
    r = [rec(act=CONNECT), rec(rst), rec(act=CONNECT)]
    return r + [rec(t=130000), rec(t=65000), rec(t=1000)]


def app_exit():
    # The application dies with one connection's echo not yet acknowledged
    # and another's data unread: the first is finished (data, then FIN) by
    # kbstackd for the dead application, the second reset.
    p, q = Peer(45000, 1), Peer(45001, 1)
    r = p.open() + q.open() + [rec(p.send(b"echo me"))]
    p.got(7)
    r += [rec(q.send(b"never read"), act=EXIT)]
    r += [rec(p.seg())]  # the echo acknowledged: kbstackd sends FIN
    p.got(1)
    return r + [rec(p.fin())]


def regress_listen_stale_accept_queue():
    # A listener closed with a connection queued, a new one on the same
    # slot: accept() must not see the old queue (kbs_op_listen).
    p = Peer(41001, 100)
    return [rec(p.syn(), act=HOLD), rec(p.seg(), act=HOLD), rec(act=RELISTEN)]


def regress_lwip_etharp_short():
    # An ARP frame with 1 byte after the Ethernet header (an lwIP bug,
    # stack/lwip-patches/0001-etharp-short-frame.patch).
    return [rec(eth(b"\x00", 0x0806, BCAST))]


def regress_lwip_ip4_short():
    # An IPv4 frame with 3 bytes after the Ethernet header (an lwIP bug,
    # stack/lwip-patches/0002-ip4-short-header.patch).
    return [rec(eth(b"\x45\x00\x00", 0x0800))]


def arp_frames():
    other = bytes([2, 0, 0, 0, 0, 3])
    return [
        rec(arp(1, PEER_MAC, PEER_IP, b"\0" * 6, STACK_IP)),  # who-has us
        rec(arp(1, other, bytes([198, 18, 0, 3]), b"\0" * 6, STACK_IP)),
        rec(arp(2, other, bytes([198, 18, 0, 3]), STACK_MAC, STACK_IP)),  # reply
        rec(arp(1, other, bytes([198, 18, 0, 3]), b"\0" * 6, bytes([198, 18, 0, 9]))),
        rec(t=130000),  # entries age
    ]


def icmp_frames():
    data = bytes(range(56))
    stranger = bytes([198, 18, 0, 9])
    smac = bytes([2, 0, 0, 0, 0, 9])
    return [
        rec(eth(ip(1, icmp_echo(1, 1, data)))),
        rec(eth(ip(1, icmp_echo(1, 2, data, bad=True)))),  # bad ICMP checksum
        rec(eth(ip(1, icmp_echo(1, 3, data), bad=True))),  # bad IP checksum
        # a host we have no ARP entry for: the reply waits for ARP
        rec(eth(ip(1, icmp_echo(2, 1, data), src=stranger), src=smac)),
        rec(arp(2, smac, stranger, STACK_MAC, STACK_IP)),
    ]


def fragments():
    data = bytes(i & 0xFF for i in range(1200))
    echo = icmp_echo(3, 1, data)
    a, b = echo[:512], echo[512:]
    MF = 0x2000
    r = [rec(eth(ip(1, b, ident=7, frag=512 // 8))),  # second half first
         rec(eth(ip(1, a, ident=7, frag=MF)))]  # reassembled: a fragmented reply
    r.append(rec(eth(ip(1, a, ident=8, frag=MF))))  # never completed
    r.append(rec(eth(ip(1, a[:256], ident=9, frag=MF))))  # overlapping pieces
    r.append(rec(eth(ip(1, echo[128:], ident=9, frag=128 // 8))))
    r.append(rec(t=20000))  # 20 s: unfinished datagrams time out
    return r


def icmp_big_echo():
    # An echo request of 2000 bytes in two fragments: the reply is too big
    # for the MTU and leaves fragmented (ip4_frag).
    echo = icmp_echo(6, 1, bytes(i * 7 & 0xFF for i in range(1992)))
    a, b = echo[:1480], echo[1480:]
    return [rec(eth(ip(1, a, ident=10, frag=0x2000))),
            rec(eth(ip(1, b, ident=10, frag=1480 // 8)))]


def misc_frames():
    udp = struct.pack(">HHHH", 5353, 53, 12, 0) + b"abcd"
    ipopt = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL
    return [
        rec(eth(ip(17, udp))),  # no UDP socket: ICMP port unreachable
        rec(eth(ip(6, tcp(44000, 1, 0, SYN)[34:], opts=ipopt))),  # IP options
        rec(eth(b"\x60" + b"\0" * 39, 0x86DD)),  # IPv6: not ours
        rec(eth(ip(1, icmp_echo(4, 1, b"ttl"), ttl=0))),
        rec(eth(ip(1, icmp_echo(5, 1, b"x"), dst=bytes([198, 18, 0, 255])))),  # broadcast
    ]


def tcp_bbr_sack_recovery():
    # A BBR connection: 64 KiB queued, a window's worth sent; the first
    # segment acknowledged, then the peer SACKs past holes (RACK, recovery
    # with packet conservation), then acknowledges everything (cwnd back).
    p = Peer(40010, 21000)
    r = [rec(p.syn(), bbr=True), rec(p.seg()), rec(act=BULK)]
    p.got(1460)
    r += [rec(p.seg(), t=10)]

    def sacked(left, right, t):
        blk = b"\x01\x01\x05\x0a" + struct.pack(">II", p.ack + left, p.ack + right)
        return rec(tcp(p.sport, p.seq, p.ack, ACK, opts=blk, win=512), t=t)
    r += [sacked(1460, 3 * 1460, 1), sacked(1460, 8 * 1460, 1)]
    r += [rec(t=10), rec(t=200)]
    p.got(8 * 1460)
    r += [rec(p.seg(), t=10), rec(t=100)]
    return r + [rec(p.rst())]


def tcp_input_burst():
    # Frames that arrive together (lwIP patch 0032): six in-order segments
    # acknowledged once; a gap, a segment beyond it and its filling in one
    # burst; ACKs for bulk data and a FIN in one burst; then an RST behind
    # data in the same burst (the PCB freed while its output waits).
    p = Peer(40011, 23000)
    r = p.open()
    r += [rec(p.send(b"a" * 100), burst=True) for _ in range(5)]
    r += [rec(p.send(b"a" * 100))]
    p.got(600)  # the echo
    gap = p.seg(ACK | PSH, b"c" * 50, seq=p.seq + 50)
    fill = p.seg(ACK | PSH, b"b" * 50)
    p.seq += 100
    r += [rec(gap, burst=True), rec(fill)]
    p.got(100)
    r += [rec(act=BULK)]
    p.got(2920)
    r += [rec(p.seg(), burst=True)]
    p.got(2920)
    r += [rec(p.seg(), burst=True), rec(p.fin())]
    q = Peer(40012, 25000)
    r += q.open() + [rec(q.send(b"x" * 10), burst=True), rec(q.rst())]
    return r


def tcp_ooseq_bound():
    # More segments beyond a hole than lwIP may hold (the fuzz build bounds
    # the received frames it holds to 32, kbs_netif.c): the queue is cut to
    # its share, then pruned; a second connection queues beyond its own
    # hole meanwhile; then both holes are filled.
    p, q = Peer(40021, 27000), Peer(40022, 29000)
    r = p.open() + q.open()
    pb, qb = p.seq, q.seq
    for i in range(40):
        r += [rec(p.seg(ACK | PSH, b"o", seq=pb + 1 + i), burst=(i % 8 != 7))]
    r += [rec(q.seg(ACK | PSH, b"q", seq=qb + 1 + i), burst=True) for i in range(5)]
    r += [rec(q.seg(ACK | PSH, b"q", seq=qb + 6), t=1)]
    r += [rec(p.seg(ACK | PSH, b"h", seq=pb), t=1), rec(q.seg(ACK | PSH, b"h", seq=qb))]
    return r


SEEDS = {
    "arp": arp_frames,
    "icmp-echo": icmp_frames,
    "icmp-echo-fragmented-reply": icmp_big_echo,
    "ip-fragments": fragments,
    "misc": misc_frames,
    "tcp-syn-options": tcp_syn_variants,
    "tcp-session": tcp_session,
    "tcp-reset": tcp_reset,
    "tcp-time-wait-reuse": tcp_time_wait_reuse,
    "tcp-out-of-order": tcp_out_of_order,
    "tcp-bulk-retransmit": tcp_bulk_retransmit,
    "tcp-keepalive": tcp_keepalive,
    "tcp-zero-window": tcp_zero_window,
    "tcp-read-some-child-exit": tcp_read_some_child,
    "tcp-half-close": tcp_half_close,
    "tcp-backlog-relisten": tcp_backlog,
    "tcp-close-all": tcp_close_all,
    "tcp-connect": tcp_connect,
    "tcp-connect-fail": tcp_connect_fail,
    "app-exit": app_exit,
    "tcp-bbr-sack-recovery": tcp_bbr_sack_recovery,
    "tcp-input-burst": tcp_input_burst,
    "tcp-ooseq-bound": tcp_ooseq_bound,
}

def regress_lwip_tcp_option_last_byte():
    # A SYN whose options end with a SACK option's kind byte (an lwIP bug,
    # stack/lwip-patches/0003-tcp-option-without-length.patch).
    return [rec(tcp(46000, 1, 0, SYN, opts=b"\x01\x01\x01\x05"))]


REGRESS = {
    "kbs-listen-stale-accept-queue": regress_listen_stale_accept_queue,
    "lwip-etharp-short": regress_lwip_etharp_short,
    "lwip-ip4-short": regress_lwip_ip4_short,
    "lwip-tcp-option-last-byte": regress_lwip_tcp_option_last_byte,
}


def write_inputs(out, seeds, regress, who):
    """Each input of seeds and regress (name -> function returning its
    records) as out/seed-NAME and out/regress-NAME."""
    os.makedirs(out, exist_ok=True)
    for prefix, inputs in (("seed-", seeds), ("regress-", regress)):
        for name, make in inputs.items():
            with open(os.path.join(out, prefix + name), "wb") as f:
                f.write(b"".join(make()))
    print("%s: %d seeds, %d regression inputs in %s" % (who, len(seeds), len(regress), out))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "rx")
    write_inputs(out, SEEDS, REGRESS, "gen_corpus")


if __name__ == "__main__":
    main()
