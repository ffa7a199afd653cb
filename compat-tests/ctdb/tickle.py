#!/usr/bin/env python3
"""Helpers of compat-tests/ctdb/tickle.sh, each run inside a network
namespace of the test:

  tickle.py serve ADDR PORT          (IPv4 or IPv6) accept connections on ADDR:PORT and hold
                                     them open (never answers); runs until
                                     killed
  tickle.py connect ADDR PORT OUT    connect to ADDR:PORT from this
                                     namespace; writes "LOCALADDR:PORT" to
                                     OUT ("[ADDR]:PORT" for IPv6), then
                                     waits in recv; when the
                                     connection is reset (or ends) appends
                                     "reset TIME" (epoch seconds) or
                                     "closed TIME" to OUT and exits
  tickle.py announces IFACE OUT      log every ARP and IPv6 neighbour
                                     advertisement received on IFACE to OUT,
                                     one line a frame: "TIME KIND HOW ADDRESS
                                     SENDER-MAC" (KIND request, reply or
                                     advert; HOW gratuitous or directed for
                                     ARP, the flags, hop limit and checksum
                                     check for an advertisement)
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
ETH_P_ALL = 0x0003


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
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
    if ":" in a:
        a = "[%s]" % a
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


def checksum_ok(src, dst, msg):
    """The ICMPv6 checksum of msg (pseudo-header included) verifies."""
    data = src + dst + struct.pack(">IxxxB", len(msg), 58) + msg
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def announcement(frame):
    """(kind, how, address) of an ARP or neighbour advertisement frame."""
    etype = struct.unpack(">H", frame[12:14])[0]
    if etype == ETH_P_ARP and len(frame) >= 42:
        arp = frame[14:42]
        op = struct.unpack(">H", arp[6:8])[0]
        spa, tpa = arp[14:18], arp[24:28]
        kind = {1: "request", 2: "reply"}.get(op, "op%d" % op)
        how = "gratuitous" if tpa == spa else "directed"
        return kind, how, socket.inet_ntop(socket.AF_INET, spa)
    if etype == 0x86DD and len(frame) >= 86 and frame[20] == 58 and frame[54] == 136:
        ip6, msg = frame[14:54], frame[54:]
        plen = struct.unpack(">H", ip6[4:6])[0]
        msg = msg[:plen]
        good = checksum_ok(ip6[8:24], ip6[24:40], msg)
        override = "override" if msg[4] & 0x20 else "no-override"
        how = "%s-%s-hlim%d-%s" % ("na", override, ip6[7], "sum-ok" if good else "bad-sum")
        return "advert", how, socket.inet_ntop(socket.AF_INET6, msg[8:24])
    return None


def announces(iface, out):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, ETH_P_ALL))
    f = open(out, "a", buffering=1)
    while True:
        frame, info = s.recvfrom(256)
        if info[2] == socket.PACKET_OUTGOING:
            continue
        a = announcement(frame)
        if a:
            f.write("%.3f %s %s %s %s\n" % (time.time(), a[0], a[1], a[2], frame[6:12].hex(":")))


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
    elif what == "announces":
        announces(args[0], args[1])
    elif what == "register":
        register(args[0], args[1], args[2])
    else:
        sys.exit("unknown command %s" % what)


if __name__ == "__main__":
    main()
