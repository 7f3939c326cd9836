#!/usr/bin/env python3
"""exec_server.py PORT — listen (accelerated under the preload), then exec
a new program that inherits the listening fd (not close-on-exec). The new
image reports whether it is preloaded too, then serves the inherited fd:
each connection gets b"exec\n". Prints "ready" when serving."""
import os
import socket
import sys

if len(sys.argv) == 2:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", int(sys.argv[1])))
    ls.listen(8)
    os.set_inheritable(ls.fileno(), True)
    os.execv(sys.executable, [sys.executable, "-u", __file__, "child", str(ls.fileno())])

fd = int(sys.argv[2])
maps = open("/proc/self/maps").read()
print("preloaded" if "libkbpreload" in maps else "not preloaded", flush=True)
# kb keeps an accelerated listener's kernel socket non-blocking, and the
# flag lives in the open file, so it crosses exec (README: exec).
print("nonblocking" if not os.get_blocking(fd) else "blocking", flush=True)
ls = socket.socket(fileno=fd)
ls.setblocking(True)  # what a program that cares does
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    c.recv(1000)  # the request: closing with it unread would reset
    c.sendall(b"exec\n")
    c.close()
