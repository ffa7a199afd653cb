#!/usr/bin/python3
"""An SMB2 client for compat-tests/ctdb/failover.sh (Debian's python3-impacket).

Debian's smbclient has no SMB2 byte-range lock command and Samba's own python
bindings none either, so this client opens files with a chosen share mode,
takes and tests SMB2 byte-range locks, and holds a connection open while the
node serving it is killed.

  smbclient_failover.py hold ADDR USER PASS FILE
      Connects to //ADDR/share, opens FILE for read and write sharing only
      read (so that other opens for write or delete fail with a sharing
      violation), takes an exclusive lock on bytes 0..99, prints
      "held PORT" (its local TCP port) and then idles: it sends nothing, so
      only the server side (a tickle ACK answered by a reset) can end the
      connection.  It also watches eth0 and prints "segment TIME FLAGS SEQ"
      for every segment without data from ADDR:445 to its port (the tickle
      ACK and the reset).  When the socket is reset or closed it prints
      "reset TIME ERROR" (TIME from time.time()), then reconnects every
      0.2 s until a new session reads FILE; prints "reconnected TIME
      SHA256".  Ends on SIGTERM.
  smbclient_failover.py probe ADDR USER PASS FILE
      One attempt (1 s timeouts): connects and reads FILE; prints its
      SHA256 and exits 0, or the error and exits 1.
  smbclient_failover.py check ADDR USER PASS FILE
      Opens FILE as another client would while someone holds it as `hold`
      does, and prints one line per check: "share-write STATUS" (an open
      for write), "share-delete STATUS" (an open for delete), "lock STATUS"
      (an exclusive lock on bytes 10..19, fail immediately), "free-lock
      STATUS" (an exclusive lock on bytes 200..209, which nobody holds).
      STATUS is OK or the NT status name.
  smbclient_failover.py grab ADDR USER PASS FILE
      Opens FILE for write denying all sharing and locks bytes 0..99:
      "open STATUS" and "lock STATUS" (what a client gets once the holder's
      node is gone and its opens with it).
"""

import hashlib
import select
import signal
import socket
import struct
import sys
import threading
import time

from impacket import nt_errors, smb3structs
from impacket.smb3structs import (
    FILE_READ_DATA,
    FILE_SHARE_READ,
    FILE_SHARE_WRITE,
    FILE_WRITE_DATA,
    SMB2_DIALECT_21,
    SMB2_LOCK,
    SMB2_LOCKFLAG_EXCLUSIVE_LOCK,
    SMB2_LOCKFLAG_FAIL_IMMEDIATELY,
)
from impacket.smbconnection import SessionError, SMBConnection

SHARE = "share"
DELETE = 0x00010000
OUTPUT = threading.Lock()


def say(line):
    """One whole line on stdout, flushed (the segment watcher is a thread)."""
    with OUTPUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def status_name(err):
    """The NT status name of an impacket error (or its text)."""
    code = None
    if hasattr(err, "getErrorCode"):  # smbconnection.SessionError
        code = err.getErrorCode()
    elif hasattr(err, "get_error_code"):  # smb3.SessionError
        code = err.get_error_code()
    if code is not None:
        return nt_errors.ERROR_MESSAGES.get(code, ("0x%08x" % code,))[0]
    return "%s: %s" % (type(err).__name__, err)


def connect(addr, user, password, timeout):
    """A logged-on SMB 2.1 session to //addr/share and its tree id."""
    conn = SMBConnection(addr, addr, sess_port=445, timeout=timeout, preferredDialect=SMB2_DIALECT_21)
    conn.login(user, password)
    return conn, conn.connectTree(SHARE)


def lock_range(conn, tree, fid, offset, length):
    """SMB2 LOCK, exclusive and fail-immediately, of offset..offset+length-1.

    impacket's own SMB3.lock() joins the elements with str(), which breaks on
    python3; this sends the same request with the elements as bytes."""
    smb = conn.getSMBServer()
    element = smb3structs.SMB2_LOCK_ELEMENT()
    element["Offset"] = offset
    element["Length"] = length
    element["Flags"] = SMB2_LOCKFLAG_EXCLUSIVE_LOCK | SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    packet = smb.SMB_PACKET()
    packet["Command"] = SMB2_LOCK
    packet["TreeID"] = tree
    request = smb3structs.SMB2Lock()
    request["FileID"] = fid
    request["LockCount"] = 1
    request["Locks"] = element.getData()
    packet["Data"] = request
    answer = smb.recvSMB(smb.sendSMB(packet))
    if not answer.isValidAnswer(nt_errors.STATUS_SUCCESS):
        raise SessionError(answer["Status"], answer)


def read_all(conn, tree, name):
    """The whole content of name, opened for reading with all sharing."""
    fid = conn.openFile(tree, name, desiredAccess=FILE_READ_DATA, shareMode=FILE_SHARE_READ | FILE_SHARE_WRITE | 4)
    data = b""
    while True:
        chunk = conn.readFile(tree, fid, offset=len(data), bytesToRead=65536)
        if not chunk:
            break
        data += chunk
        if len(chunk) < 65536:
            break
    conn.closeFile(tree, fid)
    return data


