#!/usr/bin/env python3
"""storm.py -- does a login storm delay stored sends, and SIGTERM?

usage: python3 bench/storm.py BUILD_DIR [--users N] [--sigterm-logins N]
                              [--sends N] [--hash-cost COST]

Starts BUILD_DIR/bin/chat-server on 127.0.0.1:0 with a fresh database at
--hash-cost interactive (the default cost) and --rate-limit 0, registers N
users (default 2000) plus a sender and an offline recipient, then measures
the latency of `send` -> `ok stored` to offline recipients, one send at a
time (5 ms apart) from one logged-in sender:

  1. quiet: --sends sends with nothing else going on;
  2. storm: the same while all N users log in at once (from another
     process, so the client's own work is not timed), each on its own
     connection (a login refused with rate_limited -- the hash queue is
     bounded -- is retried after 1 s, as a client would); sends go on until
     every login has succeeded.

It prints p50/p99/max of both and the ratio storm/quiet (same run, same
machine, so the ratio is what to compare), and the storm's duration. Then
it starts a fresh server on the same database, opens --sigterm-logins
connections that each send a login (so the hashes queue), sends SIGTERM
and reports how long the process took to exit. Development tool, not CI.
"""
import argparse, asyncio, json, multiprocessing as mp, os, re, signal
import subprocess
import resource, sys, tempfile, time

PW = "storm-password-1"
NAWAY = 8
PACE_S = 0.005  # between sends, in both phases alike


def start_server(build, db, cost):
    log = open(db + ".log", "w+")
    p = subprocess.Popen([os.path.join(build, "bin", "chat-server"),
                          "--listen", "127.0.0.1:0", "--db", db,
                          "--hash-cost", cost, "--rate-limit", "0",
                          "--max-clients", "20000", "--log-level", "warn"],
                         stderr=log)
    for _ in range(600):
        log.seek(0)
        m = re.search(r"listening on \S+:(\d+)", log.read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.05)
    p.kill()
    raise SystemExit("chat-server did not start")


class Conn:
    def __init__(self, r, w):
        self.r, self.w, self.n = r, w, 0

    @classmethod
    async def open(cls, port):
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        c = cls(r, w)
        welcome = await c.recv()
        assert welcome["type"] == "welcome", welcome
        return c

    async def recv(self):
        line = await self.r.readline()
        if not line:
            raise ConnectionError("closed")
        return json.loads(line)

    async def call(self, frame):
        """Sends frame with a fresh id; returns the reply with that id."""
        self.n += 1
        frame = dict(frame, id=str(self.n))
        self.w.write((json.dumps(frame) + "\n").encode())
        await self.w.drain()
        while True:
            m = await self.recv()
            if m.get("id") == frame["id"]:
                return m

    def close(self):
        self.w.close()


async def register_all(port, names, concurrency=64):
    sem = asyncio.Semaphore(concurrency)

    async def one(name):
        async with sem:
            while True:
                c = await Conn.open(port)
                r = await c.call({"type": "register", "user": name,
                                  "password": PW})
                c.close()
                if r["type"] == "ok" or r.get("code") == "user_exists":
                    return
                if r.get("code") != "rate_limited":
                    raise SystemExit("register %s: %s" % (name, r))
                await asyncio.sleep(1)

    await asyncio.gather(*(one(n) for n in names))


async def sender(port, prefix):
    c = await Conn.open(port)
    r = await c.call({"type": "login", "user": prefix + "sender",
                      "password": PW})
    assert r["type"] == "ok", r
    return c


async def timed_send(c, prefix, k):
    t0 = time.perf_counter()
    # Spread over NAWAY recipients: one would hit its offline quota.
    r = await c.call({"type": "send", "to": "%saway%d" % (prefix, k % NAWAY),
                      "msg_id": "%s%08d" % (prefix, k), "body": "hello"})
    dt = time.perf_counter() - t0
    assert r["type"] == "ok" and r.get("status") == "stored", r
    return dt


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def summary(xs):
    return {"n": len(xs), "p50_ms": round(pct(xs, 50) * 1e3, 2),
            "p99_ms": round(pct(xs, 99) * 1e3, 2),
            "max_ms": round(max(xs) * 1e3, 2)}


