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
  rawclient.py SOCKET recovery VOLATILE PERSISTENT
                                   the controls a recovery run sends
                                   (SET_RECMODE, SETVNNMAP, DB_FREEZE,
                                   DB_TRANSACTION_*, DB_PULL, GET_DB_SEQNUM,
                                   MODIFY_FLAGS, FREEZE, START/END_RECOVERY,
                                   ...), good and bad input, on the two
                                   attached databases; prints a transcript
  rawclient.py SOCKET remote PNN   the recovery controls sent through this
                                   node to node PNN: a push of records from
                                   here into PNN's databases (the buffers as
                                   REQ_MESSAGEs to PNN), then DB_PULL from
                                   PNN streaming them back to this client,
                                   recmode, vnnmap, flags, START/END_RECOVERY
                                   on PNN; prints a transcript
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


def vacuum_once(path, db, full):
    """One DB_VACUUM run of db (attached by name first); prints its status."""
    a = connect(path)
    status, data = control_status(a, 18, 1, db.encode() + b"\0")
    (db_id,) = struct.unpack("<I", data)
    print("db_vacuum:", control_status(a, 155, 2, struct.pack("<IB", db_id, 1 if full else 0))[0])


def reply_with_messages(s, opcode, reqid, data, srvid, dest=CURRENT_NODE):
    """Sends a control (to node dest); returns (status, data, errmsg,
    [message bodies to srvid that arrived before the reply])."""
    body = struct.pack("<IIQIII", opcode, 0, 0, 0, 0, len(data)) + data
    s.sendall(packet(REQ_CONTROL, body, reqid, dest))
    msgs = []
    while True:
        got = recv_pkt(s)
        if got is None:
            return None, b"", b"", msgs
        op, rid, body = got
        if op == REPLY_CONTROL and rid == reqid:
            status, dlen, elen = struct.unpack("<iII", body[:12])
            return status, body[12:12 + dlen], body[12 + dlen:12 + dlen + elen], msgs
        if op == REQ_MESSAGE:
            sid, dlen = struct.unpack("<QI", body[:12])
            if sid == srvid:
                msgs.append(body[12:12 + dlen])


def rec_buffer_records(buf):
    """(db_id, [(key, rsn, dmaster, flags, value)]) of a marshall buffer."""
    db_id, count = struct.unpack("<II", buf[:8])
    off, recs = 8, []
    for _ in range(count):
        length, _reqid, klen, dlen = struct.unpack("<IIII", buf[off:off + 16])
        key = buf[off + 16:off + 16 + klen]
        data = buf[off + 16 + klen:off + 16 + klen + dlen]
        rsn, dmaster, _res, flags = struct.unpack("<QIII", data[:20])
        recs.append((key, rsn, dmaster, flags, data[24:]))
        off += length
    return db_id, recs


