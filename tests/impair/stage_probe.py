#!/usr/bin/env python3
"""stage_probe.py — measure what the impairment stage does to datagrams.

  stage_probe.py recv PORT        print one JSON line once traffic has been
                                  idle for 1 s: datagrams received, distinct,
                                  duplicates, late (arrived after a higher
                                  sequence number), one-way delays (ms)
  stage_probe.py send HOST PORT N send N numbered, timestamped datagrams at
                                  about 20000/s

Sender and receiver are on one machine, so CLOCK_MONOTONIC is one clock.
"""
import json
import socket
import struct
import sys
import time

FMT = "!Qd"  # sequence number, send time


def recv(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    s.settimeout(30)
    seen, dups, late, top, delays = set(), 0, 0, -1, []
    n = 0
    while True:
        try:
            b = s.recv(2048)
        except socket.timeout:
            break
        s.settimeout(1.0)
        t = time.monotonic()
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
        s.sendto(struct.pack(FMT, i, time.monotonic()) + pad, (host, port))
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
