#!/usr/bin/env python3
"""store_first_login.py -- logs in u0000001, u0500000 and u1000000 on the
store chat-populate made for the start-up figure (path in the code) and
times the ok and the held deliver; a sanity check of that store."""
import socket, json, subprocess, re, time
srv = subprocess.Popen(["/work/wt-bench/build-rel/bin/chat-server","--db","/tmp/b12/big.db","--listen","127.0.0.1:0","--hash-cost","min","--log-level","warn"], stderr=subprocess.PIPE)
for l in srv.stderr:
    m = re.search(rb"listening on \S+:(\d+)", l)
    if m: port = int(m.group(1)); break
for u in ("u0000001", "u0500000", "u1000000"):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb"); f.readline()
    s.sendall((json.dumps({"type":"login","id":1,"user":u,"password":"password1"})+"\n").encode())
    ok = json.loads(f.readline()); t1 = time.monotonic()
    d = json.loads(f.readline()); t2 = time.monotonic()
    print(u, ok["type"], "%.1f ms" % ((t1-t0)*1000), d["type"], d.get("msg_id"), d.get("from"), len(d.get("body","")), "%.1f ms" % ((t2-t0)*1000))
    s.close()
rss = [l for l in open("/proc/%d/status" % srv.pid) if l.startswith("VmRSS")][0].split()[1]
print("VmRSS kB", rss)
srv.terminate(); srv.wait()
