#!/usr/bin/env python3
"""Raw event-protocol client for compat-tests/ctdb/eventd.sh: the requests
Debian's ctdb-event tool never sends (SCRIPT enable/disable go through the
filesystem in the 4.17 tool) and malformed packets.

  eventd_raw.py SOCKET script COMPONENT SCRIPT enable|disable
  eventd_raw.py SOCKET garbage KIND      (KIND: badcmd, truncated, short)
  eventd_raw.py SOCKET status COMPONENT EVENT

Prints one line per request: the reply's command and result (or "dropped"
when the daemon closed the connection without a reply).
"""
import socket
import struct
import sys


def stringn(s):
    b = s.encode() + b"\0"
    return struct.pack("<I", len(b)) + b


def packet(body, reqid=7):
    return struct.pack("<III", 12 + len(body), 0, reqid) + body


def exchange(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(data)
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) >= 4 and len(buf) >= struct.unpack("<I", buf[:4])[0]:
                break
    except socket.timeout:
        return "timeout"
    finally:
        s.close()
    if not buf:
        return "dropped"
    length, _version, reqid = struct.unpack("<III", buf[:12])
    cmd, result = struct.unpack("<Ii", buf[12:20])
    extra = ""
    if cmd == 2 and result == 0:
        summary, count = struct.unpack("<ii", buf[20:28])
        extra = f" summary={summary} scripts={count}"
    return f"reply reqid={reqid} cmd={cmd} result={result} length={length}{extra}"


def main():
    path, what = sys.argv[1], sys.argv[2]
    if what == "script":
        comp, script, action = sys.argv[3:6]
        body = struct.pack("<I", 3) + stringn(comp) + stringn(script)
        body += struct.pack("<I", 1 if action == "enable" else 0)
        print(f"script {action} {comp} {script}: {exchange(path, packet(body))}")
    elif what == "status":
        comp, event = sys.argv[3:5]
        body = struct.pack("<I", 2) + stringn(comp) + stringn(event)
        print(f"status {comp} {event}: {exchange(path, packet(body))}")
    elif what == "garbage":
        kind = sys.argv[3]
        if kind == "badcmd":
            data = packet(struct.pack("<I", 9) + b"\1\2\3\4")
        elif kind == "truncated":
            data = packet(struct.pack("<I", 1) + struct.pack("<I", 50) + b"legacy\0")
        else:
            data = struct.pack("<I", 8) + b"\xff" * 4
        print(f"garbage {kind}: {exchange(path, data)}")


main()
