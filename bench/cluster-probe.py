#!/usr/bin/python3
"""Helpers of bench/cluster.sh: polls a local cluster's state over each node's
client socket (fast enough to time a recovery, unlike `ctdb status`, which
waits for the leader's broadcast) and loads records into volatile databases.

  cluster-probe.py gen SOCKET
      prints the node's generation (GETVNNMAP)
  cluster-probe.py wait SINCE TIMEOUT [--down PNN,..] [--not-gen G] SOCKET...
      polls every 20 ms until every node's socket answers with recovery mode
      NORMAL, one generation on all nodes (not G when given), a vnnmap of the
      live nodes, node flags 0 for live nodes and DISCONNECTED for the --down
      ones (SOCKET i is pnn i; a down node's socket is not asked).  Prints the
      seconds since SINCE (a time.time() value) and the generation; exit 1 on
      timeout.
  cluster-probe.py load TDBFILE PNN COUNT
      stores COUNT records "pnn<PNN>-<i>" in the volatile database file
      TDBFILE (opened while its daemon runs, as ctdbd opens it: mutexes when
      the file has them), each with an ltdb header: rsn 1, dmaster PNN.
"""
import os
import socket
import struct
import sys
import time

MAGIC = 0x43544442
REQ_CONTROL = 7
REPLY_CONTROL = 8
CURRENT_NODE = 0xF0000001
GETVNNMAP = 5
GET_RECMODE = 15
GET_NODEMAP = 91
NODE_DISCONNECTED = 0x1
TDB_MUTEX_LOCKING = 4096


class Node:
    """One client connection to a node's socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(2)
        self.sock.connect(path)
        self.reqid = 0

    def control(self, opcode):
        self.reqid += 1
        body = struct.pack("<IIQIII", opcode, 0, 0, 0, 0, 0)
        length = 32 + len(body)
        padded = (length + 7) & ~7
        hdr = struct.pack("<IIIIIIII", padded, MAGIC, 1, 0, REQ_CONTROL, CURRENT_NODE, 0, self.reqid)
        self.sock.sendall(hdr + body + b"\0" * (padded - length))
        while True:
            (length,) = struct.unpack("<I", self.recv(4))
            pkt = self.recv(length - 4)
            op, rid = struct.unpack("<I8xI", pkt[12:28])
            if op == REPLY_CONTROL and rid == self.reqid:
                status, dlen = struct.unpack("<iI", pkt[28:36])
                return status, pkt[40:40 + dlen]

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def generation(self):
        status, data = self.control(GETVNNMAP)
        if status != 0 or len(data) < 8:
            return None, None
        gen, size = struct.unpack("<II", data[:8])
        return gen, list(struct.unpack("<%dI" % size, data[8:8 + 4 * size]))

    def recmode(self):
        return self.control(GET_RECMODE)[0]

    def flags(self):
        status, data = self.control(GET_NODEMAP)
        if status != 0:
            return None
        (num,) = struct.unpack("<I", data[:4])
        return [struct.unpack("<II", data[4 + 36 * i:12 + 36 * i]) for i in range(num)]


def settled(paths, down, not_gen, conns):
    """The generation when every live node shows the wanted state, else None."""
    gens = set()
    live = [p for p in range(len(paths)) if p not in down]
    for pnn in live:
        if pnn not in conns:
            conns[pnn] = Node(paths[pnn])
        node = conns[pnn]
        if node.recmode() != 0:
            return None
        gen, vnnmap = node.generation()
        if gen is None or gen == not_gen or sorted(set(vnnmap)) != live:
            return None
        gens.add(gen)
        for p, f in node.flags() or [(None, None)]:
            if p is None or (p in down) != bool(f & NODE_DISCONNECTED) or (p not in down and f != 0):
                return None
    return gens.pop() if len(gens) == 1 else None


def wait(args):
    since, timeout = float(args[0]), float(args[1])
    args = args[2:]
    down, not_gen = set(), None
    while args and args[0].startswith("--"):
        if args[0] == "--down":
            down = {int(x) for x in args[1].split(",") if x}
        elif args[0] == "--not-gen":
            not_gen = int(args[1])
        args = args[2:]
    conns = {}
    end = time.time() + timeout
    while time.time() < end:
        try:
            gen = settled(args, down, not_gen, conns)
        except (OSError, EOFError, struct.error):
            conns.clear()
            gen = None
        if gen is not None:
            print("%.3f %d" % (time.time() - since, gen))
            return 0
        time.sleep(0.02)
    print("timeout")
    return 1


def load(path, pnn, count):
    import tdb  # python3-tdb, Debian's binding

    try:
        db = tdb.Tdb(path, 0, TDB_MUTEX_LOCKING, os.O_RDWR)
    except OSError:
        db = tdb.Tdb(path, 0, 0, os.O_RDWR)
    header = struct.pack("<QIIII", 1, pnn, 0, 0, 0)
    db.transaction_start()
    for i in range(count):
        db.store(b"pnn%d-%d" % (pnn, i), header + b"value %d of node %d" % (i, pnn))
    db.transaction_commit()
    db.close()
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        print(Node(args[0]).generation()[0])
        return 0
    if cmd == "wait":
        return wait(args)
    if cmd == "load":
        return load(args[0], int(args[1]), int(args[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