async def sends(port, prefix, nsends, storming, stop, out):
    """The timed sender, in a process of its own so that the storm's
    client work does not show up as its latency."""
    s = await sender(port, prefix)
    k = 0
    quiet, during = [], []
    for _ in range(nsends):
        quiet.append(await timed_send(s, prefix, k))
        k += 1
        await asyncio.sleep(PACE_S)
    storming.set()
    while not stop.is_set():
        during.append(await timed_send(s, prefix, k))
        k += 1
        await asyncio.sleep(PACE_S)
    s.close()
    out.put((quiet, during))


def sender_main(port, prefix, nsends, storming, stop, out):
    asyncio.run(sends(port, prefix, nsends, storming, stop, out))


async def storm(port, users):
    refused = 0

    async def login(name):
        nonlocal refused
        c = await Conn.open(port)
        while True:
            r = await c.call({"type": "login", "user": name, "password": PW})
            if r["type"] == "ok":
                return c
            if r.get("code") != "rate_limited":
                raise SystemExit("login %s: %s" % (name, r))
            refused += 1
            await asyncio.sleep(1)

    t0 = time.perf_counter()
    conns = await asyncio.gather(*(login(n) for n in users))
    storm_s = time.perf_counter() - t0
    for c in conns:
        c.close()
    return storm_s, refused


def measure(port, prefix, users, nsends):
    storming, stop = mp.Event(), mp.Event()
    out = mp.Queue()
    child = mp.Process(target=sender_main,
                       args=(port, prefix, nsends, storming, stop, out))
    child.start()
    storming.wait()
    storm_s, refused = asyncio.run(storm(port, users))
    stop.set()
    quiet, during = out.get()
    child.join()
    return quiet, during, storm_s, refused


async def queue_logins(port, users):
    conns = []
    for name in users:
        c = await Conn.open(port)
        c.w.write((json.dumps({"type": "login", "id": "1", "user": name,
                               "password": PW}) + "\n").encode())
        conns.append(c)
    for c in conns:
        await c.w.drain()
    return conns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--sigterm-logins", type=int, default=1000)
    ap.add_argument("--sends", type=int, default=200)
    ap.add_argument("--hash-cost", default="interactive")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.users + a.sigterm_logins + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    d = tempfile.mkdtemp(prefix="chat-storm-")
    db = os.path.join(d, "chat.db")
    prefix = "s%d-" % os.getpid()
    users = ["%su%05d" % (prefix, i) for i in range(a.users)]

    p, port = start_server(a.build, db, a.hash_cost)
    try:
        t0 = time.perf_counter()
        asyncio.run(register_all(
            port, users + [prefix + "sender"] +
            ["%saway%d" % (prefix, i) for i in range(NAWAY)]))
        reg_s = time.perf_counter() - t0
        quiet, during, storm_s, refused = measure(port, prefix, users,
                                                  a.sends)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)

    q, s = summary(quiet), summary(during)
    out = {"hash_cost": a.hash_cost, "users": a.users,
           "register_s": round(reg_s, 1), "quiet": q, "storm": s,
           "storm_s": round(storm_s, 1), "storm_logins_refused": refused,
           "ratio_p50": round(s["p50_ms"] / q["p50_ms"], 2),
           "ratio_p99": round(s["p99_ms"] / q["p99_ms"], 2)}

    # SIGTERM with logins queued.
    n = min(a.sigterm_logins, a.users)
    p, port = start_server(a.build, db, a.hash_cost)
    loop = asyncio.new_event_loop()
    conns = loop.run_until_complete(queue_logins(port, users[:n]))
    loop.run_until_complete(asyncio.sleep(0.5))  # the server read them all
    t0 = time.perf_counter()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(120)
        out["sigterm_exit_s"] = round(time.perf_counter() - t0, 3)
    except subprocess.TimeoutExpired:
        p.kill()
        out["sigterm_exit_s"] = ">120"
    out["sigterm_logins_queued"] = n
    for c in conns:
        c.close()
    loop.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
