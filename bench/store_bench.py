#!/usr/bin/env python3
"""store_bench.py -- the issue 12 figures ("the store is the authority").

usage: python3 bench/store_bench.py BUILD_DIR SCENARIO [options]

Scenarios (each prints one JSON line with its figures; see --help of each):
  startup   exec-to-"listening on" time and VmRSS on a given store and on
            an empty one
  held      server VmRSS holding 0, then N messages of S bytes for offline
            users, sent through the server
  drain     one user with K held messages logs in, receives all of them
            acking as they come; checks order and uniqueness; time, RSS
  tokens    U logins with "remember":true, restart, U token logins, vs P
            password logins at --hash-cost interactive, same run
  sigkill   relayed sends to a never-acking recipient, SIGKILL after 2 s,
            restart, count what the recipient gets

Talks JSON Lines to BUILD_DIR/bin/chat-server; stores are filled with
BUILD_DIR/bin/chat-populate (users u0000001.., password "password1").
Standard library only. Development tool: no figure here is a test.
"""
import argparse, asyncio, json, os, re, shutil, signal, subprocess, sys
import sqlite3, tempfile, threading, time

PASSWORD = "password1"


def uname(i):
    return "u%07d" % i


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def smaps_top(pid, n=4):
    """The n largest mappings by Rss (kB), to tell heap from thread arenas
    and the SQLite cache."""
    maps, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                cur = [parts[5] if len(parts) > 5 else "[anon]", 0]
                maps.append(cur)
            elif line.startswith("Rss:"):
                cur[1] = int(line.split()[1])
    maps.sort(key=lambda m: -m[1])
    return maps[:n]


class Server:
    """chat-server on 127.0.0.1:0; the port comes from its stderr."""

    def __init__(self, build, db, extra=(), log=None):
        self.log = open(log or db + ".log", "a")
        t0 = time.monotonic()
        self.p = subprocess.Popen(
            [os.path.join(build, "bin", "chat-server"), "--db", db,
             "--listen", "127.0.0.1:0", *extra],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self.port = None
        for raw in self.p.stderr:
            line = raw.decode(errors="replace")
            self.log.write(line)
            m = re.search(r"listening on \S+:(\d+)", line)
            if m:
                self.ready_s = time.monotonic() - t0
                self.port = int(m.group(1))
                break
        if self.port is None:
            raise RuntimeError("server exited before listening")
        # Keep draining stderr so the server never blocks on a full pipe.
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()

    def _drain(self):
        for raw in self.p.stderr:
            self.log.write(raw.decode(errors="replace"))
        self.log.flush()

    @property
    def pid(self):
        return self.p.pid

    def rss(self):
        return rss_kb(self.p.pid)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(60)
        self.t.join(5)

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(60)
        self.t.join(5)


def populate(build, db, **kw):
    args = [os.path.join(build, "bin", "chat-populate"), "--db", db]
    for k, v in kw.items():
        args += ["--" + k, str(v)]
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


class Conn:
    """One JSON Lines connection."""

    @classmethod
    async def open(cls, port):
        c = cls()
        c.r, c.w = await asyncio.open_connection("127.0.0.1", port,
                                                 limit=1 << 20)
        c.next_id = 1
        welcome = await c.recv()
        assert welcome["type"] == "welcome", welcome
        return c

    def send(self, obj):
        self.w.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())

    async def recv(self):
        line = await self.r.readline()
        if not line:
            raise EOFError("server closed the connection")
        return json.loads(line)

    async def request(self, obj):
        """Sends obj with a fresh id; returns the reply with that id (other
        lines in between are kept in self.pending)."""
        obj = dict(obj, id=self.next_id)
        self.next_id += 1
        self.send(obj)
        await self.w.drain()
        while True:
            m = await self.recv()
            if m.get("id") == obj["id"]:
                return m

    async def login(self, user, password=PASSWORD, remember=False,
                    token=None):
        req = {"type": "login", "user": user}
        if token:
            req["token"] = token
        else:
            req["password"] = password
        if remember:
            req["remember"] = True
        return await self.request(req)

    def close(self):
        self.w.close()


