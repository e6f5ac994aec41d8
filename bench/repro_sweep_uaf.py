#!/usr/bin/env python3
"""repro_sweep_uaf.py -- reproduces the registry sweep's use-after-free.

usage: SRV=<asan build>/bin/chat-server python3 bench/repro_sweep_uaf.py DB

u0000001 stays logged in; u0000003..u0000020 log in and leave; after the
sweep (every 5 s at the default heartbeat) u0000001 sends to its contact
u0000002. chat__registry_sweep() clears a live user's mark when its walk
passes it, then restarts the walk from slot 0 after deleting an unneeded
user, so every live user already passed is now unmarked and freed. With
ASan: heap-use-after-free in chat__srv_run_resident (resident.c:306), freed
by chat__registry_sweep (registry.c:193). Needs chat-populate from build-rel.
"""
import socket, json, subprocess, re, sys, time, os
srvbin = os.environ.get("SRV", "/work/wt-bench/build-rel/bin/chat-server")
db = sys.argv[1]
subprocess.run(["/work/wt-bench/build-rel/bin/chat-populate","--db",db,"--users","20","--contacts","1"], check=True, stdout=subprocess.DEVNULL)
srv = subprocess.Popen([srvbin,"--db",db,"--listen","127.0.0.1:0","--hash-cost","min","--log-level","warn"], stderr=subprocess.PIPE)
for l in srv.stderr:
    m = re.search(rb"listening on \S+:(\d+)", l)
    if m: port = int(m.group(1)); break
def conn(u):
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb"); f.readline()
    s.sendall((json.dumps({"type":"login","id":1,"user":u,"password":"password1"})+"\n").encode())
    return s, f, json.loads(f.readline())
a, af, r = conn("u0000001"); print("A login", r["type"])
for i in range(3, 21):
    s, f, r = conn("u%07d" % i); s.close()
time.sleep(6)
a.sendall(b'{"type":"send","id":2,"to":"u0000002","msg_id":"x1","body":"hello"}\n')
a.sendall(b'{"type":"contact_list","id":3}\n')
a.settimeout(3)
try: print("A got", af.readline()[:100], af.readline()[:100])
except Exception as e: print("A read:", e)
time.sleep(1)
print("server exit", srv.poll())
if srv.poll() is None: srv.terminate(); srv.wait()
err = srv.stderr.read().decode()
i = err.find("ERROR: AddressSanitizer"); print(err[i:i+4000] if i >= 0 else err[-300:])
