#!/usr/bin/env python3
"""Restart time with many queued jobs and disk use under queue churn (issue 5, items 6 and 9).

Driven by compat/bench/disk.sh; prints Markdown tables. A measurement: it asserts nothing
about speed, only that the data came back (job counts after each restart).
"""
import argparse
import base64
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("berth")
ap.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", 1_000_000)))
ap.add_argument("--lists", type=int, default=4)
ap.add_argument("--size", type=int, default=500)
ap.add_argument("--depth", type=int, default=10_000)
ap.add_argument("--cycles", type=int, default=int(os.environ.get("CYCLES", 10_000_000)))
ap.add_argument("--churn-seconds", type=float, default=float(os.environ.get("CHURN_SECONDS", 600)))
ap.add_argument("--engines", default=os.environ.get("ENGINES", "fjall,sled"))
ap.add_argument("--parts", default=os.environ.get("PARTS", "restart,churn"))
ap.add_argument("--redis", default="redis-server")
# Used by compat/bench/run.sh: the appendfsync modes of the restart part, a CSV of its rows,
# and the idle pause after the churn.
ap.add_argument("--fsyncs", default=os.environ.get("FSYNCS", "always"))
ap.add_argument("--csv", default=os.environ.get("CSV", ""))
ap.add_argument("--idle-seconds", type=float, default=float(os.environ.get("IDLE_SECONDS", 30)))
args = ap.parse_args()
ENGINES = args.engines.split(",")
PARTS = args.parts.split(",")
rng = random.Random(1)
# Distinct, barely compressible payloads (base64 of random bytes), like job JSON with ids.
POOL = [base64.b64encode(rng.randbytes(args.size * 3 // 4 + 3))[: args.size] for _ in range(4096)]
port = 7700 + os.getpid() % 200


def resp(*parts):
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        p = p if isinstance(p, bytes) else str(p).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise ConnectionError("closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        ln, self.buf = self.buf[:i], self.buf[i + 2:]
        return ln

    def reply(self):
        ln = self.line()
        t = ln[:1]
        if t == b"$":
            n = int(ln[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if t == b"*":
            return [self.reply() for _ in range(int(ln[1:]))]
        if t == b":":
            return int(ln[1:])
        if t == b"-":
            return RuntimeError(ln[1:].decode())
        return ln[1:].decode()

    def cmd(self, *parts):
        self.s.sendall(resp(*parts))
        r = self.reply()
        if isinstance(r, RuntimeError):
            raise r
        return r

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        v, self.buf = self.buf[:n], self.buf[n:]
        return v


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def du(path):
    """Apparent bytes (du -sb; counts fjall's sparse 64 MiB journal in full)."""
    return int(subprocess.check_output(["du", "-sb", path]).split()[0])


def alloc(path):
    """Bytes of blocks actually allocated (du -sk)."""
    return int(subprocess.check_output(["du", "-sk", path]).split()[0]) * 1024


def start(kind, d, fsync, expect=None):
    """Starts a server; returns (process, seconds until a PING got +PONG and, with `expect`,
    the queues hold that many jobs: a server that answers -LOADING or counts fewer is polled)."""
    global port
    port += 1
    if kind == "redis":
        cmd = [args.redis, "--port", str(port), "--dir", d, "--appendonly", "yes",
               "--appendfsync", fsync, "--save", "", "--daemonize", "no", "--loglevel", "warning"]
    else:
        cmd = [args.berth, "--port", str(port), "--dir", d, "--storage-engine", kind,
               "--appendfsync", fsync, "--loglevel", "warning"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    while True:
        if p.poll() is not None:
            sys.exit(f"{kind} exited with {p.returncode} while starting on {d}")
        try:
            c = Conn(port)
            c.s.sendall(resp("PING"))
            if c.reply() == "PONG" and (expect is None or count_jobs(c, True) == expect):
                t = time.monotonic() - t0
                c.s.close()
                return p, t
            c.s.close()  # -LOADING: try again
        except (ConnectionError, OSError):
            pass
        time.sleep(0.002)


def stop(p, sig="TERM"):
    if sig == "KILL":
        p.kill()
    else:
        p.terminate()
    p.wait()


def count_jobs(c, tolerant=False):
    if not tolerant:
        return sum(c.cmd("LLEN", f"queue:{i}") for i in range(args.lists))
    c.s.sendall(b"".join(resp("LLEN", f"queue:{i}") for i in range(args.lists)))
    rs = [c.reply() for _ in range(args.lists)]
    return -1 if any(isinstance(r, RuntimeError) for r in rs) else sum(rs)


def load_jobs(c):
    window = 1024
    n = 0
    t0 = time.monotonic()
    while n < args.jobs:
        k = min(window, args.jobs - n)
        c.s.sendall(b"".join(resp("RPUSH", f"queue:{(n + j) % args.lists}", POOL[(n + j) % 4096])
                             for j in range(k)))
        for _ in range(k):
            r = c.reply()
            if isinstance(r, RuntimeError):
                raise r
        n += k
    return time.monotonic() - t0


def mib(b):
    return f"{b / 1048576:,.0f} MiB"


def restart_part():
    rows = []
    fsyncs = args.fsyncs.split(",")
    kinds = [(e, f) for f in fsyncs for e in ENGINES] + [("redis", f) for f in fsyncs]
    for kind, fsync in kinds:
        d = tempfile.mkdtemp(prefix=f"berth-disk-{kind}-")
        p, t_empty = start(kind, d, fsync)
        c = Conn(port)
        t_load = load_jobs(c)
        rss_loaded = rss_kb(p.pid)
        c.s.close()
        stop(p)
        disk, disk_alloc = du(d), alloc(d)
        p, t_term = start(kind, d, fsync, args.jobs)
        c = Conn(port)
        n1 = count_jobs(c)
        rss_restart = rss_kb(p.pid)
        c.s.close()
        stop(p, "KILL")
        p, t_kill = start(kind, d, fsync, args.jobs)
        c = Conn(port)
        n2 = count_jobs(c)
        c.s.close()
        stop(p)
        ok = "yes" if n1 == n2 == args.jobs else f"**no: {n1}, {n2}**"
        name = f"Berth, {kind}" if kind != "redis" else "Redis 7.0.15, AOF"
        rows.append(f"| {name} | `{fsync}` | {args.jobs / t_load:,.0f} | {mib(disk)} / {mib(disk_alloc)} | "
                    f"{t_term:.2f} s | {t_kill:.2f} s | {mib(rss_loaded * 1024)} | "
                    f"{mib(rss_restart * 1024)} | {ok} |")
        if args.csv:
            with open(args.csv, "a") as f:
                f.write(f"{kind},{fsync},{args.jobs},{args.jobs / t_load:.0f},{disk},{disk_alloc},"
                        f"{t_term:.3f},{t_kill:.3f},{rss_loaded},{rss_restart},{int(n1 == n2 == args.jobs)}\n")
        print(f"# {kind}: empty start {t_empty:.3f} s, {os.listdir(d)}", file=sys.stderr)
        subprocess.run(["rm", "-rf", d])
    print(f"\n### Restart with {args.jobs:,} queued {args.size}-byte jobs "
          f"(RPUSH into {args.lists} lists, 1,024 pipelined)\n")
    print("| server | appendfsync | load (jobs/s) | disk after load (du -sb / allocated) | restart after SIGTERM | "
          "restart after SIGKILL | RSS after load | RSS after restart | all jobs back |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(r)
    sys.stdout.flush()


def churn_part():
    live = args.depth * args.size
    batch = 256  # LPUSH+RPOP pairs per round trip
    step = max(args.cycles // 10, batch)
    for eng in ENGINES:
        d = tempfile.mkdtemp(prefix=f"berth-churn-{eng}-")
        p, _ = start(eng, d, "everysec")
        c = Conn(port)
        for i in range(0, args.depth, 1000):
            c.s.sendall(b"".join(resp("LPUSH", "churn", POOL[j % 4096]) for j in range(i, i + 1000)))
            for _ in range(1000):
                c.reply()
        assert c.cmd("LLEN", "churn") == args.depth
        pre = [b"".join(resp("LPUSH", "churn", POOL[(b * batch + j) % 4096]) + resp("RPOP", "churn")
                        for j in range(batch)) for b in range(16)]
        push_reply = b":%d\r\n" % (args.depth + 1)
        pair_len = len(push_reply) + len(b"$%d\r\n" % args.size) + args.size + 2
        def row(label, el, rss=True):
            b, a = du(d), alloc(d)
            r = mib(rss_kb(p.pid) * 1024) if rss else ""
            return f"| {label} | {el} | {b:,} | {b / live:.1f}x | {a:,} | {a / live:.1f}x | {r} |"

        rows = [row("0", "0 s")]
        t0 = time.monotonic()
        done = 0
        next_mark = step
        while done < args.cycles:
            c.s.sendall(pre[(done // batch) % 16])
            r = c.read_exact(batch * pair_len)
            if r.count(push_reply) != batch:
                sys.exit(f"unexpected churn reply: {r[:80]!r}")
            done += batch
            el = time.monotonic() - t0
            if done >= next_mark or el > args.churn_seconds:
                rows.append(row(f"{done:,}", f"{el:.0f} s"))
                next_mark += step
                if el > args.churn_seconds:
                    break
        el = time.monotonic() - t0
        assert c.cmd("LLEN", "churn") == args.depth
        end_apparent, end_alloc = du(d), alloc(d)
        time.sleep(args.idle_seconds)
        rows.append(row(f"idle {args.idle_seconds:g} s", ""))
        c.s.close()
        stop(p)
        rows.append(row("after SIGTERM", "", False))
        p, t = start(eng, d, "everysec")
        c = Conn(port)
        assert c.cmd("LLEN", "churn") == args.depth
        c.s.close()
        stop(p)
        rows.append(row(f"after a restart ({t:.2f} s) and SIGTERM", "", False))
        if args.csv:
            with open(args.csv, "a") as f:
                f.write(f"churn:{eng},everysec,{done},{done / el:.0f},{end_apparent},{end_alloc},{t:.3f},"
                        f"{live}\n")
        print(f"\n### Churn, Berth {eng}, `everysec`: {done:,} cycles (LPUSH one, RPOP one; "
              f"{batch} pairs pipelined) in {el:.0f} s = {done / el:,.0f} cycles/s; "
              f"live data {args.depth:,} x {args.size} B = {live:,} B\n")
        print("| cycles | elapsed | du -sb (bytes) | du -sb / live | allocated (du -sk) | "
              "allocated / live | RSS |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(r)
        sys.stdout.flush()
        subprocess.run(["rm", "-rf", d])


if "restart" in PARTS:
    restart_part()
if "churn" in PARTS:
    churn_part()
