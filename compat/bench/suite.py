#!/usr/bin/env python3
"""Berth beside Redis 7.0.15 in one run (driven by compat/bench/run.sh).

side (default, issue 7): Berth (fjall) and redis-server under appendfsync everysec and always;
  redis-benchmark SET GET LPUSH RPOP ZADD ZPOPMIN EVALSHA at 50 clients, pipeline 1 and 16;
  Sidekiq 6.4 push_bulk + a real `sidekiq` process; BullMQ 6 addBulk + a Worker at
  concurrency 50; RSS and restart time with 1M queued 500-byte jobs (compat/bench/disk.py).
matrix (issue 5): Berth fjall and sled under always, everysec and no, Redis AOF always and
  everysec; SET LPUSH RPOP ZADD EVALSHA at 1 and 50 clients, pipeline 1 and 16; then
  compat/bench/disk.sh (restart with 1M jobs, disk use under 10M cycles of queue churn).

A benchmark: it asserts nothing about speed. It fails only if a server does not start or a
job system does not process every job.
"""
import argparse
import csv
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import report
from common import free_port, log

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = "return redis.call('INCR', KEYS[1])"

ap = argparse.ArgumentParser()
ap.add_argument("--berth", default=os.path.join(ROOT, "target", "release", "berth"))
ap.add_argument("--mode", choices=["side", "matrix"], default="side")
ap.add_argument("--quick", action="store_true", help="small counts: checks the run, not a result")
ap.add_argument("--out", help="output folder (default docs/bench; docs/bench/quick with --quick, "
                "docs/bench/partial with --parts or --servers)")
ap.add_argument("--parts", help="comma-separated subset: redis-benchmark,sidekiq,bullmq,disk")
ap.add_argument("--servers", help="only the servers whose label contains one of these comma-separated "
                "words, e.g. 'Berth always' or 'sled' (not the disk part, which runs its own)")
args = ap.parse_args()
# Quick or partial runs go to folders of their own (gitignored), never over the results.
OUT = args.out or os.path.join(ROOT, "docs", "bench", "quick" if args.quick else
                               "partial" if args.parts or args.servers else "")
Q = args.quick

# Counts per case: the same load for every server of a configuration.
if args.mode == "side":
    N = {1: 2_000, 16: 10_000} if Q else {1: 100_000, 16: 500_000}
    JOBS = 2_000 if Q else 100_000
    DISK_JOBS = 20_000 if Q else 1_000_000
else:
    DISK_JOBS = 20_000 if Q else 1_000_000


def matrix_n(fsync, clients, pipeline):
    """Requests per redis-benchmark run in the matrix: fewer where every reply waits for an
    fsync of its own (1 client, `always`), so each run lasts a few seconds."""
    if Q:
        return 500 if (clients, pipeline, fsync) == (1, 1, "always") else 2_000 if pipeline == 1 else 10_000
    if clients == 50:
        return 100_000 if pipeline == 1 else 300_000
    if fsync == "always":
        return 5_000 if pipeline == 1 else 50_000
    return 30_000 if pipeline == 1 else 200_000


class Server:
    """One server process on a free port with a fresh temp data directory."""

    def __init__(self, kind, fsync, engine="fjall"):
        self.kind, self.fsync, self.engine = kind, fsync, engine

    @property
    def label(self):
        if self.kind == "redis":
            return f"Redis {self.fsync}"
        return f"Berth {self.engine} {self.fsync}" if args.mode == "matrix" else f"Berth {self.fsync}"

    def __enter__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"berth-bench-{self.kind}-")
        if self.kind == "redis":
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                   "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "",
                   "--daemonize", "no", "--loglevel", "warning"]
        else:
            cmd = [args.berth, "--port", str(self.port), "--dir", os.path.join(self.dir, "data"),
                   "--storage-engine", self.engine, "--appendfsync", self.fsync, "--loglevel", "warning"]
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.label} exited with {self.proc.returncode}: {self.tail()}")
            try:
                if self.cli("PING") == "PONG":
                    return self
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        sys.exit(f"{self.label} did not answer PING: {self.tail()}")

    def tail(self):
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def cli(self, *a):
        return subprocess.check_output(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *a],
                                       stderr=subprocess.DEVNULL, timeout=30).decode().strip()

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


