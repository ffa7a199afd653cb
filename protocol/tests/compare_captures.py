#!/usr/bin/env python3
"""Lists where two captures of the battery (tests/capture.sh) differ.

  compare_captures.py DIR_A DIR_B

For every fixture file present in both directories, prints the packets that
differ in direction, operation, control opcode, packet length, reply status,
data and error-message sizes (request ids, generations and leader
broadcasts, which differ between any two runs, are left out).  Typical use:
Debian's ctdbd (tests/fixtures) against ours
(CAPTURE_CTDBD=target/debug/ctdbd CAPTURE_OUT=/tmp/ours bash capture.sh).
"""
import glob
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LEADER = 0xF101000000000000


def control_names():
    src = open(os.path.join(HERE, "..", "src", "opcode.rs"), encoding="utf-8").read()
    return {int(n): name for n, name in re.findall(r'= (\d+), "([A-Za-z0-9_]+)", (?:true|false);', src)}


NAMES = control_names()


def rows(path):
    out, opcodes = [], {}
    for line in open(path, encoding="ascii"):
        if line.startswith("#"):
            continue
        direction, conn, hexbytes = line.split()
        b = bytes.fromhex(hexbytes)
        op, reqid = struct.unpack_from("<I", b, 16)[0], struct.unpack_from("<I", b, 28)[0]
        if op == 7:
            opcode = struct.unpack_from("<I", b, 32)[0]
            opcodes[(conn, reqid)] = opcode
            out.append((direction, "REQ_CONTROL", NAMES.get(opcode, opcode), len(b)))
        elif op == 8:
            status, dsize, esize = struct.unpack_from("<iII", b, 32)
            opcode = opcodes.get((conn, reqid))
            err = b[44 + dsize:44 + dsize + esize]
            out.append((direction, "REPLY_CONTROL", NAMES.get(opcode, opcode), len(b),
                        f"status={status} data={dsize} err={err!r}"))
        elif op == 5:
            srvid, dlen = struct.unpack_from("<QI", b, 32)
            if srvid != LEADER:
                out.append((direction, "REQ_MESSAGE", hex(srvid), len(b), f"data={dlen}"))
        else:
            out.append((direction, f"operation {op}", len(b)))
    return out


def main():
    a, b = sys.argv[1], sys.argv[2]
    for f in sorted(glob.glob(os.path.join(a, "*.txt"))):
        g = os.path.join(b, os.path.basename(f))
        if not os.path.exists(g):
            print(f"== {os.path.basename(f)}: only in {a}")
            continue
        ra, rb = rows(f), rows(g)
        diffs = [(i, ra[i] if i < len(ra) else None, rb[i] if i < len(rb) else None)
                 for i in range(max(len(ra), len(rb)))]
        diffs = [d for d in diffs if d[1] != d[2]]
        if diffs:
            print(f"== {os.path.basename(f)} ({len(ra)} / {len(rb)} packets)")
            for i, x, y in diffs[:4]:
                print(f"  {i} A {x}\n  {i} B {y}")


if __name__ == "__main__":
    main()
