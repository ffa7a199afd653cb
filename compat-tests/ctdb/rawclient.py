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
  rawclient.py SOCKET messages     srvid register/deregister/check and
                                   messages between two clients; prints a
                                   transcript (compared between daemons)
  rawclient.py SOCKET hold SRVID.. stay connected with these srvids
                                   registered; prints "ready PID", then
                                   waits until stdin is closed
  rawclient.py SOCKET calls DB     REQ_CALL with the NULL, FETCH and
                                   FETCH_WITH_HEADER functions on volatile DB,
                                   then TRAVERSE_START_EXT with and without
                                   empty records; prints a transcript
  rawclient.py SOCKET smbcontrols DB
                                   the controls a clustered smbd sends besides
                                   the tool's (ENABLE_SEQNUM, UPDATE_SEQNUM,
                                   TCP_CLIENT, GET_PUBLIC_IPS, REGISTER_NOTIFY,
                                   DEREGISTER_NOTIFY), good and bad input;
                                   prints a transcript
  rawclient.py SOCKET pubips ADDR  GET_PUBLIC_IPS with and without the
                                   only-available flag, TCP_CLIENT to the
                                   public address ADDR and to others; prints
                                   a transcript
"""
import socket
import struct
import sys
import time

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


REQ_CALL = 0
REPLY_CALL = 1
REQ_MESSAGE = 5
NULL_FUNC = 0xFF000001
FETCH_FUNC = 0xFF000002
FETCH_WITH_HEADER_FUNC = 0xFF000003
IMMEDIATE_MIGRATION = 1


def packet(op, body, reqid, dest=CURRENT_NODE):
    length = 32 + len(body)
    padded = (length + 7) & ~7
    hdr = struct.pack("<IIIIIIII", padded, MAGIC, 1, 0, op, dest, 0, reqid)
    return hdr + body + b"\0" * (padded - length)


def ctl(opcode, reqid, data=b"", srvid=0):
    body = struct.pack("<IIQIII", opcode, 0, srvid, 0, 0, len(data)) + data
    return packet(REQ_CONTROL, body, reqid)


def recv_pkt(s, timeout=5.0):
    """Next packet as (op, reqid, body), or None on timeout."""
    s.settimeout(timeout)
    try:
        (length,) = struct.unpack("<I", recv_exact(s, 4))
    except socket.timeout:
        return None
    s.settimeout(5)
    pkt = recv_exact(s, length - 4)
    _magic, _ver, _gen, op, _dst, _src, rid = struct.unpack("<IIIIIII", pkt[:28])
    return op, rid, pkt[28:]


def control_status(s, opcode, reqid, data=b"", srvid=0):
    """Sends a control and returns (status, data), printing any messages
    that arrive first."""
    s.sendall(ctl(opcode, reqid, data, srvid))
    while True:
        got = recv_pkt(s)
        if got is None:
            return None, b""
        op, rid, body = got
        if op == REPLY_CONTROL and rid == reqid:
            status, dlen, _elen = struct.unpack("<iII", body[:12])
            return status, body[12:12 + dlen]
        if op == REQ_MESSAGE:
            show_message(body)


def show_message(body, who="A"):
    srvid, dlen = struct.unpack("<QI", body[:12])
    print("%s got message srvid=0x%x data=%r" % (who, srvid, body[12:12 + dlen]))


def message(srvid, data):
    return packet(REQ_MESSAGE, struct.pack("<QI", srvid, len(data)) + data, 0)


def drain_messages(s, who, timeout=0.5):
    n = 0
    while True:
        got = recv_pkt(s, timeout)
        if got is None:
            break
        op, _rid, body = got
        if op == REQ_MESSAGE:
            srvid = struct.unpack("<Q", body[:8])[0]
            if srvid == 0xF101000000000000:
                continue  # leader announcements: periodic, not part of the test
            show_message(body, who)
            n += 1
    if n == 0:
        print("%s got no message" % who)


def probe_messages(path):
    import os
    x, y = 0xAE00000000001234, 0xAE00000000005678
    a, b = connect(path), connect(path)
    print("register X:", control_status(a, 23, 1, srvid=x)[0])
    print("register X again:", control_status(a, 23, 2, srvid=x)[0])
    b.sendall(message(x, b"hello"))
    drain_messages(a, "A")
    b.sendall(message(y, b"nobody"))
    drain_messages(a, "A")
    b.sendall(packet(REQ_MESSAGE, struct.pack("<QI", x, 2) + b"p0", 0, dest=0))
    drain_messages(a, "A")
    pid = os.getpid()
    chk = lambda sid: struct.pack("<iQ", pid, sid)
    print("check pid X:", control_status(b, 151, 3, chk(x))[0])
    print("check pid Y:", control_status(b, 151, 4, chk(y))[0])
    print("check pid 1 X:", control_status(b, 151, 5, struct.pack("<iQ", 1, x))[0])
    print("register X on B:", control_status(b, 23, 6, srvid=x)[0])
    a.sendall(message(x, b"both"))
    drain_messages(a, "A")
    drain_messages(b, "B")
    print("deregister X:", control_status(a, 24, 7, srvid=x)[0])
    print("deregister X again:", control_status(a, 24, 8, srvid=x)[0])
    print("deregister Y:", control_status(a, 24, 9, srvid=y)[0])
    b.sendall(message(x, b"after"))
    drain_messages(a, "A")
    drain_messages(b, "B")
    print("check pid X:", control_status(a, 151, 10, chk(x))[0])
    b.close()
    time.sleep(0.2)
    print("check pid X after B left:", control_status(a, 151, 11, chk(x))[0])


def req_call(s, reqid, db_id, callid, key, flags=0):
    body = struct.pack("<IIIIII", flags, db_id, callid, 0, len(key), 0) + key
    s.sendall(packet(REQ_CALL, body, reqid))
    while True:
        got = recv_pkt(s, 2.0)
        if got is None:
            return None
        op, rid, body = got
        if op == REPLY_CALL and rid == reqid:
            status, dlen = struct.unpack("<iI", body[:8])
            return status, body[8:8 + dlen]


def show_header(data):
    if len(data) < 24:
        return "short(%d)" % len(data)
    rsn, dmaster, _r, flags = struct.unpack("<QIII", data[:20])
    return "rsn=%d dmaster=%d flags=0x%x value=%r" % (rsn, dmaster, flags, data[24:])


def probe_calls(path, db):
    a = connect(path)
    status, data = control_status(a, 18, 1, db.encode() + b"\0")
    print("attach:", status)
    (db_id,) = struct.unpack("<I", data)
    for n, (callid, key) in enumerate([
            (NULL_FUNC, b"rawkey1"), (FETCH_FUNC, b"rawkey1"),
            (FETCH_WITH_HEADER_FUNC, b"rawkey1"), (FETCH_FUNC, b"key1"),
            (FETCH_WITH_HEADER_FUNC, b"key1"), (FETCH_WITH_HEADER_FUNC, b"newkey"),
            (0x1234, b"key1"), (FETCH_WITH_HEADER_FUNC, b"key1")]):
        r = req_call(a, 100 + n, db_id, callid, key, IMMEDIATE_MIGRATION)
        if r is None:
            print("call 0x%x %r: no reply" % (callid, key))
        elif callid == FETCH_WITH_HEADER_FUNC:
            print("call 0x%x %r: status=%d %s" % (callid, key, r[0], show_header(r[1])))
        else:
            print("call 0x%x %r: status=%d data=%r" % (callid, key, r[0], r[1]))
    r = req_call(a, 200, 0x12345678, FETCH_FUNC, b"key1")
    print("call on unknown db:", "no reply" if r is None else r)
    srvid = 0xAE000000000000AA
    print("register:", control_status(a, 23, 2, srvid=srvid)[0])
    for empty in (0, 1):
        trav = struct.pack("<IIQB7x", db_id, 42 + empty, srvid, empty)
        status, _ = control_status(a, 131, 3 + empty, trav)
        print("traverse_start_ext empty=%d: %s" % (empty, status))
        recs = []
        while True:
            got = recv_pkt(a, 5.0)
            if got is None:
                print("traverse: timed out")
                break
            op, _rid, body = got
            if op != REQ_MESSAGE or struct.unpack("<Q", body[:8])[0] != srvid:
                continue
            rec = body[12:]
            length, reqid, klen, dlen = struct.unpack("<IIII", rec[:16])
            key, data = rec[16:16 + klen], rec[16 + klen:16 + klen + dlen]
            if klen == 0 and dlen == 0:
                print("end marker reqid=%d length=%d" % (reqid, length))
                break
            recs.append("  reqid=%d key=%r %s" % (reqid, key, show_header(data)))
        for r in sorted(recs):
            print(r)
    print("bad traverse size:", control_status(a, 131, 9, b"\0" * 20)[0])
    print("traverse unknown db:", control_status(a, 131, 10, struct.pack("<IIQB7x", 0x12345678, 0, srvid, 0))[0])


def sockaddr_in(ip, port):
    """ctdb_sock_addr for IPv4: family (host order), port and address
    (network order), zero padded to 28 bytes."""
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(ip) + b"\0" * 20


def probe_smbcontrols(path, db):
    a, b = connect(path), connect(path)
    status, data = control_status(a, 18, 1, db.encode() + b"\0")
    (db_id,) = struct.unpack("<I", data)
    dbarg = struct.pack("<I", db_id)
    print("enable_seqnum:", control_status(a, 26, 2, dbarg)[0])
    print("enable_seqnum again:", control_status(a, 26, 3, dbarg)[0])
    print("enable_seqnum unknown db:", control_status(a, 26, 4, struct.pack("<I", 0x12345678))[0])
    print("enable_seqnum bad size:", control_status(a, 26, 5, dbarg + b"\0\0\0\0")[0])
    print("update_seqnum from a client:", control_status(a, 27, 6, dbarg)[0])
    print("update_seqnum bad size:", control_status(a, 27, 7, b"")[0])
    # ctdb_connection as smbd fills it: src = the SMB client, dst = the server
    lo = sockaddr_in("127.0.0.1", 40000) + sockaddr_in("127.0.0.1", 445)
    other = sockaddr_in("10.1.2.4", 40000) + sockaddr_in("10.1.2.3", 445)
    print("tcp_client loopback:", control_status(a, 44, 8, lo)[0])
    print("tcp_client other address:", control_status(a, 44, 9, other)[0])
    print("tcp_client bad size:", control_status(a, 44, 10, lo[:40])[0])
    st, data = control_status(a, 90, 11)
    print("get_public_ips:", st, data.hex())
    print("get_public_ips with data:", control_status(a, 90, 12, b"\0\0\0\0")[0])
    n, m = 0xAE000000000000C1, 0xAE000000000000C2
    notify = lambda sid, d: struct.pack("<QI", sid, len(d)) + d
    print("register_notify N:", control_status(a, 114, 13, notify(n, b"bye"))[0])
    print("register_notify N again:", control_status(a, 114, 14, notify(n, b"again"))[0])
    print("register_notify M:", control_status(a, 114, 15, notify(m, b"m"))[0])
    print("register_notify short:", control_status(a, 114, 16, b"\0" * 11)[0])
    print("register_notify bad len:", control_status(a, 114, 17, notify(m, b"xy") + b"z")[0])
    print("deregister_notify M:", control_status(a, 115, 18, struct.pack("<Q", m))[0])
    print("deregister_notify M again:", control_status(a, 115, 19, struct.pack("<Q", m))[0])
    print("deregister_notify bad size:", control_status(a, 115, 20, b"\0" * 4)[0])
    print("B registers N and M:", control_status(b, 23, 21, srvid=n)[0], control_status(b, 23, 22, srvid=m)[0])
    drain_messages(b, "B", 0.3)
    a.close()
    drain_messages(b, "B")


def probe_vacuum(path, db):
    """DB_VACUUM (155): ctdb_db_vacuum is db_id u32 plus a one-byte bool
    (full run).  Never sent for a persistent db: Samba's daemon has no
    vacuum handle for one and does not survive the run's end."""
    a = connect(path)
    status, data = control_status(a, 18, 1, db.encode() + b"\0")
    (db_id,) = struct.unpack("<I", data)
    print("db_vacuum fast:", control_status(a, 155, 2, struct.pack("<IB", db_id, 0))[0])
    print("db_vacuum full:", control_status(a, 155, 3, struct.pack("<IB", db_id, 1))[0])
    print("db_vacuum unknown db:", control_status(a, 155, 4, struct.pack("<IB", 0x12345678, 0))[0])
    print("db_vacuum bad size:", control_status(a, 155, 5, struct.pack("<I", db_id))[0])


