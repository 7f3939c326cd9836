#!/usr/bin/env python3
"""gen_region.py — write the seeds and regression inputs of fuzz_region.

    tests/fuzz/gen_region.py [DIR]      (default: tests/fuzz/corpus/region)

Each input is a sequence of fuzz_region.c's records (its header comment
has the format): the hostile application listens, connects out, accepts
and moves data on flows its peer makes real (SEG records, whose sequence
numbers follow what the flow saw), and writes into its region. Field
numbers come from the table in fz_fields.c, read here, so a seed names
fields as kbq_abi.h does. The frame helpers are gen_corpus.py's.

seed-*: one contract rule or feature each. regress-*: inputs that made
fuzz_region fail once, kept so that every CI run replays them.
"""
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_corpus as gc  # noqa: E402  (frames, addresses, fz_ms[])

# fz_region.h / fz.h
HPORT = 8000
HPEER_PORT = 40000
RING = 256 * 1024
ACCEPTQ = 4096
NSOCKS = 1024

# records (fuzz_region.c)
(TURN, TIME, FRAME, SEG, WRITE, BELL, REQ, LISTEN, CONNECT, ACCEPT, IO,
 CLOSE, DIE, ATTACH, FFWD, GOOD) = range(16)
# KBQ_OP_*, KBQ_OPT_*, KBQ_S_*
(OP_NONE, OP_LISTEN, OP_CONNECT, OP_CLOSE, OP_SHUT_WR, OP_SETOPT) = range(6)
OPT_NODELAY, OPT_KEEPALIVE, OPT_KEEPIDLE, OPT_KEEPINTVL, OPT_KEEPCNT = range(1, 6)
S_FREE, S_OPEN, S_LISTEN, S_CONNECTING, S_ESTABLISHED, S_CLOSED, S_STACK = range(7)
FIN, SYN, RST, PSH, ACK = gc.FIN, gc.SYN, gc.RST, gc.PSH, gc.ACK


def field_table():
    """Field name -> number, in fz_fields.c's FZ_FIELD_TABLE order."""
    src = open(os.path.join(HERE, "fz_fields.c")).read()
    body = src[src.index("#define FZ_FIELD_TABLE"):]
    body = body[:body.index("\n\n")]
    prefix = {"SF": "sock.", "SA": "sock.", "AF": "acceptq.", "AA": "acceptq.",
              "RF": "region.", "RA": "region.", "R2": "region.", "RW": "region.waiter."}
    names = [prefix[m] + f
             for m, f in re.findall(r"\b(SF|SA|AF|AA|RF|RA|R2|RW)\((\w+)\)", body)]
    return {n: i for i, n in enumerate(names)}


FIELDS = field_table()


# ---- encodings ----------------------------------------------------------

def slot(s=None, live=None):
    """A slot: the live-th slot in use, or slot s."""
    if live is not None:
        return bytes([live])
    if s < 0x40:
        return bytes([0x40 + s])
    return bytes([0x80 | s >> 8, s & 0xFF])


def index(i):
    return bytes([i]) if i < 0x80 else bytes([0x80 | i >> 8, i & 0xFF])


# fz_value: bits 0-2 base, 3-5 plus, 6-7 what follows
B_ZERO, B_CUR, B_PAIR, B_ONES, B_2_31, B_RING, B_ACCEPTQ, B_NSOCKS = range(8)
P_NONE, P_RING, P_MRING, P_AQ, P_MAQ, P_2_31, P_2_16, P_M2_16 = range(8)


def val(base=B_ZERO, plus=P_NONE, delta=0):
    """base + plus + delta (a signed byte or 16-bit number)."""
    if delta == 0:
        return bytes([plus << 3 | base])
    if -128 <= delta < 128:
        return bytes([1 << 6 | plus << 3 | base]) + struct.pack(">b", delta)
    return bytes([2 << 6 | plus << 3 | base]) + struct.pack(">h", delta)


def raw(v, size=4):
    return bytes([3 << 6]) + (v & ((1 << 8 * size) - 1)).to_bytes(size, "big")


