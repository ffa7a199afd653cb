import socket, sys, os, select
listen_path, target_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
try: os.unlink(listen_path)
except FileNotFoundError: pass
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); ls.bind(listen_path); ls.listen(4)
f = open(out, "a")
while True:
    c, _ = ls.accept()
    t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); t.connect(target_path)
    socks = {c: (t, "c2d"), t: (c, "d2c")}
    live = True
    while live:
        r, _, _ = select.select(list(socks), [], [])
        for s in r:
            d = s.recv(65536)
            if not d: live = False; break
            peer, tag = socks[s]
            f.write(f"{tag} {d.hex()}\n"); f.flush()
            peer.sendall(d)
    c.close(); t.close()