async def bounded(coros, concurrency):
    sem = asyncio.Semaphore(concurrency)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


# ---- startup ---------------------------------------------------------------

def sc_startup(a):
    """Exec to "listening on" and VmRSS, on --db and on an empty store."""
    res = {}
    for name, db in (("empty", os.path.join(a.tmp, "empty.db")),
                     ("full", a.db)):
        runs = []
        for _ in range(a.runs):
            s = Server(a.build, db, ["--hash-cost", "min", "--log-level",
                                     "warn"])
            rss0 = s.rss()
            time.sleep(a.settle)
            runs.append({"ready_s": round(s.ready_s, 4), "rss_kb_at_ready":
                         rss0, "rss_kb_after_settle": s.rss()})
            s.stop()
        res[name] = runs
    e = res["empty"][-1]["rss_kb_after_settle"]
    f = res["full"][-1]["rss_kb_after_settle"]
    res["rss_ratio_full_vs_empty"] = round(f / e, 3)
    return res


# ---- held ------------------------------------------------------------------

async def held_async(a, port, pid):
    n_pairs = a.pairs
    senders = []
    for i in range(n_pairs):
        c = await Conn.open(port)
        r = await c.login(uname(2 * i + 1))
        assert r["type"] == "ok", r
        senders.append(c)
    await asyncio.sleep(1.0)
    rss_none = rss_kb(pid)
    per = a.messages // n_pairs
    body = ("x" * a.size)
    t0 = time.monotonic()

    async def sender(i, c):
        to = uname(2 * i + 2)
        inflight, done, statuses = 0, 0, {}
        sent = 0
        while done < per:
            while inflight < a.window and sent < per:
                c.send({"type": "send", "id": sent + 100, "to": to,
                        "msg_id": "h%d" % sent, "body": body})
                sent += 1
                inflight += 1
            await c.w.drain()
            m = await c.recv()
            if m.get("type") == "ok" and "status" in m:
                statuses[m["status"]] = statuses.get(m["status"], 0) + 1
                inflight -= 1
                done += 1
            elif m.get("type") == "error":
                statuses["error:" + m.get("code", "?")] = \
                    statuses.get("error:" + m.get("code", "?"), 0) + 1
                inflight -= 1
                done += 1
        return statuses

    st = await asyncio.gather(*(sender(i, c) for i, c in
                                enumerate(senders)))
    el = time.monotonic() - t0
    total = {}
    for d in st:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    await asyncio.sleep(a.settle)
    rss_held = rss_kb(pid)
    for c in senders:
        c.close()
    await asyncio.sleep(a.settle)
    rss_closed = rss_kb(pid)

    # The same server holding none: every receiver logs in, takes and acks
    # what it holds, and leaves; the store is then empty of held messages
    # and the process has run every code path the held figure did.
    async def receiver(i):
        c = await Conn.open(port)
        r = await c.login(uname(2 * i + 2))
        assert r["type"] == "ok", r
        got = 0
        while got < per:
            m = await asyncio.wait_for(c.recv(), 30)
            if m.get("type") != "deliver":
                continue
            got += 1
            c.send({"type": "ack", "msg_id": m["msg_id"], "from": m["from"]})
            if got % 64 == 0:
                await c.w.drain()
        # a pong after the acks: the server has read them all
        c.send({"type": "ping", "id": "last"})
        await c.w.drain()
        while (await asyncio.wait_for(c.recv(), 30)).get("type") != "pong":
            pass
        c.close()
        return got

    drained = sum(await asyncio.gather(*(receiver(i)
                                         for i in range(n_pairs))))
    await asyncio.sleep(a.settle)
    rss_drained = rss_kb(pid)
    return {"rss_kb_after_senders_left": rss_closed,
            "drained": drained, "rss_kb_holding_none_after_drain": rss_drained,
            "rss_ratio_vs_drained": round(rss_held / rss_drained, 3),
            "largest_mappings_kb": smaps_top(pid),
            "pairs": n_pairs, "messages": per * n_pairs, "size": a.size,
            "statuses": total, "send_s": round(el, 2),
            "msgs_per_s": round(per * n_pairs / el),
            "rss_kb_holding_none": rss_none, "rss_kb_holding_all": rss_held,
            "rss_ratio": round(rss_held / rss_none, 3),
            "rss_bytes_per_held_msg": round((rss_held - rss_none) * 1024 /
                                            (per * n_pairs), 1)}


