#!/usr/bin/env python3
"""xfer.py — bulk transfer both ways for the impairment tests and bench.

  xfer.py serve PORT                  each connection in a thread, forever:
      the client's first line is "down N" (the server sends N bytes of the
      pattern, then closes) or "up N" (the server reads N bytes, answers
      "ok <sha256>" or "bad ...", then closes).
  xfer.py get|put HOST PORT N [TIMEOUT]
      one transfer; prints "bytes seconds" and exits 0 when every byte is
      the pattern's and the connection ended cleanly (EOF after exactly N
      bytes, no reset); 1 otherwise, with the reason on stderr.

The pattern is a fixed pseudo-random 1 MiB block repeated, so a byte moved,
lost or duplicated anywhere shows. Not for anything but the test bed.
"""
import hashlib
import socket
import sys
import threading
import time

BLOCK = b"".join(hashlib.sha256(b"kb-impair-%d" % i).digest() for i in range(32768))  # 1 MiB
CHUNK = 256 * 1024


def pattern_sha(n):
    h = hashlib.sha256()
    full, rest = divmod(n, len(BLOCK))
    for _ in range(full):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.hexdigest()


def send_pattern(s, n):
    off = 0
    view = memoryview(BLOCK + BLOCK)
    while off < n:
        k = min(CHUNK, n - off)
        o = off % len(BLOCK)
        off += s.send(view[o:o + k])


def recv_n(s, n):
    """sha256 of the next n bytes, and whether EOF came right after them."""
    h = hashlib.sha256()
    got = 0
    while got < n:
        b = s.recv(min(CHUNK, n - got))
        if not b:
            return None, got
        h.update(b)
        got += len(b)
    return h.hexdigest(), got


def read_line(s):
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return line.decode().split()


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(128)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def serve_one(c):
    try:
        req = read_line(c)
        n = int(req[1])
        if req[0] == "down":
            send_pattern(c, n)
        elif req[0] == "up":
            sha, got = recv_n(c, n)
            eof = c.recv(1) == b""
            if sha == pattern_sha(n) and eof:
                c.sendall(b"ok %s\n" % sha.encode())
            else:
                c.sendall(b"bad got %d eof %d\n" % (got, eof))
        c.shutdown(socket.SHUT_WR)
        while c.recv(65536):
            pass
    except (OSError, ValueError, IndexError) as e:
        print("serve: %s" % e, file=sys.stderr, flush=True)
    finally:
        c.close()


def client(mode, host, port, n, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    t0 = time.monotonic()
    try:
        if mode == "get":
            s.sendall(b"down %d\n" % n)
            sha, got = recv_n(s, n)
            if sha is None:
                return "EOF after %d of %d bytes" % (got, n)
            if sha != pattern_sha(n):
                return "data differs from the pattern (%d bytes)" % n
            if s.recv(1) != b"":
                return "more than %d bytes" % n
        else:
            s.sendall(b"up %d\n" % n)
            send_pattern(s, n)
            s.shutdown(socket.SHUT_WR)
            ans = read_line(s)
            if not ans or ans[0] != "ok":
                return "server says %s" % " ".join(ans)
            if s.recv(1) != b"":
                return "no EOF after the answer"
        dt = time.monotonic() - t0
        print("%d %.3f" % (n, dt), flush=True)
        return None
    except OSError as e:
        return "%s after %.1f s" % (e, time.monotonic() - t0)
    finally:
        s.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "serve":
        serve(int(a[1]))
    elif len(a) in (4, 5) and a[0] in ("get", "put"):
        err = client(a[0], a[1], int(a[2]), int(a[3]), float(a[4]) if len(a) == 5 else 300)
        if err:
            print("xfer %s: %s" % (a[0], err), file=sys.stderr)
            sys.exit(1)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
