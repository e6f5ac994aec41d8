#!/usr/bin/env python3
"""tls.py -- the TLS figures of docs/PERFORMANCE.md (issue 15), repeatable.

usage: python3 bench/tls.py BUILD_DIR [--runs N] [--handshakes N]

Makes a throwaway CA and a server certificate for localhost/127.0.0.1
(openssl(1)) in a temporary directory, starts BUILD_DIR/bin/chat-server
there with both --listen and --tls-listen (fresh database, --hash-cost min,
--rate-limit 0), and in that one run measures:

  relay-64, relay-1k   100 pairs, window 64, 64 B / 1 KiB bodies, plaintext
                       and TLS runs interleaved N times against the same
                       server; prints each run, the medians and the ratio
                       TLS / plaintext of the medians (msgs/s)
  handshakes           chat-bench --handshakes N on the TLS port: completed
                       handshakes per second, and the server's and the
                       bench's CPU time per handshake

Development tool, not part of CI.
"""
import json, os, re, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf import cpu_s, stop_server  # noqa: E402

RELAYS = [
    ("relay-64", ["--pairs", "100", "--window", "64", "--size", "64",
                  "--messages", "2000"]),
    ("relay-1k", ["--pairs", "100", "--window", "64", "--size", "1024",
                  "--messages", "1000"]),
]


def make_certs(d):
    """A CA and a server certificate (P-256, a day) signed by it."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p = lambda f: os.path.join(d, f)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"),
         "-days", "1", "-subj", "/CN=chat bench CA")
    ossl("req", *ec, "-keyout", p("server.key"), "-out", p("server.csr"),
         "-subj", "/CN=localhost")
    with open(p("ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\n")
    ossl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"),
         "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "1",
         "-extfile", p("ext"), "-out", p("server.pem"))


def start_server(build, d):
    log = open(os.path.join(d, "server.log"), "w+")
    p = subprocess.Popen([os.path.join(build, "bin", "chat-server"),
                          "--listen", "127.0.0.1:0",
                          "--tls-listen", "127.0.0.1:0",
                          "--tls-cert", os.path.join(d, "server.pem"),
                          "--tls-key", os.path.join(d, "server.key"),
                          "--db", os.path.join(d, "chat.db"),
                          "--hash-cost", "min", "--rate-limit", "0",
                          "--max-clients", "20000", "--log-level", "info"],
                         stderr=log)
    for _ in range(200):
        log.seek(0)
        text = log.read()
        plain = re.search(r"listening on \S+:(\d+)$", text, re.M)
        tls = re.search(r"listening on \S+:(\d+) \(tls\)", text)
        if plain and tls:
            return p, int(plain.group(1)), int(tls.group(1))
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    log.seek(0)
    raise SystemExit("chat-server did not start:\n" + log.read())


def bench(build, spid, args):
    cmd = [os.path.join(build, "bin", "chat-bench"), "--json", "--timeout",
           "600", *args]
    s0 = cpu_s(spid)
    r0 = os.times()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    r1 = os.times()
    rep = json.loads(out.stdout)
    rep["server_cpu_s"] = round(cpu_s(spid) - s0, 2)
    rep["bench_cpu_s"] = round((r1.children_user - r0.children_user) +
                               (r1.children_system - r0.children_system), 2)
    rep["exit"] = out.returncode
    return rep


def relay_figures(rep):
    return {"msgs_per_sec": rep["msgs_per_sec"],
            "p50_us": rep["latency_us"]["p50"],
            "p99_us": rep["latency_us"]["p99"],
            "errors": rep["errors"]["total"],
            "server_cpu_s": rep["server_cpu_s"],
            "bench_cpu_s": rep["bench_cpu_s"],
            "elapsed_s": rep["elapsed_s"]}


def median(got, k):
    return statistics.median(g[k] for g in got)


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        raise SystemExit(0 if len(sys.argv) >= 2 else 2)
    build = sys.argv[1]
    runs, handshakes = 3, 5000
    a = sys.argv[2:]
    while a:
        if a[0] == "--runs":
            runs, a = int(a[1]), a[2:]
        elif a[0] == "--handshakes":
            handshakes, a = int(a[1]), a[2:]
        else:
            raise SystemExit(__doc__)
    d = tempfile.mkdtemp(prefix="chat-tls-perf-")
    try:
        make_certs(d)
        srv, plain, tls = start_server(build, d)
        spid = srv.pid
        tls_args = ["--tls-ca", os.path.join(d, "ca.pem")]
        try:
            for name, args in RELAYS:
                got = {"plain": [], "tls": []}
                for i in range(runs):
                    # Interleaved, so a drift of the machine hits both.
                    for kind in ("plain", "tls"):
                        extra = (["--server", "127.0.0.1:%d" % tls, *tls_args]
                                 if kind == "tls" else
                                 ["--server", "127.0.0.1:%d" % plain])
                        f = relay_figures(bench(build, spid, [*extra, *args]))
                        got[kind].append(f)
                        print("%s %s run %d: %s" % (name, kind, i + 1,
                                                    json.dumps(f)), flush=True)
                med = {k: {f: median(got[k], f) for f in got[k][0]}
                       for k in got}
                print("%s MEDIAN plain: %s" % (name, json.dumps(med["plain"])))
                print("%s MEDIAN tls:   %s" % (name, json.dumps(med["tls"])))
                print("%s RATIO tls/plain msgs/s: %.2f" % (
                    name, med["tls"]["msgs_per_sec"] /
                    med["plain"]["msgs_per_sec"]), flush=True)
            got = []
            for i in range(runs):
                rep = bench(build, spid, [
                    "--server", "localhost:%d" % tls, *tls_args,
                    "--handshakes", str(handshakes), "--concurrency", "32",
                    "--server-pid", str(spid)])
                h = rep["handshakes"]
                f = {"per_sec": h["per_sec"],
                     "server_cpu_us_per_handshake":
                         h.get("server_cpu_us_per_handshake"),
                     "bench_cpu_us_per_handshake":
                         h.get("bench_cpu_us_per_handshake"),
                     "errors": rep["errors"]["total"]}
                got.append(f)
                print("handshakes run %d: %s" % (i + 1, json.dumps(f)),
                      flush=True)
            print("handshakes MEDIAN (%d per run, 32 at a time): %s" % (
                handshakes, json.dumps({k: median(got, k) for k in got[0]})),
                flush=True)
        finally:
            stop_server(srv)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