def rec(kind, a=0, body=b""):
    return bytes([a << 4 | kind]) + body


def turn():
    return rec(TURN)


def time(ms):
    return rec(TIME, gc.MS.index(ms))


def frame(f):
    return rec(FRAME, 0, struct.pack(">H", len(f)) + f)


def seg(flow=None, new=None, flags=ACK, n=0, mods=0, extra=b""):
    """A segment of the hostile side's peer: on known flow number flow, or
    a new one new = (listen port index, peer port index)."""
    sel = 0x80 | new[0] << 5 | new[1] if new is not None else flow
    return rec(SEG, 0, bytes([sel, flags, n, mods]) + extra)


def write(name, value, s=None, live=None, elem=None):
    """A WRITE record; none for a field the layout no longer has (kbq_abi.h
    changed: the seed then does the rest)."""
    if name not in FIELDS:
        print("gen_region: no field %s in fz_fields.c, its writes left out" % name,
              file=sys.stderr)
        return b""
    body = bytes([FIELDS[name]])
    if name.startswith(("sock.", "acceptq.")):  # acceptq: the queue slot s names (lq)
        body += slot(s, live)
    if elem is not None:
        body += index(elem)
    return rec(WRITE, 0, body + value)


def bell(s=None, live=None, every=False):
    return rec(BELL, 1 if every else 0, slot(s, live))


def req(op, args=(b"\0", b"\0", b"\0"), s=None, live=None, how=0):
    return rec(REQ, how, slot(s, live) + bytes([op]) + b"".join(args))


def listen(port=0, backlog=16, inherit=0):
    return rec(LISTEN, inherit, bytes([port, backlog]))


def connect(port=0, good_ip=False, lport=None, lport_good=False):
    b = port | (0x40 if good_ip else 0)
    if lport_good:
        b |= 0x30
    elif lport is not None:
        b |= 0x80 | lport << 2
    return rec(CONNECT, 0, bytes([b]))


def accept():
    return rec(ACCEPT)


def io(s=None, live=None, n64=0):
    return rec(IO, 0, slot(s, live) + bytes([n64]))


def close(s=None, live=None):
    return rec(CLOSE, 0, slot(s, live))


def die(n=0, last=False, fork=False):
    """The n-th process index in use dies (a fork first), or the last one."""
    return rec(DIE, (1 if last else 0) | (2 if fork else 0), bytes([n]))


def attach():
    return rec(ATTACH)


def ffwd(s=None, live=None, back=0, good=None, good_listener=False):
    if good_listener:
        return rec(FFWD, 8 | 4, bytes([back]))
    if good is not None:
        return rec(FFWD, 8 | good, bytes([back]))
    return rec(FFWD, 0, slot(s, live) + bytes([back]))


def good(act):
    return rec(GOOD, {"none": 0, "hold": 1, "read_some": 2}[act])


# ---- building blocks ----------------------------------------------------
# A fresh hostile context claims slot 0 for its first listener; the stack
# claims the lowest free slot for each connection it accepts.

def flow_in(port=0, peer=0, flow=0):
    """A connection to the hostile listener on HPORT + port, from the
    peer's port HPEER_PORT + peer; it becomes peer flow number flow."""
    return [seg(new=(port, peer), flags=SYN), seg(flow=flow, flags=ACK)]


def established():
    """A listener (slot 0) with one accepted connection (slot 1, flow 0)
    that carried 100 bytes each way."""
    return ([listen(0), turn()] + flow_in() +
            [accept(), seg(flow=0, flags=ACK | PSH, n=100), io(s=1, n64=2),
             turn(), seg(flow=0, flags=ACK)])


# ---- seeds ----------------------------------------------------------------

def seed_established():
    return established() + [time(200), seg(flow=0, flags=FIN | ACK), io(s=1),
                            close(s=1), turn(), seg(flow=0, flags=ACK)]


