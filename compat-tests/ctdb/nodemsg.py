#!/usr/bin/env python3
"""Srvid messages between clients of different nodes, for nodelink.sh.

  nodemsg.py SOCKET listen SRVID SECONDS
      registers SRVID, prints "ready", then prints each message for SRVID
      that arrives within SECONDS as "got DATA" and exits
  nodemsg.py SOCKET send DEST SRVID DATA
      sends one REQ_MESSAGE for SRVID to node DEST (a pnn, or "all" for
      CTDB_BROADCAST_ALL, "connected" for CTDB_BROADCAST_CONNECTED)
  nodemsg.py SOCKET control DEST OPCODE
      sends an empty control to DEST and prints "status N errmsg TEXT"
"""
import socket
import struct
import sys
import time

MAGIC = 0x43544442
REQ_MESSAGE = 5
REQ_CONTROL = 7
REPLY_CONTROL = 8
CURRENT_NODE = 0xF0000001
DESTS = {"all": 0xF0000002, "active": 0xF0000003, "connected": 0xF0000004}
REGISTER_SRVID = 23


def packet(op, body, reqid, dest=CURRENT_NODE):
    length = 32 + len(body)
    padded = (length + 7) & ~7
    hdr = struct.pack("<IIIIIIII", padded, MAGIC, 1, 0, op, dest, 0, reqid)
    return hdr + body + b"\0" * (padded - length)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def recv_pkt(s, timeout):
    s.settimeout(timeout)
    try:
        (length,) = struct.unpack("<I", recv_exact(s, 4))
    except socket.timeout:
        return None
    s.settimeout(10)
    pkt = recv_exact(s, length - 4)
    _magic, _ver, _gen, op, _dst, _src, rid = struct.unpack("<IIIIIII", pkt[:28])
    return op, rid, pkt[28:]


def control(s, dest, opcode, reqid, srvid=0, data=b""):
    body = struct.pack("<IIQIII", opcode, 0, srvid, 0, 0, len(data)) + data
    s.sendall(packet(REQ_CONTROL, body, reqid, dest))
    while True:
        got = recv_pkt(s, 30)
        if got is None:
            return None, ""
        op, rid, body = got
        if op == REPLY_CONTROL and rid == reqid:
            status, dlen, elen = struct.unpack("<iII", body[:12])
            err = body[12 + dlen:12 + dlen + elen].rstrip(b"\0").decode()
            return status, err


def dest_of(text):
    return DESTS.get(text, None) or int(text)


def main():
    path, mode = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    if mode == "listen":
        srvid, secs = int(sys.argv[3], 0), float(sys.argv[4])
        status, _ = control(s, CURRENT_NODE, REGISTER_SRVID, 1, srvid=srvid)
        print("ready" if status == 0 else "register failed", flush=True)
        end = time.time() + secs
        while time.time() < end:
            got = recv_pkt(s, max(0.05, end - time.time()))
            if got is None:
                break
            op, _rid, body = got
            if op == REQ_MESSAGE:
                sid, dlen = struct.unpack("<QI", body[:12])
                if sid == srvid:
                    print("got " + body[12:12 + dlen].decode(errors="backslashreplace"), flush=True)
    elif mode == "send":
        dest, srvid, data = dest_of(sys.argv[3]), int(sys.argv[4], 0), sys.argv[5].encode()
        body = struct.pack("<QI", srvid, len(data)) + data
        s.sendall(packet(REQ_MESSAGE, body, 0, dest))
        time.sleep(0.2)
    elif mode == "control":
        status, err = control(s, dest_of(sys.argv[3]), int(sys.argv[4]), 7)
        print("status %s errmsg %s" % (status, err))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
