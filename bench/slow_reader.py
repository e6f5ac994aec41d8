#!/usr/bin/env python3
"""slow_reader.py -- issue 12's slow-reader figure: MB pushed at a logged-in
client that never reads, the server's RSS growth, and other clients' ping
times meanwhile.

usage: python3 bench/slow_reader.py BUILD_DIR [--mb 32] [--size 16000]

Starts BUILD_DIR/bin/chat-server on 127.0.0.1:0 (temp dir, --hash-cost min,
--rate-limit 0), logs in bob (who never reads; his socket's receive buffer
is kept small), alice (who sends MB megabytes of SIZE-byte bodies to bob,
waiting for each ok) and carol (who pings every 50 ms). Prints one JSON
line. Development tool: no figure here is a test.
"""
import json, os, socket, subprocess, sys, tempfile, threading, time


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Conn:
    def __init__(self, port, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()  # welcome

    def call(self, obj):
        self.n += 1
        obj["id"] = self.n
        self.s.sendall((json.dumps(obj) + "\n").encode())
        while True:
            m = json.loads(self.f.readline())
            if m.get("id") == self.n:
                return m

    def user(self, name):
        self.call({"type": "register", "user": name, "password": "password1"})
        r = self.call({"type": "login", "user": name, "password": "password1"})
        assert r["type"] == "ok", r


def main():
    build = sys.argv[1]
    mb = int(sys.argv[sys.argv.index("--mb") + 1]) if "--mb" in sys.argv else 32
    size = (int(sys.argv[sys.argv.index("--size") + 1])
            if "--size" in sys.argv else 16000)
    tmp = tempfile.mkdtemp()
    srv = subprocess.Popen(
        [os.path.join(build, "bin", "chat-server"), "--listen", "127.0.0.1:0",
         "--db", os.path.join(tmp, "c.db"), "--hash-cost", "min",
         "--rate-limit", "0"], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in srv.stderr:
            if "listening on" in line:
                port = int(line.rsplit(":", 1)[1])
                break
        threading.Thread(target=lambda: [None for _ in srv.stderr],
                         daemon=True).start()
        bob = Conn(port, rcvbuf=4096)
        bob.user("bob")
        alice, carol = Conn(port), Conn(port)
        alice.user("alice")
        carol.user("carol")
        time.sleep(0.5)
        before = rss_kb(srv.pid)
        pings, stop = [], False

        def pinger():
            while not stop:
                t = time.perf_counter()
                carol.call({"type": "ping"})
                pings.append((time.perf_counter() - t) * 1000)
                time.sleep(0.05)

        th = threading.Thread(target=pinger)
        th.start()
        body = "x" * size
        n = mb * 1000000 // size
        statuses, peak = {}, before
        t0 = time.perf_counter()
        for i in range(n):
            r = alice.call({"type": "send", "to": "bob", "msg_id": "s%d" % i,
                            "body": body})
            key = r.get("status") or r.get("code")
            statuses[key] = statuses.get(key, 0) + 1
            if i % 64 == 0:
                peak = max(peak, rss_kb(srv.pid))
        elapsed = time.perf_counter() - t0
        peak = max(peak, rss_kb(srv.pid))
        stop = True
        th.join()
        print(json.dumps({
            "scenario": "slow_reader", "mb": mb, "size": size, "sends": n,
            "statuses": statuses, "send_s": round(elapsed, 2),
            "rss_kb_before": before, "rss_kb_peak": peak,
            "rss_growth_mb": round((peak - before) / 1024, 1),
            "pings": len(pings),
            "ping_max_ms": round(max(pings), 2) if pings else None,
            "ping_p99_ms": (round(sorted(pings)[int(len(pings) * 0.99)], 2)
                            if pings else None)}))
    finally:
        srv.terminate()
        srv.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