def ctl_flags(opcode, reqid, data=b"", flags=0):
    body = struct.pack("<IIQIII", opcode, 0, 0, 0, flags, len(data)) + data
    return packet(REQ_CONTROL, body, reqid)


def probe_pubips(path, addr):
    s = connect(path)
    for n, flags in enumerate((0, 0x10000)):
        s.sendall(ctl_flags(90, 1 + n, flags=flags))
        while True:
            got = recv_pkt(s)
            if got is None:
                print("get_public_ips flags 0x%x: no reply" % flags)
                break
            op, rid, body = got
            if op == REPLY_CONTROL and rid == 1 + n:
                status, dlen, _elen = struct.unpack("<iII", body[:12])
                data = body[12:12 + dlen]
                print("get_public_ips flags 0x%x: status %d, %d bytes" % (flags, status, dlen))
                if dlen >= 4:
                    (num,) = struct.unpack("<I", data[:4])
                    for i in range(num):
                        e = data[4 + 32 * i:4 + 32 * (i + 1)]
                        (pnn,) = struct.unpack("<i", e[:4])
                        print("  pnn %d %s family %d port %d" % (
                            pnn, socket.inet_ntoa(e[8:12]), struct.unpack("<H", e[4:6])[0],
                            struct.unpack(">H", e[6:8])[0]))
                break
    # src = the SMB client, dst = the server address (as smbd fills it)
    for n, (src, dst) in enumerate([("10.1.1.1", addr), ("127.0.0.1", "127.0.0.1"), ("10.1.1.1", "10.1.1.2")]):
        st = control_status(s, 44, 10 + n, sockaddr_in(src, 40000) + sockaddr_in(dst, 445))[0]
        print("tcp_client %s -> %s: %s" % (src, dst, st))


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
    if what == "messages":
        probe_messages(path)
        sys.exit(0)
    if what == "hold":
        import os
        a = connect(path)
        for n, sid in enumerate(sys.argv[3:]):
            if control_status(a, 23, n + 1, srvid=int(sid, 0))[0] != 0:
                sys.exit(1)
        print("ready", os.getpid(), flush=True)
        sys.stdin.read()
        sys.exit(0)
    # Probes that take one argument after the socket path.
    with_arg = {
        "smbcontrols": probe_smbcontrols,
        "pubips": probe_pubips,
        "vacuum": probe_vacuum,
        "calls": probe_calls,
    }
    if what in with_arg:
        with_arg[what](path, sys.argv[3])
        sys.exit(0)
    print("unknown probe", what)
    sys.exit(2)


if __name__ == "__main__":
    main()
