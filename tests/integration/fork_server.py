#!/usr/bin/env python3
"""fork_server.py PORT — the parent listens, forks a child that serves, and
exits at once: the child's (inherited, accelerated) listener must outlive
its parent. Each connection gets "child PID\n" and is closed."""
import os
import socket
import sys

ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1])))
ls.listen(16)
pid = os.fork()
if pid:
    print("parent %d exits, child %d serves" % (os.getpid(), pid), flush=True)
    os._exit(0)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    c.recv(100)
    c.sendall(b"child %d\n" % os.getpid())
    c.close()