def sc_held(a):
    db = os.path.join(a.tmp, "held.db")
    # 2*pairs users; user 2i+1 and 2i+2 are contacts (step-1 rows).
    populate(a.build, db, users=2 * a.pairs, contacts=2 * a.pairs)
    s = Server(a.build, db, ["--hash-cost", "min", "--rate-limit", "0",
                             "--log-level", "warn"])
    try:
        res = asyncio.run(held_async(a, s.port, s.pid))
    finally:
        s.stop()
    return res


# ---- drain -----------------------------------------------------------------

class RssSampler(threading.Thread):
    def __init__(self, pid, every=0.02):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.stopped = pid, every, 0, False

    def run(self):
        while not self.stopped:
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                return
            time.sleep(self.every)


async def drain_async(a, port, pid):
    rss0 = rss_kb(pid)
    sampler = RssSampler(pid)
    sampler.start()
    c = await Conn.open(port)
    t0 = time.monotonic()
    r = await c.login(uname(1))
    assert r["type"] == "ok", r
    seen, dup, out_of_order, last = set(), 0, 0, -1
    n = 0
    t_first = None
    while len(seen) < a.messages:
        try:
            m = await asyncio.wait_for(c.recv(), a.idle)
        except asyncio.TimeoutError:
            break
        if m.get("type") != "deliver":
            continue
        if t_first is None:
            t_first = time.monotonic() - t0
        n += 1
        k = int(m["msg_id"][1:])
        if k in seen:
            dup += 1
        seen.add(k)
        if k != last + 1:
            out_of_order += 1
        last = k
        c.send({"type": "ack", "msg_id": m["msg_id"], "from": m["from"]})
        if n % 256 == 0:
            await c.w.drain()
    await c.w.drain()
    el = time.monotonic() - t0
    # Anything more (a duplicate after the last) within the idle time?
    extra = 0
    try:
        while True:
            m = await asyncio.wait_for(c.recv(), a.idle)
            if m.get("type") == "deliver":
                extra += 1
    except asyncio.TimeoutError:
        pass
    sampler.stopped = True
    sampler.join()
    rss_end = rss_kb(pid)
    c.close()
    return {"held": a.messages, "size": a.size, "received": n,
            "unique": len(seen), "duplicates": dup + extra,
            "out_of_order": out_of_order,
            "all_in_order_once": (len(seen) == a.messages and dup + extra == 0
                                  and out_of_order == 0),
            "first_deliver_s": round(t_first or -1, 3),
            "drain_s": round(el, 2), "msgs_per_s": round(n / el),
            "rss_kb_before": rss0, "rss_kb_peak": sampler.peak,
            "rss_kb_after": rss_end,
            "rss_growth_peak_mb": round((sampler.peak - rss0) / 1024, 1)}


def sc_drain(a):
    db = os.path.join(a.tmp, "drain.db")
    # Two users, contacts; every message to u0000001 from u0000002.
    populate(a.build, db, users=2, contacts=1, messages=a.messages,
             size=a.size, recipients=1)
    s = Server(a.build, db, ["--hash-cost", "min", "--rate-limit", "0",
                             "--log-level", "warn"])
    try:
        res = asyncio.run(drain_async(a, s.port, s.pid))
        # And the store agrees: nothing held any more after the acks.
        time.sleep(1.5)
    finally:
        s.stop()
    with sqlite3.connect(db) as c:
        res["held_after_acks_in_store"] = c.execute(
            "select count(*) from messages where rcpt = 'u0000001'"
        ).fetchone()[0]
    return res


