#!/usr/bin/env python3
"""stage_probe.py — measure what the impairment stage does to datagrams.

  stage_probe.py recv PORT        print one JSON line once traffic has been
                                  idle for 1 s: datagrams received, distinct,
                                  duplicates, late (arrived after a higher
                                  sequence number), one-way delays (ms)
  stage_probe.py send HOST PORT N send N numbered, timestamped datagrams at
                                  about 20000/s

Sender and receiver are on one machine, so CLOCK_REALTIME is one clock.
A datagram's arrival is the kernel's receive timestamp (SO_TIMESTAMPNS),
not the time the receiver got round to reading it: on a busy machine the
receiver may be scheduled out for milliseconds.
"""
import json
import socket
import struct
import sys
import time

FMT = "!Qd"  # sequence number, send time (CLOCK_REALTIME, s)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux


def recv(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    s.settimeout(30)
    seen, dups, late, top, delays = set(), 0, 0, -1, []
    n = 0
    while True:
        try:
            b, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(16))
        except socket.timeout:
            break
        s.settimeout(1.0)
        t = None
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                t = sec + nsec / 1e9
        if t is None:
            raise SystemExit("stage_probe: no receive timestamp (SO_TIMESTAMPNS)")
        seq, sent = struct.unpack_from(FMT, b)
        n += 1
        if seq in seen:
            dups += 1
            continue
        seen.add(seq)
        if seq < top:
            late += 1
        top = max(top, seq)
        delays.append((t - sent) * 1000)
    delays.sort()
    print(json.dumps({"received": n, "distinct": len(seen), "dups": dups, "late": late,
                      "delays": delays}), flush=True)


def send(host, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = b"x" * 200
    t0 = time.monotonic()
    for i in range(n):
        s.sendto(struct.pack(FMT, i, time.time()) + pad, (host, port))
        if i % 100 == 99:
            ahead = t0 + (i + 1) / 20000 - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["recv"] and len(a) == 2:
        recv(int(a[1]))
    elif a[:1] == ["send"] and len(a) == 4:
        send(a[1], int(a[2]), int(a[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
