#!/usr/bin/env python3
"""Recording proxy between CTDB clients and a ctdbd unix socket.

  capture_proxy.py LISTEN_SOCKET DAEMON_SOCKET OUT_FILE

Accepts clients on LISTEN_SOCKET, opens one connection to DAEMON_SOCKET per
client and relays bytes both ways unchanged.  Every complete packet (cut by
the length word at its front) is appended to OUT_FILE as one line:

  c2d CONN HEX     a packet from client connection CONN to the daemon
  d2c CONN HEX     a packet from the daemon to client connection CONN

Prints "ready" on stdout once listening; stops on SIGTERM or SIGINT.
"""
import os
import selectors
import signal
import socket
import struct
import sys


class Stream:
    """One direction of one relayed connection."""

    def __init__(self, conn_id, direction, src, dst, out):
        self.conn_id = conn_id
        self.direction = direction
        self.src = src
        self.dst = dst
        self.out = out
        self.buf = b""

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 4:
            (length,) = struct.unpack_from("<I", self.buf)
            if length < 4 or len(self.buf) < length:
                break
            pkt, self.buf = self.buf[:length], self.buf[length:]
            self.out.write(f"{self.direction} {self.conn_id} {pkt.hex()}\n")
            self.out.flush()


def main():
    listen_path, daemon_path, out_path = sys.argv[1:4]
    out = open(out_path, "a", encoding="ascii")
    if os.path.exists(listen_path):
        os.unlink(listen_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen_path)
    srv.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    stop = []

    def on_signal(_sig, _frame):
        stop.append(True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)
    next_id = 0
    while not stop:
        try:
            events = sel.select(timeout=0.2)
        except InterruptedError:
            continue
        for key, _ in events:
            if key.data is None:
                client, _ = srv.accept()
                daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                daemon.connect(daemon_path)
                next_id += 1
                up = Stream(next_id, "c2d", client, daemon, out)
                down = Stream(next_id, "d2c", daemon, client, out)
                sel.register(client, selectors.EVENT_READ, up)
                sel.register(daemon, selectors.EVENT_READ, down)
                continue
            stream = key.data
            try:
                data = stream.src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (stream.src, stream.dst):
                    try:
                        sel.unregister(s)
                    except (KeyError, ValueError):
                        pass
                    s.close()
                continue
            stream.feed(data)
            try:
                stream.dst.sendall(data)
            except OSError:
                pass
    out.close()
    srv.close()
    os.unlink(listen_path)


if __name__ == "__main__":
    main()