ROWS = []  # dicts: section, metric, server, engine, appendfsync, clients, pipeline, count, value, unit


def add(section, metric, srv_label, engine, fsync, value, unit, clients="", pipeline="", count=""):
    ROWS.append(dict(section=section, metric=metric, server=srv_label, engine=engine, appendfsync=fsync,
                     clients=clients, pipeline=pipeline, count=count, value=value, unit=unit))


def eng(s):
    return s.engine if s.kind == "berth" else ""


def redis_benchmark(srv, clients, pipeline, n, tests):
    """{test: requests per second} for `-t tests` and the EVALSHA of SCRIPT."""
    base = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(srv.port), "-c", str(clients), "-n", str(n),
            "-P", str(pipeline), "-r", "100000", "--csv"]
    sha = srv.cli("SCRIPT", "LOAD", SCRIPT)
    out = {}
    for extra in (["-t", tests], ["EVALSHA", sha, "1", "evalkey:__rand_int__"]):
        p = subprocess.run(base + extra, capture_output=True, timeout=1800)
        if p.returncode != 0:
            sys.exit(f"redis-benchmark failed on {srv.label}: {p.stderr.decode()[-500:]}")
        for row in csv.reader(p.stdout.decode().replace("\r", "\n").splitlines()):
            if len(row) >= 2 and row[0] != "test":
                out["EVALSHA" if row[0].startswith("EVALSHA") else row[0]] = float(row[1])
    return out


def part_redis_benchmark(servers, shapes, tests, n_of):
    for s in servers:
        with s:
            for clients, pipeline in shapes:
                n = n_of(s.fsync, clients, pipeline)
                t0 = time.monotonic()
                res = redis_benchmark(s, clients, pipeline, n, tests)
                log(f"{s.label} c={clients} P={pipeline} n={n}: "
                    + ", ".join(f"{k} {v:,.0f}" for k, v in res.items()) + f" ({time.monotonic() - t0:.0f} s)")
                for test, rps in res.items():
                    add("redis-benchmark", test, s.label, eng(s), s.fsync,
                        rps, "req/s", clients, pipeline, n)