def seed_bad_rx_head():
    # rx_head one byte beyond what the stack delivered: cut off (ctx_reset_ring);
    # the flow then keeps sending to a context that must stay inert.
    r = established() + [seg(flow=0, flags=ACK | PSH, n=50),
                         write("sock.rx_head", val(B_PAIR, delta=1), s=1), bell(s=1), turn()]
    return r + [seg(flow=0, flags=ACK | PSH, n=20), io(s=1, n64=4), turn(), time(1000),
                seg(new=(0, 1), flags=SYN), accept(), time(5000)]


def seed_bad_rx_head_behind():
    # rx_head behind what was already credited, and far beyond (2^31).
    r = established() + [write("sock.rx_head", val(B_CUR, delta=-1), s=1), bell(s=1), turn()]
    return r + [attach(), listen(0), turn()] + flow_in(flow=0) + [
        accept(), seg(flow=0, flags=ACK | PSH, n=10),
        write("sock.rx_head", val(B_CUR, P_2_31), s=1), bell(s=1), turn()]


def seed_bad_tx_tail():
    # tx_tail more than a ring ahead of what the peer acknowledged.
    r = established() + [write("sock.tx_tail", val(B_PAIR, P_RING, 1), s=1), bell(s=1),
                         turn(), seg(flow=0, flags=ACK | PSH, n=10), turn()]
    return r + [attach(), listen(1), turn()] + flow_in(port=1, flow=0) + [
        accept(), io(s=1, n64=64),
        # behind what was sent already
        write("sock.tx_tail", val(B_CUR, delta=-1), s=1), bell(s=1), turn()]


def seed_aq_head_beyond_tail():
    # Two connections queued, a third one's SYN answered, then the queue's
    # head one beyond its tail: the third's handshake completes and
    # kbs_tcp_on_accept cuts the context off (ctx_reset_accept). (A SYN
    # after the write would only be dropped: kbs_tcp_listen_input sees no
    # room.)
    r = [listen(0), turn()] + flow_in(peer=0, flow=0) + flow_in(peer=1, flow=1)
    r += [seg(new=(0, 2), flags=SYN), write("acceptq.head", val(B_PAIR, delta=1), s=0),
          seg(flow=2, flags=ACK)]
    return r + [accept(), seg(flow=0, flags=ACK | PSH, n=5), close(s=0), turn(), time(1000)]


def seed_aq_entries():
    # Accept-queue entries rewritten (slots out of range, the listener's own,
    # another connection's), then the listener closes with them queued; its
    # queue index rewritten too (the stack's word: never read back), a
    # second listener takes the queue again.
    r = [listen(0), turn()] + flow_in(peer=0, flow=0) + flow_in(peer=1, flow=1)
    r += [write("acceptq.slot", raw(5000), s=0, elem=0),
          write("acceptq.slot", raw(0), s=0, elem=1),
          write("acceptq.slot", raw(2), s=0, elem=2),
          write("acceptq.tail", val(B_CUR, delta=3), s=0),
          write("sock.lq", raw(0xFFFFFFFF), s=0)]
    r += [close(s=0), turn(), accept(), time(500), listen(1), turn()]
    return r + flow_in(port=1, peer=2, flow=2) + [accept(), time(500)]


def seed_state_free_then_accept():
    # FREE written over a live connection's state; a new connection is
    # accepted (kbstackd must not hand out the live slot), and the app
    # claims the "free" slot and asks to listen on it.
    r = established() + [write("sock.state", raw(S_FREE), s=1)]
    r += flow_in(peer=1, flow=1) + [accept(), seg(flow=1, flags=ACK | PSH, n=30)]
    r += [listen(1), turn(), io(s=1, n64=1), io(s=2, n64=1), turn()]
    return r + [write("sock.state", raw(S_STACK), s=2), write("sock.state", raw(99), s=3),
                bell(s=3), turn(), seg(flow=0, flags=FIN | ACK), close(s=1), turn()]