def probe_recovery(path, vol, pers):
    a = connect(path)
    ids = {}
    for name, op in ((vol, 18), (pers, 61)):
        st, data = control_status(a, op, 1, name.encode() + b"\0")
        ids[name] = struct.unpack("<I", data)[0]
    v, p = ids[vol], ids[pers]
    sink = 0xAE000000000000F1
    print("register sink:", control_status(a, 23, 2, srvid=sink)[0])
    gen = 0x01234567
    u32 = lambda x: struct.pack("<I", x)
    vnnmap = struct.pack("<III", gen, 1, 0)
    transdb = lambda db, tid: struct.pack("<II", db, tid)
    pulldb = lambda db: struct.pack("<IIQ", db, 0xFFFFFFFF, sink)
    reqid = [10]

    def st(label, opcode, data=b""):
        reqid[0] += 1
        status, out, err, _m = reply_with_messages(a, opcode, reqid[0], data, sink)
        line = "%s: %s" % (label, status)
        if out:
            line += " data=" + out.hex()
        if err:
            line += " err=%r" % err.rstrip(b"\0").decode()
        print(line)
        return status, out

    def pull(label, db):
        reqid[0] += 1
        status, out, _err, msgs = reply_with_messages(a, 146, reqid[0], pulldb(db), sink)
        # Messages may trail the reply on a slow path: collect briefly.
        a.settimeout(0.3)
        while True:
            got = recv_pkt(a, 0.3)
            if got is None:
                break
            op, _rid, body = got
            if op == REQ_MESSAGE and struct.unpack("<Q", body[:8])[0] == sink:
                msgs.append(body[12:12 + struct.unpack("<I", body[8:12])[0]])
        recs = []
        for m in msgs:
            db_id, r = rec_buffer_records(m)
            recs.extend(r)
            if db_id != db:
                print("  buffer for db 0x%08x" % db_id)
        count = struct.unpack("<I", out)[0] if len(out) == 4 else None
        print("%s: %s count=%s records=%d" % (label, status, count, len(recs)))
        for key, rsn, dmaster, flags, value in sorted(recs):
            print("  %r rsn=%d dmaster=%d flags=0x%x value=%r" % (key, rsn, dmaster, flags, value))

    st("set_recmode bad size", 16, b"\1\0")
    st("setvnnmap in normal mode", 6, vnnmap)
    st("get_recmode", 15)
    st("set_recmode active", 16, u32(1))
    st("set_recmode active again", 16, u32(1))
    st("get_recmode", 15)
    st("setvnnmap", 6, vnnmap)
    st("getvnnmap", 5)
    st("set_recmode normal with stale databases", 16, u32(0))
    st("get_recmode", 15)
    pull("db_pull not frozen", v)
    st("db_freeze volatile", 141, u32(v))
    st("db_freeze persistent", 141, u32(p))
    st("get_db_seqnum frozen", 120, u32(p) + b"\0" * 4)
    st("db_transaction_commit not started", 144, transdb(v, gen))
    st("db_transaction_start bad size", 143, u32(v))
    st("db_transaction_start volatile", 143, transdb(v, gen))
    st("db_transaction_start persistent", 143, transdb(p, gen))
    st("get_db_seqnum in transaction", 120, u32(p) + b"\0" * 4)
    st("get_db_seqnum bad size", 120, u32(p))
    st("get_db_seqnum volatile", 120, u32(v) + b"\0" * 4)
    pull("db_pull volatile", v)
    pull("db_pull persistent", p)
    st("db_pull bad size", 146, pulldb(v)[:12])
    st("db_pull unknown db", 146, pulldb(0x12345678))
    st("db_transaction_commit other tid", 144, transdb(v, gen + 1))
    st("wipe_database other tid", 67, transdb(v, gen + 1))
    st("db_transaction_commit volatile", 144, transdb(v, gen))
    st("set_recmode normal with one stale database", 16, u32(0))
    st("db_transaction_cancel persistent", 145, u32(p))
    st("db_transaction_commit cancelled", 144, transdb(p, gen))
    st("db_transaction_start persistent again", 143, transdb(p, gen))
    st("db_transaction_commit persistent", 144, transdb(p, gen))
    st("db_thaw volatile", 142, u32(v))
    st("db_thaw persistent", 142, u32(p))
    st("set_recmode normal", 16, u32(0))
    st("get_recmode", 15)
    st("getvnnmap", 5)
    st("setvnnmap after recovery", 6, vnnmap)
    flagchange = lambda pnn, new: struct.pack("<III", pnn, new, 0)
    st("modify_flags this node", 52, flagchange(0, 8))
    st("modify_flags unknown node", 52, flagchange(9, 8))
    st("modify_flags bad size", 52, flagchange(0, 8)[:8])
    reqid[0] += 1
    status, out, _e, _m = reply_with_messages(a, 91, reqid[0], b"", sink)
    flags = [struct.unpack("<I", out[4 + 24 * i + 4:4 + 24 * i + 8])[0] for i in range(struct.unpack("<I", out[:4])[0])]
    print("get_nodemap flags:", status, flags)
    st("get_reclock_file", 99)
    st("recd_ping", 87)
    st("start_recovery", 70)
    st("end_recovery in recovery", 71)
    st("freeze bad size", 33, b"\0")
    st("freeze", 33)
    pull("db_pull after freeze", v)
    # The rest of a recovery on every database (the tool attached g_lock.tdb
    # too), then normal mode.
    reqid[0] += 1
    status, out, _e, _m = reply_with_messages(a, 9, reqid[0], b"", sink)
    count = struct.unpack("<I", out[:4])[0]
    dbs = [struct.unpack("<I", out[4 + 8 * i:8 + 8 * i])[0] for i in range(count)]
    print("databases:", len(dbs))
    for db in dbs:
        name = "v" if db == v else "p" if db == p else "other"
        st("db_freeze %s" % name, 141, u32(db))
        st("db_transaction_start %s" % name, 143, transdb(db, gen))
        st("db_transaction_commit %s" % name, 144, transdb(db, gen))
    st("set_recmode normal after freeze", 16, u32(0))
    st("get_recmode", 15)
    pull("db_pull thawed", v)
    st("end_recovery", 71)
    st("get_db_seqnum after recovery", 120, u32(p) + b"\0" * 4)
    st("db_freeze bad size", 141, u32(v) + b"\0")
    st("db_freeze unknown db", 141, u32(0x12345678))
    st("db_thaw bad size", 142, b"")
    st("db_transaction_cancel bad size", 145, u32(v) * 2)
    st("db_push_start bad size", 147, pulldb(v)[:8])
    st("db_push_start not frozen", 147, pulldb(v))
    st("db_push_confirm bad size", 148, b"")
    st("db_push_confirm not frozen", 148, u32(v))
    st("db_set_healthy bad size", 121, b"")
    st("get_ban_state", 110)
    st("set_ban_state other node", 109, struct.pack("<II", 1, 10))
    st("set_ban_state bad size", 109, u32(0))
    st("set_ban_state lift", 109, struct.pack("<II", 0, 0))
    st("ipreallocated", 137)
    st("ipreallocated bad size", 137, b"\0")
    st("startup", 47)