# ---- tokens ----------------------------------------------------------------

async def tokens_phase1(a, port):
    async def one(i):
        c = await Conn.open(port)
        r = await c.login(uname(i), remember=True)
        c.close()
        assert r["type"] == "ok" and len(r.get("token", "")) == 64, r
        return r["token"]
    t0 = time.monotonic()
    toks = await bounded([one(i) for i in range(1, a.users + 1)],
                         a.concurrency)

    return toks, time.monotonic() - t0


async def tokens_phase2(a, port, toks):
    async def tok(i, t):
        c = await Conn.open(port)
        r = await c.login(uname(i), token=t)
        c.close()
        return r["type"] == "ok"

    async def pw(i):
        c = await Conn.open(port)
        r = await c.login("w%07d" % i)
        c.close()
        return r["type"] == "ok"
    t0 = time.monotonic()
    ok_t = await bounded([tok(i + 1, t) for i, t in enumerate(toks)],
                         a.concurrency)
    t_tok = time.monotonic() - t0
    t0 = time.monotonic()
    ok_p = await bounded([pw(i) for i in range(1, a.password_logins + 1)],
                         a.concurrency)
    t_pw = time.monotonic() - t0
    return sum(ok_t), t_tok, sum(ok_p), t_pw


def sc_tokens(a):
    db = os.path.join(a.tmp, "tokens.db")
    # Accounts u*: the min-cost hash (chat-populate), fast to log in once.
    populate(a.build, db, users=a.users)
    # Accounts w*: one hash at the server's default (interactive) cost, as
    # a register at --hash-cost interactive stores it. (Registering them
    # through the server here hit the registry sweep's use-after-free, see
    # PERFORMANCE.md.)
    populate(a.build, db, users=a.password_logins, prefix="w",
             **{"hash-cost": "interactive"})
    flags = ["--hash-cost", "interactive", "--rate-limit", "0",
             "--log-level", "warn", "--max-clients", "20000"]
    s = Server(a.build, db, flags)
    try:
        toks, t1 = asyncio.run(tokens_phase1(a, s.port))
    finally:
        s.stop()
    s = Server(a.build, db, flags)
    try:
        n_tok, t_tok, n_pw, t_pw = asyncio.run(tokens_phase2(a, s.port,
                                                             toks))
    finally:
        s.stop()
    return {"token_logins": a.users, "token_ok": n_tok,
            "token_s": round(t_tok, 3),
            "token_per_s": round(n_tok / t_tok),
            "password_logins": a.password_logins, "password_ok": n_pw,
            "password_s": round(t_pw, 3),
            "password_per_s": round(n_pw / t_pw, 1),
            "concurrency": a.concurrency,
            "phase1_remember_logins_s": round(t1, 2),
            "token_faster": t_tok < t_pw}


# ---- sigkill ---------------------------------------------------------------

async def sigkill_phase1(a, port, srv):
    rc = await Conn.open(port)
    r = await rc.login(uname(2))
    assert r["type"] == "ok", r
    sc = await Conn.open(port)
    r = await sc.login(uname(1))
    assert r["type"] == "ok", r
    # The recipient reads (so it is never cut off for output) but never acks.
    got_live = 0

    async def reader():
        nonlocal got_live
        try:
            while True:
                m = await rc.recv()
                if m.get("type") == "deliver":
                    got_live += 1
        except (EOFError, ConnectionError, asyncio.CancelledError):
            pass
    rt = asyncio.ensure_future(reader())
    answered = {}   # msg_id -> (status, monotonic time of the answer)
    sent = 0
    t_start = time.monotonic()
    kill_at = t_start + a.kill_after
    t_kill = None

    async def receive_answers():
        try:
            while True:
                m = await sc.recv()
                if m.get("type") == "ok" and "msg_id" in m:
                    answered[m["msg_id"]] = (m["status"], time.monotonic())
                elif m.get("type") == "error":
                    answered[m.get("msg_id", "?%d" % len(answered))] = (
                        "error:" + m.get("code", "?"), time.monotonic())
        except (EOFError, ConnectionError, asyncio.CancelledError):
            pass
    at = asyncio.ensure_future(receive_answers())
    body = "k" * a.size
    while time.monotonic() < kill_at:
        while sent - len(answered) < a.window:
            sc.send({"type": "send", "id": sent + 10, "to": uname(2),
                     "msg_id": "k%d" % sent, "body": body})
            sent += 1
        await sc.w.drain()
        await asyncio.sleep(0.001)
    t_kill = time.monotonic()
    srv.kill()
    await asyncio.sleep(0.2)
    rt.cancel()
    at.cancel()
    return sent, answered, t_kill, got_live