def seed_requests_on_draining():
    # A connection closed with 16 KiB the peer has not acknowledged
    # (DRAINING), then every request on it, numbered right and wrong.
    r = established() + [io(s=1, n64=255), turn(), close(s=1), turn()]
    for op, args in ((OP_LISTEN, (raw(HPORT + 2), raw(8), raw(0))),
                     (OP_CONNECT, (raw(0x020012C6), raw(8080), raw(0))),
                     (OP_SETOPT, (raw(OPT_NODELAY), raw(1), raw(0))),
                     (OP_SHUT_WR, (raw(0), raw(0), raw(0))),
                     (OP_CLOSE, (raw(0), raw(0), raw(0))),
                     (7, (raw(0), raw(0), raw(0)))):
        r += [req(op, args, s=1), turn()]
    r += [req(OP_CLOSE, s=1, how=2), req(OP_LISTEN, s=1, how=4), turn()]
    r += [write("sock.req_seq", val(B_PAIR, delta=-1), s=1), bell(s=1), turn()]
    return r + [io(s=1, n64=4), bell(s=1), seg(flow=0, flags=ACK), time(1000),
                seg(flow=0, flags=FIN | ACK), time(500)]


def seed_ring_wrap():
    # Indices just below 2^32 (a connection that has carried almost 4 GiB),
    # both contexts: data crosses the wrap both ways; then indices written
    # as what they are modulo 2^32, and 0xffffffff, 2^31.
    r = established() + [ffwd(s=1, back=1), ffwd(good=0, back=3), ffwd(good=1, back=0),
                         ffwd(good_listener=True, back=2), ffwd(s=0, back=5)]
    r += [seg(flow=0, flags=ACK | PSH, n=200), io(s=1, n64=8), turn(),
          seg(flow=0, flags=ACK), turn()]
    r += flow_in(peer=1, flow=1) + flow_in(peer=2, flow=2) + [accept()]
    r += [write("sock.rx_head", val(B_PAIR), s=1), write("sock.tx_tail", val(B_CUR), s=1),
          bell(s=1), turn(),
          write("sock.tx_tail", val(B_PAIR, P_RING), s=1), bell(s=1), turn(),
          write("sock.rx_head", raw(0xFFFFFFFF), s=2), bell(s=2), turn(),
          write("sock.tx_tail", raw(0x80000000), s=3), bell(s=3), turn()]
    return r + [seg(flow=0, flags=ACK | PSH, n=100), time(200)]


def seed_header_sizes():
    # The region header's slot count and ring size, written by the
    # application while data flows both ways: kbstackd keeps its own (the
    # rings stay where they were), whatever the header says.
    r = established() + [seg(flow=0, flags=ACK | PSH, n=200), io(s=1, n64=8), turn()]
    for slots, ring in ((64, 0x800000), (0xFFFFFFC0, 0x10000), (0, 0), (1 << 20, 3)):
        r += [write("region.slots", raw(slots)), write("region.ring", raw(ring)),
              seg(flow=0, flags=ACK | PSH, n=100), io(s=1, n64=4), bell(s=1), turn()]
    return r + [seg(flow=0, flags=ACK), time(200)]


def seed_bells_everywhere():
    # Every slot's bell, with slots claimed behind kbstackd's back, states
    # and requests written into free slots, the summary word and bell words
    # all ones.
    r = established() + [bell(s=0, every=True), turn()]
    for s in (5, 63, 64, 700, 1023):
        r += [write("sock.state", raw(S_OPEN), s=s),
              write("sock.req_op", raw(OP_LISTEN), s=s),
              write("sock.req_arg", raw(HPORT + 3), s=s, elem=0),
              write("sock.req_seq", val(B_CUR, delta=1), s=s)]
    r += [bell(s=0, every=True), turn(),
          write("region.bell_summary", raw(0xFFFFFFFFFFFFFFFF, 8)),
          write("region.bell", raw(0xFFFFFFFFFFFFFFFF, 8), elem=15), turn(),
          write("region.bell_summary", raw(0x8000000000000000, 8)), turn()]
    return r + [seg(new=(3, 3), flags=SYN), seg(flow=1, flags=ACK), accept(), turn()]


