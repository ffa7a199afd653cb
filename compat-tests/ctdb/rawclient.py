#!/usr/bin/env python3
"""Raw CTDB client-socket probes for compat-tests/ctdb/run.sh.

  rawclient.py SOCKET garbage      send a packet with a bad magic; exit 0 if
                                   the daemon closed that connection
  rawclient.py SOCKET hugelen      send a length word of 1 GiB; exit 0 if closed
  rawclient.py SOCKET unknown      send control opcode 9999; exit 0 if the
                                   reply is a REPLY_CONTROL with status != 0
                                   and the same connection then answers GET_PNN
  rawclient.py SOCKET survivor     open a client, let another client send
                                   garbage, then check the first still gets
                                   replies (exit 0)
"""
import socket
import struct
import sys

MAGIC = 0x43544442
REQ_CONTROL = 7
REPLY_CONTROL = 8
CURRENT_NODE = 0xF0000001


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def control(opcode, reqid, data=b""):
    body = struct.pack("<IIQIII", opcode, 0, 0, 0, 0, len(data)) + data
    length = 32 + len(body)
    padded = (length + 7) & ~7
    hdr = struct.pack("<IIIIIIII", padded, MAGIC, 1, 0, REQ_CONTROL, CURRENT_NODE, 0, reqid)
    return hdr + body + b"\0" * (padded - length)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_reply(s, reqid):
    while True:
        (length,) = struct.unpack("<I", recv_exact(s, 4))
        pkt = recv_exact(s, length - 4)
        _magic, _ver, _gen, op, _dst, _src, rid = struct.unpack("<IIIIIII", pkt[:28])
        if op == REPLY_CONTROL and rid == reqid:
            status, dlen, elen = struct.unpack("<iII", pkt[28:40])
            return status, pkt[40:40 + dlen], pkt[40 + dlen:40 + dlen + elen]


def closed_by_peer(s):
    try:
        while True:
            if not s.recv(4096):
                return True
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def main():
    path, what = sys.argv[1], sys.argv[2]
    if what == "garbage":
        s = connect(path)
        s.sendall(struct.pack("<IIIIIIII", 40, 0xDEADBEEF, 1, 0, 7, CURRENT_NODE, 0, 1) + b"\0" * 8)
        sys.exit(0 if closed_by_peer(s) else 1)
    if what == "hugelen":
        s = connect(path)
        s.sendall(struct.pack("<I", 1 << 30) + b"\0" * 28)
        sys.exit(0 if closed_by_peer(s) else 1)
    if what == "unknown":
        s = connect(path)
        s.sendall(control(9999, 77))
        status, _data, _err = read_reply(s, 77)
        if status == 0:
            print("unknown control answered with status 0")
            sys.exit(1)
        s.sendall(control(35, 78))  # GET_PNN on the same connection
        status, _data, _err = read_reply(s, 78)
        print("unknown-control status", "nonzero", "then pnn", status)
        sys.exit(0 if status >= 0 else 1)
    if what == "survivor":
        good = connect(path)
        bad = connect(path)
        bad.sendall(b"\x28\0\0\0" + b"\xff" * 36)
        bad.close()
        good.sendall(control(35, 5))
        status, _d, _e = read_reply(good, 5)
        sys.exit(0 if status >= 0 else 1)
    print("unknown probe", what)
    sys.exit(2)


if __name__ == "__main__":
    main()
