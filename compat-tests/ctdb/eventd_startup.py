#!/usr/bin/env python3
"""-S as ctdbd uses it (compat-tests/ctdb/eventd.sh): starts the event
daemon BIN with CTDB_BASE=BASE, -P this pid and -S the write end of a pipe,
reads the start-up word, checks the pipe stays open while the daemon runs
(ctdbd takes end-of-file as the daemon gone) and that no script inherits
it (a script that outlives the daemon must not hold the pipe open), then
stops the daemon by pid and expects end-of-file.

  eventd_startup.py BIN BASE
"""
import os
import select
import signal
import subprocess
import sys
import time

bin_path, base = sys.argv[1], sys.argv[2]
rd, wr = os.pipe()
env = dict(os.environ, CTDB_TEST_MODE="yes", CTDB_BASE=base, CTDB_INTERACTIVE="1")
p = subprocess.Popen([bin_path, "-P", str(os.getpid()), "-S", str(wr)],
                     pass_fds=[wr], env=env, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
os.close(wr)
r, _, _ = select.select([rd], [], [], 10)
word = os.read(rd, 4) if r else b""
print("start-up word:", word.hex() if word else "none")
# A run with a script that leaves a background child behind.
subprocess.run(["/usr/libexec/ctdb/ctdb-event", "run", "10", "legacy", "startup"],
               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r, _, _ = select.select([rd], [], [], 0.5)
print("pipe while running:", "closed" if r and os.read(rd, 1) == b"" else "open")
p.send_signal(signal.SIGTERM)
p.wait()
r, _, _ = select.select([rd], [], [], 5)
print("pipe after stop:", "closed" if r and os.read(rd, 1) == b"" else "open")
with open(os.path.join(base, "bg.pid")) as f:
    try:
        os.kill(int(f.read()), signal.SIGKILL)
    except (ValueError, ProcessLookupError):
        pass
