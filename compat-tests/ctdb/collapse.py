#!/usr/bin/env python3
"""Two clients of one node ask for the same record at once.

  collapse.py SOCKET DB_ID KEY [COUNT]

Opens COUNT (default 2) connections to the daemon's socket, sends on each,
back to back, a REQ_CALL with the NULL function and IMMEDIATE_MIGRATION for
KEY in the database DB_ID (hex or decimal), as Samba's fetch-lock does, then
waits for every REPLY_CALL.  Prints one line per client, "client N: status
S", in client order, and exits 0 when all were answered.  With the record
on another node, a daemon that collapses the fetches (FetchCollapse) sends
one REQ_CALL to the other nodes for all of them.
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


def req_call(reqid, db_id, key):
    body = struct.pack("<IIIIII", IMMEDIATE_MIGRATION, db_id, NULL_FUNC, 0, len(key), 0) + key
    length = 32 + len(body)
    pad = (-length) % 8
    hdr = struct.pack("<IIIIIIII", length + pad, MAGIC, 1, 0, REQ_CALL, CURRENT_NODE, 0, reqid)
    return hdr + body + b"\0" * pad


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("daemon closed the connection")
        b += c
    return b


def reply_status(s, reqid):
    while True:
        (n,) = struct.unpack("<I", recv_exact(s, 4))
        pkt = recv_exact(s, n - 4)
        op, rid = struct.unpack("<I", pkt[12:16])[0], struct.unpack("<I", pkt[24:28])[0]
        if op == REPLY_CALL and rid == reqid:
            return struct.unpack("<i", pkt[28:32])[0]


def main():
    path, db_id, key = sys.argv[1], int(sys.argv[2], 0), sys.argv[3].encode()
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(path)
        socks.append(s)
    for i, s in enumerate(socks):
        s.sendall(req_call(100 + i, db_id, key))
    ok = True
    for i, s in enumerate(socks):
        try:
            print("client %d: status %d" % (i, reply_status(s, 100 + i)))
        except (OSError, EOFError) as e:
            print("client %d: no reply (%s)" % (i, e))
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