def seed_die_mid_request():
    # A connect in progress and a listen posted but not yet served when the
    # hostile application's processes die (a child first: proc_gone), then
    # the SYN-ACK and data for the orphaned context; it attaches again.
    r = established() + [connect(0), turn(), listen(2)]
    r += [die(n=1), turn()]
    r += [seg(flow=1, flags=SYN | ACK), seg(flow=0, flags=ACK | PSH, n=10)]
    r += [connect(1), die(last=True), seg(flow=2, flags=SYN | ACK), turn(),
          seg(flow=0, flags=ACK), time(1000), attach(), listen(0), turn()]
    return r + flow_in(peer=5, flow=1) + [accept(), die(last=True), time(5000)]


def seed_holdings():
    # Processes and what they hold (kbq_abi.h, Holding), with the rows
    # written as no library would: a fork, a close by one holder while the
    # child still holds, a child whose row names slots it never held, a
    # close claimed (closing) but never posted, procs written, the death of
    # each process in turn. Only the hostile context's own slots may close.
    row = 16  # words per held[] row
    r = established() + flow_in(peer=1, flow=1) + [accept()]
    r += [die(n=0, fork=True), turn(), close(s=1), turn()]        # child 2 holds 0-2
    r += [write("region.held", raw(0xFFFFFFFFFFFFFFFF, 8), elem=2 * row),
          write("region.held", raw(1 << 63, 8), elem=2 * row + 15),
          write("region.procs", raw(0xFFFFFFFFFFFFFFFF, 8), elem=0),
          write("region.wheld", raw(0xFFFFFFFFFFFFFFFF, 8), elem=2 * 4),
          write("sock.closing", val(B_CUR, delta=1), s=2),
          write("sock.forked", raw(0), s=0)]
    r += [die(n=0), turn(), seg(flow=0, flags=ACK | PSH, n=10), turn()]  # index 0 goes
    r += [die(n=1), turn(), seg(flow=1, flags=ACK | PSH, n=10)]          # index 2 goes
    return r + [listen(1), turn(), die(n=5), time(1000), close(live=0), turn()]


def seed_wake_words():
    # Sleepers, waiter words and waiter masks set as a waiting thread would
    # (and not): wake sockets of waiters 0, 1 and 64 (its peer closed), a
    # futex waiter count, a waiter index beyond those that have sockets.
    r = established()
    r += [write("region.sleepers", raw(3)),
          write("region.waiter.sleeping", raw(1), elem=0),
          write("region.waiter.sleeping", raw(1), elem=64),
          write("region.waiter.sleeping", raw(0xFFFFFFFF), elem=255),
          write("region.waiter.used", raw(1), elem=1),
          write("sock.wmask", raw(0xFFFFFFFFFFFFFFFF, 8), s=1, elem=0),
          write("sock.wmask", raw(1, 8), s=1, elem=1),
          write("sock.wmask", raw(0xFFFFFFFFFFFFFFFF, 8), s=1, elem=3),
          write("sock.waiters", raw(1), s=1)]
    for _ in range(4):
        r += [seg(flow=0, flags=ACK | PSH, n=10), write("region.waiter.pending", raw(0), elem=0)]
    r += [write("region.event_seq", raw(0xFFFFFFFF)), write("sock.wake_seq", raw(0), s=1)]
    return r + [seg(flow=0, flags=FIN | ACK), time(100)]


def seed_every_field():
    # Each named field of slot 1 (a live connection) and of the region
    # header, once, with a value near its own; then all ones.
    r = established()
    names = sorted(FIELDS, key=FIELDS.get)
    for n in names:
        if n.startswith(("sock.", "acceptq.")):
            r += [write(n, val(B_CUR, delta=1), s=1, elem=0 if n in ARRAYS else None)]
        else:
            r += [write(n, val(B_CUR, delta=1), elem=0 if n in ARRAYS else None)]
    r += [bell(s=1), turn(), seg(flow=0, flags=ACK | PSH, n=10), turn()]
    for n in names:
        if n.startswith(("sock.", "acceptq.")):
            r += [write(n, val(B_ONES), s=0, elem=3 if n in ARRAYS else None)]
    return r + [bell(s=0), turn(), seg(new=(0, 9), flags=SYN), turn()]