def rec_data(key, rsn, dmaster, value, flags=0):
    data = struct.pack("<QIII", rsn, dmaster, 0, flags) + b"\0" * 4 + value
    return struct.pack("<IIII", 16 + len(key) + len(data), 0, len(key), len(data)) + key + data


def probe_remote(path, pnn):
    """Recovery controls through this node's daemon to node pnn."""
    a = connect(path)
    sink, push_srvid = 0xAE000000000000F2, 0xAE000000000000F3
    gen = 0x00ABCDEF
    u32 = lambda x: struct.pack("<I", x)
    transdb = lambda db, tid: struct.pack("<II", db, tid)
    pulldb = lambda db, sid: struct.pack("<IIQ", db, 0xFFFFFFFF, sid)
    reqid = [100]
    print("register sink:", control_status(a, 23, 1, srvid=sink)[0])

    def st(label, opcode, data=b"", show=True):
        reqid[0] += 1
        status, out, err, msgs = reply_with_messages(a, opcode, reqid[0], data, sink, pnn)
        line = "%s: %s" % (label, status)
        if out and show:
            line += " data=" + out.hex()
        if err:
            line += " err=%r" % err.rstrip(b"\0").decode()
        print(line)
        return status, out, msgs

    def pull(label, db):
        status, out, msgs = st(label, 146, pulldb(db, sink), show=False)
        a.settimeout(0.3)
        while True:
            got = recv_pkt(a, 0.5)
            if got is None:
                break
            op, _rid, body = got
            if op == REQ_MESSAGE and struct.unpack("<Q", body[:8])[0] == sink:
                msgs.append(body[12:12 + struct.unpack("<I", body[8:12])[0]])
        recs = []
        for m in msgs:
            recs.extend(rec_buffer_records(m)[1])
        count = struct.unpack("<I", out)[0] if len(out) == 4 else None
        print("  count=%s records=%d" % (count, len(recs)))
        for key, rsn, dmaster, flags, value in sorted(recs):
            print("  %r rsn=%d dmaster=%d flags=0x%x value=%r" % (key, rsn, dmaster, flags, value))

    ids = {}
    for name, op in (("rv.tdb", 18), ("rp.tdb", 61)):
        status, out, _m = st("attach %s on node %d" % (name, pnn), op, name.encode() + b"\0", show=False)
        ids[name] = struct.unpack("<I", out)[0] if status == 0 else 0
    v, p = ids["rv.tdb"], ids["rp.tdb"]
    st("set_recmode active", 16, u32(1))
    st("setvnnmap", 6, struct.pack("<IIII", gen, 2, 0, pnn))
    st("getvnnmap", 5)
    st("start_recovery", 70)
    recs = {
        v: [rec_data(b"a", 3, 0, b"va"), rec_data(b"b", 7, pnn, b"vb"),
            rec_data(b"e", 2, 0, b""), rec_data(b"f", 2, pnn, b"")],
        p: [rec_data(b"__db_sequence_number__\0", 4, 0, struct.pack("<Q", 4)),
            rec_data(b"pa", 4, 0, b"pva")],
    }
    for db, name in ((v, "volatile"), (p, "persistent")):
        st("db_freeze %s" % name, 141, u32(db))
        st("db_transaction_start %s" % name, 143, transdb(db, gen))
        st("get_db_seqnum %s" % name, 120, u32(db) + b"\0" * 4)
        st("wipe_database %s" % name, 67, transdb(db, gen))
        st("db_push_start %s" % name, 147, pulldb(db, push_srvid))
        buf = struct.pack("<II", db, len(recs[db])) + b"".join(recs[db])
        a.sendall(packet(REQ_MESSAGE, struct.pack("<QI", push_srvid, len(buf)) + buf, 0, pnn))
        st("db_push_confirm %s" % name, 148, u32(db))
        pull("db_pull %s" % name, db)
        st("get_db_seqnum %s" % name, 120, u32(db) + b"\0" * 4)
        st("db_transaction_commit %s" % name, 144, transdb(db, gen))
        st("db_thaw %s" % name, 142, u32(db))
    st("set_recmode normal", 16, u32(0))
    st("end_recovery", 71)
    st("get_recmode", 15)
    st("modify_flags node 0 healthy", 52, struct.pack("<III", 0, 0, 0))
    st("modify_flags node 7", 52, struct.pack("<III", 7, 0, 0))
    st("get_reclock_file", 99)
    st("db_pull not frozen", 146, pulldb(v, sink))


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
    if what == "remote":
        probe_remote(path, int(sys.argv[3]))
        sys.exit(0)
    if what == "recovery":
        probe_recovery(path, sys.argv[3], sys.argv[4])
        sys.exit(0)
    if what == "vacuum-once":
        vacuum_once(path, sys.argv[3], sys.argv[4] == "full")
        sys.exit(0)
    if what in with_arg:
        with_arg[what](path, sys.argv[3])
        sys.exit(0)
    print("unknown probe", what)
    sys.exit(2)


if __name__ == "__main__":
    main()
