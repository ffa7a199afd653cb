#!/usr/bin/env python3
"""Helpers of compat-tests/ctdb/tickle.sh, each run inside a network
namespace of the test:

  tickle.py serve ADDR PORT          accept connections on ADDR:PORT and hold
                                     them open (never answers); runs until
                                     killed
  tickle.py connect ADDR PORT OUT    connect to ADDR:PORT from this
                                     namespace; writes "LOCALADDR:PORT" to
                                     OUT, then waits in recv; when the
                                     connection is reset (or ends) appends
                                     "reset TIME" (epoch seconds) or
                                     "closed TIME" to OUT and exits
  tickle.py arps IFACE ADDR OUT      log every ARP frame about ADDR seen on
                                     IFACE to OUT, one line a frame: "TIME
                                     request|reply SENDER-MAC"
  tickle.py register SOCKET CLIENT SERVER
                                     a local client of a ctdbd (its unix
                                     socket): TCP_CLIENT for the connection
                                     CLIENT (ADDR:PORT, the SMB client) to
                                     SERVER, as smbd registers one; prints
                                     "status N", then holds the client
                                     connection until stdin closes
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawclient import connect as ctdb_connect, control_status, sockaddr_in  # noqa: E402

TCP_CLIENT = 44
ETH_P_ARP = 0x0806


def serve(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)


def connect(addr, port, out):
    deadline = time.time() + 10
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=2)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    s.settimeout(None)
    a, p = s.getsockname()[:2]
    with open(out, "w") as f:
        f.write("%s:%d\n" % (a, p))
    try:
        data = s.recv(1)
        what = "closed" if not data else "data"
    except ConnectionResetError:
        what = "reset"
    except OSError as e:
        what = "error-%d" % e.errno
    with open(out, "a") as f:
        f.write("%s %.3f\n" % (what, time.time()))


def arps(iface, addr, out):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    s.bind((iface, ETH_P_ARP))
    want = socket.inet_aton(addr)
    f = open(out, "a", buffering=1)
    while True:
        frame = s.recv(128)
        arp = frame[14:42]
        if len(arp) < 28:
            continue
        op = struct.unpack(">H", arp[6:8])[0]
        sha, spa = arp[8:14], arp[14:18]
        if spa != want:
            continue
        kind = {1: "request", 2: "reply"}.get(op, "op%d" % op)
        tpa = arp[24:28]
        gratuitous = "gratuitous" if tpa == spa else "directed"
        f.write("%.3f %s %s %s\n" % (time.time(), kind, gratuitous, sha.hex(":")))


def endpoint(text):
    a, p = text.rsplit(":", 1)
    return a, int(p)


def register(path, client, server):
    s = ctdb_connect(path)
    data = sockaddr_in(*endpoint(client)) + sockaddr_in(*endpoint(server))
    status, _ = control_status(s, TCP_CLIENT, 1, data)
    print("status %s" % status, flush=True)
    sys.stdin.read()
    s.close()


def main():
    what = sys.argv[1]
    args = sys.argv[2:]
    if what == "serve":
        serve(args[0], int(args[1]))
    elif what == "connect":
        connect(args[0], int(args[1]), args[2])
    elif what == "arps":
        arps(args[0], args[1], args[2])
    elif what == "register":
        register(args[0], args[1], args[2])
    else:
        sys.exit("unknown command %s" % what)


if __name__ == "__main__":
    main()
