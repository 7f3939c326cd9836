#!/usr/bin/env python3
"""tcp_semantics.py — half-close and reset, seen from both ends.

  tcp_semantics.py server PORT     serve the scenarios (runs under LD_PRELOAD)
  tcp_semantics.py client HOST PORT  run them (a kernel client); exit 0 if all held

The first byte a client sends picks the scenario:
  H  client half-closes: the server reads to EOF, then still answers
  S  server half-closes: the client reads the server's data and EOF, then
     still sends, and the server receives it
  R  server closes with unread data: the client sees a reset
  C  client resets (SO_LINGER 0): the server's read sees ECONNRESET
  L  client closes first; the server reads to EOF, shuts down its side
     (both FINs are through), then reads EOF again — not an error — and
     a write fails with EPIPE (Apache's lingering close does this)
The server prints one line per scenario ("server H ok 300000" …) on stdout.
"""
import socket
import struct
import sys
import threading
import time


def recv_all(s):
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def serve_one(c):
    try:
        cmd = c.recv(1)
        if cmd == b"H":
            data = recv_all(c)
            c.sendall(b"got %d" % len(data))
            print("server H ok %d" % len(data), flush=True)
        elif cmd == b"S":
            c.sendall(b"bye")
            c.shutdown(socket.SHUT_WR)
            data = recv_all(c)
            print("server S %s" % ("ok" if data == b"after" else "bad %r" % data), flush=True)
        elif cmd == b"R":
            time.sleep(0.2)  # the client's 100 bytes are unread: close resets
            print("server R closing", flush=True)
        elif cmd == b"L":
            data = recv_all(c)
            c.shutdown(socket.SHUT_WR)
            time.sleep(0.3)  # the client's ACK of our FIN has arrived
            again = c.recv(10)
            try:
                c.send(b"late")
                late = "write accepted"
            except BrokenPipeError:
                late = "EPIPE"
            good = len(data) == 1000 and again == b"" and late == "EPIPE"
            print("server L %s" % ("ok" if good else "bad: %d bytes, then %r, %s" %
                                   (len(data), again, late)), flush=True)
        elif cmd == b"C":
            try:
                data = c.recv(10)
                print("server C bad: read returned %r" % data, flush=True)
            except ConnectionResetError:
                print("server C ok", flush=True)
    finally:
        c.close()


def server(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(16)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def client(host, port):
    ok = True

    def conn():
        s = socket.create_connection((host, port), timeout=5)
        return s

    # H: half-close by the client
    s = conn()
    payload = b"x" * 300000
    s.sendall(b"H" + payload)
    s.shutdown(socket.SHUT_WR)
    reply = recv_all(s)
    s.close()
    good = reply == b"got 300000"
    print("client H", "ok" if good else "bad %r" % reply)
    ok &= good

    # S: half-close by the server
    s = conn()
    s.sendall(b"S")
    data = recv_all(s)  # "bye" then EOF
    s.sendall(b"after")  # our direction is still open
    s.close()
    good = data == b"bye"
    print("client S", "ok" if good else "bad %r" % data)
    ok &= good

    # R: the server closes with our data unread -> reset
    s = conn()
    s.sendall(b"R" + b"y" * 100)
    try:
        got = recv_all(s)
        print("client R bad: EOF after %r instead of a reset" % got)
        ok = False
    except ConnectionResetError:
        print("client R ok")
    s.close()

    # L: we close first; the server finishes its side after
    s = conn()
    s.sendall(b"L" + b"z" * 1000)
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    s.close()
    print("client L", "ok" if got == b"" else "bad %r" % got)
    ok &= got == b""
    time.sleep(0.5)

    # C: we reset
    s = conn()
    s.sendall(b"C")
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("client C sent reset")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "server":
        server(int(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "client":
        sys.exit(client(sys.argv[2], int(sys.argv[3])))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