async def sigkill_phase2(a, port):
    c = await Conn.open(port)
    r = await c.login(uname(2))
    assert r["type"] == "ok", r
    got = []
    try:
        while True:
            m = await asyncio.wait_for(c.recv(), a.idle)
            if m.get("type") == "deliver":
                got.append(m["msg_id"])
                c.send({"type": "ack", "msg_id": m["msg_id"],
                        "from": m["from"]})
    except asyncio.TimeoutError:
        pass
    await c.w.drain()
    c.close()
    return got


def sc_sigkill(a):
    db = os.path.join(a.tmp, "kill.db")
    populate(a.build, db, users=2, contacts=1)
    flags = ["--hash-cost", "min", "--rate-limit", str(a.rate_limit),
             "--log-level", "warn", "--offline-quota", "0"]
    if a.heartbeat:
        flags += ["--heartbeat", str(a.heartbeat)]
    s = Server(a.build, db, flags)
    sent, answered, t_kill, got_live = asyncio.run(
        sigkill_phase1(a, s.port, s))
    s2 = Server(a.build, db, flags)
    try:
        got = asyncio.run(sigkill_phase2(a, s2.port))
    finally:
        s2.stop()
    gotset = set(got)
    relayed = {k: t for k, (st, t) in answered.items() if st == "relayed"}
    stored = {k: t for k, (st, t) in answered.items() if st == "stored"}
    old = {k for k, t in relayed.items() if t < t_kill - 1.0}
    old_stored = {k for k, t in stored.items() if t < t_kill - 1.0}
    statuses = {}
    for st, _ in answered.values():
        statuses[st] = statuses.get(st, 0) + 1
    return {"sent": sent, "answered": len(answered), "statuses": statuses,
            "relayed": len(relayed), "relayed_older_than_1s": len(old),
            "delivered_live_before_kill": got_live,
            "received_after_restart": len(got),
            "received_unique": len(gotset),
            "relayed_received_after_restart": len(set(relayed) & gotset),
            "lost_relayed_older_than_1s": len(old - gotset),
            "lost_stored_older_than_1s": len(old_stored - gotset),
            "lost_relayed_last_1s": len((set(relayed) - old) - gotset),
            "received_never_answered": len(gotset - set(answered))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("scenario", choices=["startup", "held", "drain",
                                         "tokens", "sigkill"])
    ap.add_argument("--db", help="startup: the populated store")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds before the second RSS reading")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--idle", type=float, default=3.0,
                    help="seconds without a deliver that end a drain")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--password-logins", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--kill-after", type=float, default=2.0)
    ap.add_argument("--rate-limit", type=int, default=0)
    ap.add_argument("--heartbeat", type=int, default=0,
                    help="sigkill: the server's --heartbeat (0: its default)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (its server logs)")
    a = ap.parse_args()
    a.tmp = tempfile.mkdtemp(prefix="chat-store-bench-")
    try:
        res = {"startup": sc_startup, "held": sc_held, "drain": sc_drain,
               "tokens": sc_tokens, "sigkill": sc_sigkill}[a.scenario](a)
    finally:
        if not a.keep:
            shutil.rmtree(a.tmp, ignore_errors=True)
        else:
            print("kept", a.tmp, file=sys.stderr)
    print(json.dumps(dict(scenario=a.scenario, **res)))


if __name__ == "__main__":
    main()
