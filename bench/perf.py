#!/usr/bin/env python3
"""perf.py -- the runs behind docs/PERFORMANCE.md, repeatable.

usage: python3 bench/perf.py BUILD_DIR [--runs N] [--only NAME,...]

Starts BUILD_DIR/bin/chat-server on 127.0.0.1:0 with a fresh database,
--hash-cost min and --rate-limit 0 for each scenario (a fresh one for every
idle run, so the RSS baseline is clean), runs BUILD_DIR/bin/chat-bench --json
N times, and prints one line per run (with the server's and the bench's CPU
seconds) and the median of each figure. Development tool, not part of CI.
"""
import json, os, re, statistics, subprocess, sys, tempfile, time

SCENARIOS = [
    # name, bench args, fresh server per run
    ("relay-64", ["--pairs", "100", "--window", "64", "--size", "64",
                  "--messages", "2000"], False),
    ("relay-1k", ["--pairs", "100", "--window", "64", "--size", "1024",
                  "--messages", "1000"], False),
    ("latency-w1", ["--pairs", "1", "--window", "1", "--size", "64",
                    "--messages", "20000"], False),
    ("offline-store", ["--mode", "offline", "--pairs", "100", "--window", "64",
                       "--size", "64", "--messages", "1000"], False),
    ("direct-64", ["--mode", "direct", "--pairs", "100", "--window", "64",
                   "--size", "64", "--messages", "2000"], False),
    # Fan-out: group_send to the last of 499 online members' deliver.
    ("group-500", ["--mode", "group", "--group-size", "500", "--messages",
                   "200", "--concurrency", "64"], False),
    ("logins", ["--pairs", "500", "--messages", "0", "--concurrency", "64"],
     False),
    ("idle-10k", ["--idle", "10000", "--concurrency", "64"], True),
    # The default argon2id cost, as a real deployment runs it.
    ("logins-interactive", ["--pairs", "16", "--messages", "0",
                            "--concurrency", "8"], False,
     ["--hash-cost", "interactive"]),
]


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(build, extra=()):
    d = tempfile.mkdtemp(prefix="chat-perf-")
    log = open(os.path.join(d, "server.log"), "w+")
    p = subprocess.Popen([os.path.join(build, "bin", "chat-server"),
                          "--listen", "127.0.0.1:0", "--db",
                          os.path.join(d, "chat.db"), "--hash-cost", "min",
                          "--rate-limit", "0", "--max-clients", "20000",
                          "--log-level", "warn", *extra],
                         stderr=log)
    for _ in range(200):
        log.seek(0)
        m = re.search(r"listening on \S+:(\d+)", log.read())
        if m:
            return p, int(m.group(1))
        time.sleep(0.05)
    p.kill()
    raise SystemExit("chat-server did not start")


def stop_server(p):
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def run_bench(build, port, spid, args):
    cmd = [os.path.join(build, "bin", "chat-bench"), "--server",
           "127.0.0.1:%d" % port, "--json", "--timeout", "600", *args]
    if "--idle" in args:
        cmd += ["--server-pid", str(spid)]
    s0 = cpu_s(spid)
    r0 = os.times()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    r1 = os.times()
    rep = json.loads(out.stdout)
    rep["server_cpu_s"] = round(cpu_s(spid) - s0, 2)
    rep["bench_cpu_s"] = round((r1.children_user - r0.children_user) +
                               (r1.children_system - r0.children_system), 2)
    rep["exit"] = out.returncode
    return " ".join(cmd[1:]), rep


def figures(rep):
    f = {"msgs_per_sec": rep["msgs_per_sec"],
         "p50_us": rep["latency_us"]["p50"],
         "p99_us": rep["latency_us"]["p99"],
         "max_us": rep["latency_us"]["max"],
         "errors": rep["errors"]["total"],
         "login_per_sec": rep["setup"]["login_per_sec"],
         "register_per_sec": rep["setup"]["register_per_sec"],
         "server_cpu_s": rep["server_cpu_s"],
         "bench_cpu_s": rep["bench_cpu_s"],
         "elapsed_s": rep["elapsed_s"]}
    if "flush_msgs_per_sec" in rep:
        f["flush_msgs_per_sec"] = rep["flush_msgs_per_sec"]
    if "idle" in rep:
        f["rss_per_session_bytes"] = rep["idle"].get("rss_per_session_bytes")
        f["idle_login_per_sec"] = rep["idle"]["login_per_sec"]
    return f


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        raise SystemExit(0 if len(sys.argv) >= 2 else 2)
    build = sys.argv[1]
    runs = 3
    only = None
    a = sys.argv[2:]
    while a:
        if a[0] == "--runs":
            runs = int(a[1])
            a = a[2:]
        elif a[0] == "--only":
            only = a[1].split(",")
            a = a[2:]
        else:
            raise SystemExit(__doc__)
    for sc in SCENARIOS:
        name, args, fresh = sc[:3]
        extra = sc[3] if len(sc) > 3 else []
        if only and name not in only:
            continue
        got = []
        srv = None
        for i in range(runs):
            if srv is None or fresh:
                if srv:
                    stop_server(srv[0])
                srv = start_server(build, extra)
            cmd, rep = run_bench(build, srv[1], srv[0].pid, args)
            f = figures(rep)
            got.append(f)
            print("%s run %d: %s" % (name, i + 1, json.dumps(f)), flush=True)
        stop_server(srv[0])
        med = {k: statistics.median([g[k] for g in got if g.get(k) is not None])
               for k in got[0] if any(g.get(k) is not None for g in got)}
        print("%s MEDIAN (%s): %s" % (name, cmd.replace(
            "127.0.0.1:%d" % srv[1], "127.0.0.1:PORT"), json.dumps(med)),
            flush=True)


if __name__ == "__main__":
    main()