def wait_for_reset(sock):
    """Blocks until the peer resets or closes sock; the error seen."""
    while True:
        select.select([sock], [], [])
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except OSError as err:
            return type(err).__name__
        if not data:
            return "EOF"
        return "DATA"  # the server spoke unasked: an oplock break or similar


ETH_P_IP = 0x0800
TCP_RST = 0x04
TCP_ACK = 0x10


def watch_segments(server, port):
    """Prints every TCP segment from server:445 to our port that carries no
    data: "segment TIME FLAGS SEQ" (FLAGS: ACK, RST, ...).  A tickle ACK is
    a bare ACK whose sequence number is not the server's (CTDB sends 0).
    Runs in a thread, reading eth0 through a packet socket."""
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    raw.bind(("eth0", 0))
    want_src = socket.inet_aton(server)
    while True:
        frame, info = raw.recvfrom(65535)
        if info[2] == socket.PACKET_OUTGOING:
            continue
        ip = frame[14:]
        if len(ip) < 20 or ip[9] != socket.IPPROTO_TCP or ip[12:16] != want_src:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:]
        sport, dport, seq = struct.unpack("!HHI", tcp[0:8])
        offset = (tcp[12] >> 4) * 4
        if sport != 445 or dport != port or total - ihl - offset > 0:
            continue
        flags = tcp[13]
        names = [n for bit, n in ((TCP_RST, "RST"), (TCP_ACK, "ACK"), (0x01, "FIN"), (0x02, "SYN")) if flags & bit]
        say("segment %.3f %s %d" % (time.time(), "|".join(names), seq))


def cmd_hold(addr, user, password, name):
    """hold: see the module doc."""
    conn, tree = connect(addr, user, password, 5)
    fid = conn.openFile(tree, name, desiredAccess=FILE_READ_DATA | FILE_WRITE_DATA, shareMode=FILE_SHARE_READ)
    lock_range(conn, tree, fid, 0, 100)
    sock = conn.getSMBServer().get_socket()
    port = sock.getsockname()[1]
    threading.Thread(target=watch_segments, args=(addr, port), daemon=True).start()
    say("held %d" % port)
    how = wait_for_reset(sock)
    say("reset %.3f %s" % (time.time(), how))
    while True:
        try:
            conn2, tree2 = connect(addr, user, password, 1)
            data = read_all(conn2, tree2, name)
            say("reconnected %.3f %s" % (time.time(), hashlib.sha256(data).hexdigest()))
            break
        except Exception as err:  # noqa: BLE001 - every failure means "not yet"
            say("# reconnect failed: %s" % status_name(err))
            time.sleep(0.2)
    signal.pause()


def cmd_probe(addr, user, password, name):
    """probe: see the module doc."""
    try:
        conn, tree = connect(addr, user, password, 1)
        print(hashlib.sha256(read_all(conn, tree, name)).hexdigest())
        return 0
    except Exception as err:  # noqa: BLE001
        print(status_name(err))
        return 1


def try_status(action):
    """OK when action() succeeds, otherwise the NT status name."""
    try:
        action()
        return "OK"
    except Exception as err:  # noqa: BLE001
        return status_name(err)


def cmd_check(addr, user, password, name):
    """check: see the module doc."""
    conn, tree = connect(addr, user, password, 5)
    all_share = FILE_SHARE_READ | FILE_SHARE_WRITE | 4
    print("share-write " + try_status(lambda: conn.openFile(tree, name, desiredAccess=FILE_WRITE_DATA, shareMode=all_share)))
    print("share-delete " + try_status(lambda: conn.openFile(tree, name, desiredAccess=DELETE, shareMode=all_share)))
    fid = conn.openFile(tree, name, desiredAccess=FILE_READ_DATA, shareMode=all_share)
    print("lock " + try_status(lambda: lock_range(conn, tree, fid, 10, 10)))
    print("free-lock " + try_status(lambda: lock_range(conn, tree, fid, 200, 10)))
    return 0


def cmd_grab(addr, user, password, name):
    """grab: see the module doc."""
    conn, tree = connect(addr, user, password, 5)
    fids = []
    print("open " + try_status(lambda: fids.append(conn.openFile(tree, name, desiredAccess=FILE_READ_DATA | FILE_WRITE_DATA, shareMode=0))))
    if fids:
        print("lock " + try_status(lambda: lock_range(conn, tree, fids[0], 0, 100)))
    else:
        print("lock NOT-TRIED")
    return 0


def main():
    """Dispatches to the subcommand named by argv[1]."""
    commands = {"hold": cmd_hold, "probe": cmd_probe, "check": cmd_check, "grab": cmd_grab}
    if len(sys.argv) != 6 or sys.argv[1] not in commands:
        sys.stderr.write(__doc__)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return commands[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main() or 0)
