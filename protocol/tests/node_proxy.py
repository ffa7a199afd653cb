#!/usr/bin/env python3
"""Recording TCP proxy for the CTDB node transport (see cluster_capture.sh).

  node_proxy.py LISTEN_ADDR TARGET_ADDR SOURCE_ADDR TAG OUT_FILE

Listens on LISTEN_ADDR:4379; for each connection opens one to
TARGET_ADDR:4379 from SOURCE_ADDR (so the target daemon sees the address its
nodes file gives the sender) and relays bytes unchanged.  Every complete
packet the connecting node sends is appended to OUT_FILE as
"TAG CONN HEX" (node connections carry packets one way only).  Prints
"ready" once listening; stops on SIGTERM.
"""
import selectors
import signal
import socket
import struct
import sys

PORT = 4379


def main():
    listen_addr, target_addr, source_addr, tag, out_path = sys.argv[1:6]
    out = open(out_path, "a", encoding="ascii")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((listen_addr, PORT))
    srv.listen(8)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print("ready", flush=True)
    conns = 0
    while not stop:
        try:
            events = sel.select(timeout=0.2)
        except InterruptedError:
            continue
        for key, _ in events:
            if key.data is None:
                client, _ = srv.accept()
                up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                up.bind((source_addr, 0))
                try:
                    up.connect((target_addr, PORT))
                except OSError:
                    client.close()
                    continue
                conns += 1
                sel.register(client, selectors.EVENT_READ, (client, up, conns, [b""], True))
                sel.register(up, selectors.EVENT_READ, (up, client, conns, [b""], False))
                continue
            src, dst, conn, buf, record = key.data
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        sel.unregister(s)
                    except (KeyError, ValueError):
                        pass
                    s.close()
                continue
            if record:
                buf[0] += data
                while len(buf[0]) >= 4:
                    (length,) = struct.unpack_from("<I", buf[0])
                    if length < 4 or len(buf[0]) < length:
                        break
                    pkt, buf[0] = buf[0][:length], buf[0][length:]
                    out.write(f"{tag} {conn} {pkt.hex()}\n")
                    out.flush()
            try:
                dst.sendall(data)
            except OSError:
                pass
    out.close()


if __name__ == "__main__":
    main()
