#!/usr/bin/env python3
"""delayline.py -- a userspace delay line between two TUN devices.

    delayline.py NS_A DEV_A NS_B DEV_B [--delay-ms 50] [--queue 1000]

Attaches to TUN device DEV_A in network namespace NS_A and DEV_B in NS_B
(a name under /run/netns, as `ip netns add` makes, or a path), and forwards
every packet read from one to the other DELAY ms after it was read: one
direction each way, so a round trip across it takes 2 * DELAY more. Order
is kept (one FIFO per direction, all with the same delay); a direction
holding QUEUE packets drops what comes next (a full link) and counts it.

The devices are made beforehand (`ip tuntap add dev X mode tun`, no packet
information header) and configured as point-to-point L3 links
(`ip addr add A peer B dev X`). A TUN file descriptor stays bound to its
device after the process switches namespaces, so one process can hold both
ends. It prints "ready" when both are attached, and exits 0 on SIGTERM or
SIGINT with a line of counters on stderr. Used by tests/nat/topology.sh
(case delay) where the kernel has no sch_netem.
"""
import argparse
import collections
import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


class Stop(Exception):
    pass


def setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def attach(ns, dev):
    """An fd on TUN device DEV in namespace NS (non-blocking)."""
    setns(ns if "/" in ns else os.path.join("/run/netns", ns))
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH22x", dev.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    return fd


def run(fa, fb, delay, limit):
    # queue[fd]: (due, packet) to write to fd, oldest first
    queue = {fa: collections.deque(), fb: collections.deque()}
    other = {fa: fb, fb: fa}
    stats = {"fwd": 0, "drop_full": 0, "drop_write": 0}
    try:
        while True:
            now = time.monotonic()
            for fd, q in queue.items():
                while q and q[0][0] <= now:
                    _, pkt = q.popleft()
                    try:
                        os.write(fd, pkt)
                        stats["fwd"] += 1
                    except OSError:  # device down, no buffer: lost
                        stats["drop_write"] += 1
            dues = [q[0][0] for q in queue.values() if q]
            timeout = max(0.0, min(dues) - now) if dues else None
            readable, _, _ = select.select([fa, fb], [], [], timeout)
            now = time.monotonic()
            for fd in readable:
                q = queue[other[fd]]
                for _ in range(64):  # a burst, then look at the clock again
                    try:
                        pkt = os.read(fd, 65536)
                    except OSError as e:
                        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                            break
                        raise
                    if len(q) >= limit:
                        stats["drop_full"] += 1
                    else:
                        q.append((now + delay, pkt))
    except Stop:
        pass
    finally:
        print("delayline: forwarded %(fwd)d, dropped %(drop_full)d (queue "
              "full), %(drop_write)d (write failed)" % stats,
              file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("ns_a")
    ap.add_argument("dev_a")
    ap.add_argument("ns_b")
    ap.add_argument("dev_b")
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--queue", type=int, default=1000)
    a = ap.parse_args()

    def stop(*_):
        raise Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        fa = attach(a.ns_a, a.dev_a)
        fb = attach(a.ns_b, a.dev_b)
        print("ready", flush=True)
        run(fa, fb, a.delay_ms / 1000.0, a.queue)
    except Stop:
        return 0
    except OSError as e:
        print("delayline: %s" % e, file=sys.stderr)
        return 1
    os.close(fa)
    os.close(fb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