ARRAYS = {"sock.req_arg", "sock.wmask", "acceptq.slot", "region.bell", "region.fallback",
          "region.waiter.used", "region.waiter.sleeping", "region.waiter.pending",
          "region.waiter.pad"}


def seed_requests():
    # Every request with arguments kbstackd must refuse: a port below 1024
    # (unprivileged), the good server's port, port 0 and 65536, a connect
    # from the good server's port and to the good peer, unknown ops and
    # options, a listen on a listener, a connect on a connection.
    r = [listen(0), turn()]
    r += [rec(LISTEN, 0, bytes([0x80, 0, 80, 4])), turn(),
          rec(LISTEN, 0, bytes([0x80, 0x03, 0xFF, 4])), turn(),
          rec(LISTEN, 0, bytes([0x80, 0, 0, 4])), turn(),
          rec(LISTEN, 3, bytes([0x80, 0x1F, 0x90, 0])), turn(),
          connect(lport_good=True), turn(), connect(good_ip=True), turn(), time(3000)]
    r += [req(OP_LISTEN, (raw(65536), raw(1), raw(3)), s=0), turn(),
          req(OP_CONNECT, (raw(0x020012C6), raw(8080), raw(70000)), s=0), turn(),
          req(OP_SETOPT, (raw(9), raw(1), raw(0)), s=0), turn(),
          req(OP_SETOPT, (raw(OPT_KEEPIDLE), raw(0xFFFFFFFF), raw(0)), s=0), turn(),
          req(OP_SHUT_WR, s=0), turn(), rec(REQ, 0, slot(0) + b"\x80\xff\xff\xff\xff" +
                                           raw(1) + raw(2) + raw(3)), turn()]
    r += flow_in(flow=0) + [accept()]
    for opt, v in ((OPT_NODELAY, 1), (OPT_KEEPALIVE, 1), (OPT_KEEPIDLE, 1),
                   (OPT_KEEPINTVL, 1), (OPT_KEEPCNT, 200), (OPT_NODELAY, 0)):
        r += [req(OP_SETOPT, (raw(opt), raw(v), raw(0)), s=1), turn()]
    r += [req(OP_CONNECT, (raw(0x020012C6), raw(8081), raw(0)), s=1), turn(),
          req(OP_SHUT_WR, s=1), turn(), req(OP_SHUT_WR, s=1), turn(), time(5000)]
    return r + [seg(flow=0, flags=FIN | ACK), time(20000)]


def seed_connect_out():
    # Connections out: accepted, refused, never answered; data both ways on
    # the one that opens, then a reset from the peer.
    r = [connect(0), connect(1, lport=1), turn()]
    r += [seg(flow=0, flags=SYN | ACK), seg(flow=1, flags=RST | ACK), turn(),
          io(s=0, n64=3), turn(), seg(flow=0, flags=ACK | PSH, n=64), io(s=0), turn()]
    r += [connect(2), turn(), time(3000), time(10000), seg(flow=0, flags=RST)]
    return r + [close(s=0), close(s=1), turn(), time(130000), time(65000)]


def seed_attach_again():
    # The application attaches again and again: each old context dies with
    # flows still sending (orphans), a new one listens on the same port.
    r = []
    for i in range(5):
        r += [listen(0), turn()] + flow_in(peer=i, flow=i) + [
            accept(), io(s=1, n64=20), turn(), attach()]
    return r + [time(1000), time(20000)]


def seed_good_hold():
    # The good server holds (neither accepts nor reads), then reads 100
    # bytes at a time, while the hostile context is cut off and time passes.
    r = [good("hold"), turn(), turn()] + established()
    r += [good("read_some"), turn(), write("sock.tx_tail", raw(0x7FFFFFFF), s=1), bell(s=1),
          turn(), time(5000), good("none"), turn()]
    return r


