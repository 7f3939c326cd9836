#!/usr/bin/env python3
"""idle_client.py HOST PORT N ROOT [light] — N keep-alive connections that
each wrap both of a kb socket's rings, then stay open and idle
(integration.connections.idle). With "light" (bench/connections.sh), each
connection makes one GET of /f64 only. KB_IDLE_RING: the rings' size in
bytes (kbstackd's KB_RING; default 1048576).

On each connection, one after another: GETs of /f64 each carrying a 6 KiB
padding header, one more than a ring holds of their 6 KiB (171 at 1 MiB:
about 1.01 MiB towards the server, its rx ring going all the way round),
and a GET of /f64k per 64 KiB of ring (1 MiB back: its tx ring). Every
response is read whole and checked against the file. Then prints "idle" and
waits for a line on stdin; then one more GET on every connection (each must
still work, with pages given back in between), prints "ok N" and closes.
"""
import os
import socket
import sys

PAD = "X-Pad: " + "p" * 6144 + "\r\n"


def request(s, path, pad=""):
    s.sendall(("GET /%s HTTP/1.1\r\nHost: kb\r\n%s\r\n" % (path, pad)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(65536)
        if not b:
            raise SystemExit("connection closed in a response header")
        head += b
    head, _, body = head.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit("not 200: %r" % head[:80])
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    if length is None:
        raise SystemExit("no Content-Length")
    while len(body) < length:
        b = s.recv(min(262144, length - len(body)))
        if not b:
            raise SystemExit("connection closed in a body")
        body += b
    return body


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    root = sys.argv[4]
    light = sys.argv[5:] == ["light"]
    files = ("f64",) if light else ("f64", "f64k")
    want = {p: open("%s/%s" % (root, p), "rb").read() for p in files}
    last = "f64" if light else "f64k"
    ring = int(os.environ.get("KB_IDLE_RING", "1048576"))
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        for _ in range(1 if light else ring // 6144 + 1):
            if request(s, "f64", "" if light else PAD) != want["f64"]:
                raise SystemExit("f64: wrong bytes")
        for _ in range(0 if light else ring // 65536):
            if request(s, "f64k") != want["f64k"]:
                raise SystemExit("f64k: wrong bytes")
        conns.append(s)
    print("idle", flush=True)
    sys.stdin.readline()
    for s in conns:
        if request(s, last) != want[last]:
            raise SystemExit("%s after idle: wrong bytes" % last)
    print("ok %d" % len(conns), flush=True)
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
