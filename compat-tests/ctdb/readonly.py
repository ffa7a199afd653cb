#!/usr/bin/env python3
"""Read-only record probes for compat-tests/ctdb/readonly.sh.

  readonly.py fetch SOCKET DB_ID KEY
      one REQ_CALL as Samba's ctdb_fetch_lock(readonly=true) sends it
      (IMMEDIATE_MIGRATION | WANT_READONLY, the NULL function) for KEY in
      database DB_ID (hex or decimal); the daemon runs it as
      FETCH_WITH_HEADER, so the reply carries the copy's record header and
      value.  Prints "status S rsn R dmaster D flags 0xF value V"; exit 0
      when answered.
  readonly.py key LMASTER NODES PREFIX
      prints the first key PREFIX0, PREFIX1, ... whose lmaster is LMASTER
      in the vnn map [0, 1, ..., NODES-1] (the Jenkins hash modulo NODES).
"""
import socket
import struct
import sys

MAGIC = 0x43544442
REQ_CALL = 0
REPLY_CALL = 1
CURRENT_NODE = 0xF0000001
NULL_FUNC = 0xFF000001
IMMEDIATE_MIGRATION = 1
WANT_READONLY = 4
M32 = 0xFFFFFFFF


def rot(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


def mix(a, b, c):
    a = (a - c) & M32; a ^= rot(c, 4); c = (c + b) & M32
    b = (b - a) & M32; b ^= rot(a, 6); a = (a + c) & M32
    c = (c - b) & M32; c ^= rot(b, 8); b = (b + a) & M32
    a = (a - c) & M32; a ^= rot(c, 16); c = (c + b) & M32
    b = (b - a) & M32; b ^= rot(a, 19); a = (a + c) & M32
    c = (c - b) & M32; c ^= rot(b, 4); b = (b + a) & M32
    return a, b, c


def final(a, b, c):
    c ^= b; c = (c - rot(b, 14)) & M32
    a ^= c; a = (a - rot(c, 11)) & M32
    b ^= a; b = (b - rot(a, 25)) & M32
    c ^= b; c = (c - rot(b, 16)) & M32
    a ^= c; a = (a - rot(c, 4)) & M32
    b ^= a; b = (b - rot(a, 14)) & M32
    c ^= b; c = (c - rot(b, 24)) & M32
    return c


def jenkins(key):
    """tdb's Jenkins lookup3 hashlittle(key, len, 0), as ctdb hashes keys."""
    a = b = c = (0xDEADBEEF + len(key)) & M32
    blocks = (len(key) - 1) // 12 if key else 0
    for i in range(blocks):
        w = struct.unpack("<III", key[12 * i:12 * i + 12])
        a, b, c = mix((a + w[0]) & M32, (b + w[1]) & M32, (c + w[2]) & M32)
    rest = key[12 * blocks:]
    if not rest:
        return c
    w = struct.unpack("<III", rest + b"\0" * (12 - len(rest)))
    return final((a + w[0]) & M32, (b + w[1]) & M32, (c + w[2]) & M32)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("daemon closed the connection")
        b += c
    return b


def fetch(path, db_id, key):
    body = struct.pack("<IIIIII", IMMEDIATE_MIGRATION | WANT_READONLY, db_id, NULL_FUNC, 0,
                       len(key), 0) + key
    length = 32 + len(body)
    pad = (-length) % 8
    hdr = struct.pack("<IIIIIIII", length + pad, MAGIC, 1, 0, REQ_CALL, CURRENT_NODE, 0, 77)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    s.sendall(hdr + body + b"\0" * pad)
    while True:
        (n,) = struct.unpack("<I", recv_exact(s, 4))
        pkt = recv_exact(s, n - 4)
        op, rid = struct.unpack("<I", pkt[12:16])[0], struct.unpack("<I", pkt[24:28])[0]
        if op == REPLY_CALL and rid == 77:
            status, datalen = struct.unpack("<iI", pkt[28:36])
            data = pkt[36:36 + datalen]
            break
    if len(data) < 24:
        print("status %d short reply of %d bytes" % (status, len(data)))
        return
    rsn, dmaster, _, flags = struct.unpack("<QIII", data[:20])
    print("status %d rsn %d dmaster %d flags 0x%08x value %s"
          % (status, rsn, dmaster, flags, data[24:].decode(errors="replace")))


def main():
    if sys.argv[1] == "fetch":
        fetch(sys.argv[2], int(sys.argv[3], 0), sys.argv[4].encode())
    elif sys.argv[1] == "key":
        lmaster, nodes, prefix = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        i = 0
        while jenkins(("%s%d" % (prefix, i)).encode()) % nodes != lmaster:
            i += 1
        print("%s%d" % (prefix, i))
    elif sys.argv[1] == "selftest":
        assert jenkins(b"") == 0xDEADBEEF
        assert jenkins(b"Four score and seven years ago") == 0x17770551
        print("ok")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