def run_group(cmd, cwd=None, env=None, timeout=3600, live_stderr=False):
    """Runs cmd in a process group of its own and kills whatever of that group is left when it
    ends (a `sidekiq` or a server that a failing helper did not stop), even on a timeout."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=None if live_stderr else subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = b"", b"timed out"
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    return subprocess.CompletedProcess(cmd, p.returncode, out, err or b"")


def run_json(cmd, cwd, env=None, what=""):
    p = run_group(cmd, cwd, {**os.environ, **(env or {})})
    lines = [ln for ln in p.stdout.decode().splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        sys.exit(f"{what} failed ({p.returncode}): {p.stderr.decode()[-1500:]}")
    r = json.loads(lines[-1])
    if not r.get("ok"):
        sys.exit(f"{what}: not every job was processed: {r}")
    return r


def part_sidekiq(servers):
    for s in servers:
        with s:
            r = run_json(["ruby", os.path.join(HERE, "sidekiq_bench.rb"), str(JOBS), "10"], HERE,
                         {"REDIS_URL": f"redis://127.0.0.1:{s.port}/0"}, f"Sidekiq on {s.label}")
        log(f"{s.label} Sidekiq: {r}")
        add("sidekiq", "Sidekiq push_bulk enqueue", s.label, eng(s), s.fsync,
            r["enqueue_per_s"], "jobs/s", count=JOBS)
        add("sidekiq", "Sidekiq drain (sidekiq -c 10)", s.label, eng(s), s.fsync,
            r["drain_per_s"], "jobs/s", clients=10, count=JOBS)


def part_bullmq(servers):
    for s in servers:
        with s:
            r = run_json(["node", os.path.join(HERE, "bullmq_bench.js"), str(s.port), str(JOBS), "50"], HERE,
                         what=f"BullMQ on {s.label}")
        log(f"{s.label} BullMQ: {r}")
        add("bullmq", "BullMQ addBulk", s.label, eng(s), s.fsync,
            r["add_per_s"], "jobs/s", count=JOBS)
        add("bullmq", "BullMQ Worker (concurrency 50)", s.label, eng(s), s.fsync,
            r["process_per_s"], "jobs/s", clients=50, count=JOBS)


def part_disk(engines, fsyncs, parts, extra_env=None):
    """Runs compat/bench/disk.py; returns its Markdown; adds its restart rows."""
    fd, csv_path = tempfile.mkstemp(prefix="berth-bench-disk-", suffix=".csv")
    os.close(fd)
    env = {**os.environ, "JOBS": str(DISK_JOBS), "ENGINES": engines, "FSYNCS": fsyncs, "PARTS": parts,
           "CSV": csv_path, **(extra_env or {})}
    log(f"disk.py: {', '.join(f'{k}={env[k]}' for k in ('JOBS', 'ENGINES', 'FSYNCS', 'PARTS'))}"
        + "".join(f" {k}={v}" for k, v in (extra_env or {}).items()))
    p = run_group([sys.executable, os.path.join(HERE, "disk.py"), args.berth], env=env, timeout=7200,
                  live_stderr=True)
    if p.returncode != 0:
        sys.exit(f"disk.py failed ({p.returncode})")
    with open(csv_path) as f:
        lines = list(csv.reader(f))
    os.unlink(csv_path)
    for line in [ln for ln in lines if not ln[0].startswith("churn:")]:
        kind, fsync, jobs, load, disk, alloc, t_term, t_kill, rss, rss2, ok = line
        if ok != "1":
            sys.exit(f"disk.py: not all jobs came back on {kind} {fsync}")
        if kind == "redis":
            label, engine = f"Redis {fsync}", ""
        else:
            label = f"Berth {kind} {fsync}" if args.mode == "matrix" else f"Berth {fsync}"
            engine = kind
        for metric, value, unit in (
                ("Load (RPUSH, 1,024 pipelined)", float(load), "jobs/s"),
                ("RSS with the jobs queued", int(rss) / 1024, "MiB"),
                ("RSS after restart", int(rss2) / 1024, "MiB"),
                ("Disk after load (du -sb, apparent)", int(disk) / 1048576, "MiB"),
                ("Disk after load (du -sk, allocated)", int(alloc) / 1048576, "MiB"),
                ("Restart after SIGTERM", float(t_term), "s"),
                ("Restart after SIGKILL", float(t_kill), "s")):
            add("jobs on disk", metric, label, engine, fsync, value, unit, count=int(jobs))
    for line in [ln for ln in lines if ln[0].startswith("churn:")]:
        eng, fsync, cycles, rate, disk, alloc, t_restart, _live = line
        eng = eng.split(":")[1]
        label = f"Berth {eng} {fsync}" if args.mode == "matrix" else f"Berth {fsync}"
        for metric, value, unit in (
                ("Churn at depth 10,000 (LPUSH+RPOP pairs)", float(rate), "cycles/s"),
                ("Disk after the churn (du -sb, apparent)", int(disk) / 1048576, "MiB"),
                ("Disk after the churn (du -sk, allocated)", int(alloc) / 1048576, "MiB"),
                ("Restart after the churn", float(t_restart), "s")):
            add("churn", metric, label, eng, fsync, value, unit, count=int(cycles))
    return p.stdout.decode()


def sh(cmd):
    try:
        return subprocess.check_output(cmd, shell=True, stderr=subprocess.DEVNULL, timeout=30).decode().strip()
    except Exception:  # noqa: BLE001 - a missing tool leaves the field empty
        return ""


def machine():
    data_dir = tempfile.gettempdir()
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    fs = sh(f"df -T {data_dir} | tail -1 | awk '{{print $1, $2}}'")
    dirty = sh(f"git -C {ROOT} status --porcelain -- src Cargo.toml Cargo.lock")
    sidekiq = sh("dpkg-query -W -f='${Version}' ruby-sidekiq")
    bullmq_pkg = os.path.join(ROOT, "compat", "bullmq", "node_modules", "bullmq", "package.json")
    bullmq = "?"
    if os.path.exists(bullmq_pkg):
        with open(bullmq_pkg) as f:
            bullmq = json.load(f)["version"]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{sh('nproc')} cores, {cpu}, {mem} RAM, Linux {sh('uname -r')}",
        "data dirs": f"temp folders under {data_dir}, on {fs}",
        "load average at start": sh("cut -d' ' -f1-3 /proc/loadavg"),
        "Berth": f"commit {sh(f'git -C {ROOT} rev-parse --short HEAD')}"
                 f"{' with uncommitted changes' if dirty else ''}, release build ({args.berth})",
        "Redis": sh("redis-server --version"),
        "redis-benchmark": sh("redis-benchmark --version"),
        "Sidekiq": f"ruby-sidekiq {sidekiq}, {sh('ruby -v')}",
        "BullMQ": f"bullmq {bullmq}, Node.js {sh('node -v')}",
    }


def pick(servers):
    if not args.servers:
        return servers
    words = args.servers.split(",")
    return [s for s in servers if any(w in s.label for w in words)]


def main():
    info = machine()
    t0 = time.monotonic()
    parts = set((args.parts or "redis-benchmark,sidekiq,bullmq,disk").split(","))
    disk_md = ""
    if args.mode == "side":
        servers = [Server("berth", "everysec"), Server("berth", "always"),
                   Server("redis", "everysec"), Server("redis", "always")]
        servers = pick(servers)
        if "redis-benchmark" in parts:
            part_redis_benchmark(servers, [(50, 1), (50, 16)], "set,get,lpush,rpop,zadd,zpopmin",
                                 lambda fsync, c, p: N[p])
        if "sidekiq" in parts:
            part_sidekiq(servers)
        if "bullmq" in parts:
            part_bullmq(servers)
        if "disk" in parts:
            disk_md = part_disk("fjall", "everysec,always", "restart")
        name = "side-by-side"
    else:
        servers = [Server("berth", f, e) for e in ("fjall", "sled") for f in ("always", "everysec", "no")]
        servers += [Server("redis", "always"), Server("redis", "everysec")]
        servers = pick(servers)
        if "redis-benchmark" in parts:
            part_redis_benchmark(servers, [(1, 1), (1, 16), (50, 1), (50, 16)], "set,lpush,rpop,zadd", matrix_n)
        if "disk" in parts:
            extra = {"CYCLES": "200000", "IDLE_SECONDS": "2"} if Q else {}
            disk_md = part_disk("fjall,sled", "always", "restart,churn", extra)
        name = "persistence-matrix"
    info["load average at end"] = sh("cut -d' ' -f1-3 /proc/loadavg")
    info["duration"] = f"{(time.monotonic() - t0) / 60:.1f} min"
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{name}.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(ROWS[0].keys()) if ROWS else ["section"])
        w.writeheader()
        w.writerows(ROWS)
    cmd = os.environ.get("BENCH_COMMAND") or "compat/bench/suite.py " + " ".join(sys.argv[1:])
    md = report.markdown(args.mode, ROWS, info, disk_md, Q, name, cmd)
    with open(os.path.join(OUT, f"{name}.md"), "w") as f:
        f.write(md)
    why_not = report.chart(args.mode, ROWS, info, os.path.join(OUT, f"{name}.png"), Q)
    print(md)
    log(f"wrote {OUT}/{name}.md, {name}.csv" + (f" (no chart: {why_not})" if why_not else f", {name}.png"))


if __name__ == "__main__":
    main()