def seed_raw_frames():
    # Raw frames too: one from the good peer's address (dropped, never
    # reaches the good connections), one to the good server's port from
    # the input's peer, ARP for the good peer.
    spoof = gc.tcp(30000, 1, 1, RST, src=bytes([198, 18, 0, 3]))
    other = gc.Peer(45000, 1)
    r = [frame(spoof), frame(gc.arp(2, gc.PEER_MAC, bytes([198, 18, 0, 3]),
                                    gc.STACK_MAC, gc.STACK_IP))]
    r += [frame(other.syn()), frame(other.seg()), frame(other.send(b"to the good one"))]
    r += [listen(0), turn(), frame(gc.tcp(41000, 5, 0, SYN, dport=HPORT))]
    return r + [time(1000), frame(other.rst())]


SEEDS = {
    "established": seed_established,
    "bad-rx-head": seed_bad_rx_head,
    "bad-rx-head-behind": seed_bad_rx_head_behind,
    "bad-tx-tail": seed_bad_tx_tail,
    "aq-head-beyond-tail": seed_aq_head_beyond_tail,
    "aq-entries": seed_aq_entries,
    "state-free-then-accept": seed_state_free_then_accept,
    "requests-on-draining": seed_requests_on_draining,
    "ring-wrap": seed_ring_wrap,
    "header-sizes": seed_header_sizes,
    "bells-everywhere": seed_bells_everywhere,
    "die-mid-request": seed_die_mid_request,
    "holdings": seed_holdings,
    "wake-words": seed_wake_words,
    "every-field": seed_every_field,
    "requests": seed_requests,
    "connect-out": seed_connect_out,
    "attach-again": seed_attach_again,
    "good-hold": seed_good_hold,
    "raw-frames": seed_raw_frames,
}

def regress_lwip_tcp_trim_half_space():
    # A FIN, then a one-byte segment, whose sequence number is the stack's
    # rcv_nxt + 2^31 (SEG seq mode 3): lwIP's front-edge trim took them for
    # segments starting 2^31 before rcv_nxt and asserted (an lwIP bug,
    # stack/lwip-patches/0004-tcp-trim-half-space.patch).
    return established() + [seg(flow=0, flags=FIN | ACK, mods=3),
                            seg(flow=0, flags=ACK | PSH, n=1, mods=3), turn()]


def regress_lwip_tcp_sent_abort_leak():
    # A segment that acknowledges 64 bytes and brings 10 in order, to a
    # context whose tx_tail is then more than a ring ahead: kbstackd's sent callback cuts
    # it off and aborts the PCB before lwIP hands over the 10 bytes, which
    # lwIP then forgot without freeing (an lwIP bug,
    # stack/lwip-patches/0005-tcp-sent-abort-leaks-data.patch).
    return established() + [io(s=1, n64=1), turn(),
                            write("sock.tx_tail", val(B_PAIR, P_RING, 100), s=1),
                            seg(flow=0, flags=ACK | PSH, n=10), turn()]


def regress_lwip_tcp_persist_acked():
    # Any peer can do this, with numbers all in order: the stack sends 64
    # bytes; the peer sends a byte, then one more with a zero window (its
    # ACKs still short of the 64: the second updates the window); the retransmission timeout moves them back to unsent
    # and, the window being 0, starts the persist timer; the peer then ACKs
    # the first transmission: unsent is empty, the persist timer still
    # runs, and lwIP's next slow timer asserted (an lwIP bug,
    # stack/lwip-patches/0006-tcp-persist-nothing-to-send.patch).
    short = struct.pack(">b", -64)  # ACK mode 1: the stack's next - 64
    return established() + [io(s=1, n64=1), turn(),
                            seg(flow=0, flags=ACK | PSH, n=1, mods=1 << 2, extra=short),
                            seg(flow=0, flags=ACK | PSH, n=1, mods=0x10 | 1 << 2, extra=short),
                            time(5000), seg(flow=0, flags=ACK), time(1000)]


REGRESS = {
    "lwip-tcp-persist-acked": regress_lwip_tcp_persist_acked,
    "lwip-tcp-sent-abort-leak": regress_lwip_tcp_sent_abort_leak,
    "lwip-tcp-trim-half-space": regress_lwip_tcp_trim_half_space,
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "region")
    gc.write_inputs(out, SEEDS, REGRESS, "gen_region")


if __name__ == "__main__":
    main()
