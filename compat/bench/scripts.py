#!/usr/bin/env python3
"""Per-script CPU of BullMQ 6.7.0's hot scripts, Berth beside Redis 7.0.15 (issue 12).

Starts each server fresh (its own temp dir), runs compat/bench/scripts.js against it RUNS
times (a fresh server each time) and prints a Markdown table of the medians: CPU per script
call and per redis.call on the thread that runs scripts (Berth's keyspace thread, Redis's main
thread), and on all the server's threads (Berth's committer; Redis's bio threads), plus the
deferred work after the calls (Berth's checkpoints). CPU is read from /proc (schedstat), so
other load on the machine barely moves it, unlike throughput.

  compat/bench/scripts.py [--berth target/release/berth] [--runs 3] [--n 2000]
                          [--prefill 10000] [--port 0] [--servers redis,always,no] [--json F]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import free_port, log

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = ["addStandardJob", "addDelayedJob", "moveToActive", "extendLock", "moveToFinished",
           "retryJob", "moveStalledJobsToWait", "getCounts"]
SERVERS = {
    "redis": "Redis 7.0.15 everysec",
    "always": "Berth always (default)",
    "no": "Berth appendonly no",
}

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--berth", default=os.path.join(ROOT, "target", "release", "berth"))
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--n", type=int, default=2000, help="calls per script")
ap.add_argument("--prefill", type=int, default=10000, help="waiting jobs before the calls")
ap.add_argument("--port", type=int, default=0, help="first port to use (default: free ports)")
ap.add_argument("--servers", default="redis,always,no")
ap.add_argument("--json", help="also write the raw rows here")
args = ap.parse_args()


def start(kind, port, d):
    if kind == "redis":
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
               "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
               "--daemonize", "no", "--loglevel", "warning"]
    else:
        cmd = [args.berth, "--port", str(port), "--dir", os.path.join(d, "data"),
               "--loglevel", "warning"]
        if kind == "no":
            cmd += ["--appendonly", "no"]
    logf = open(os.path.join(d, "server.log"), "ab")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=logf)
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{kind} exited with {proc.returncode}")
        try:
            out = subprocess.check_output(["redis-cli", "-p", str(port), "PING"],
                                          stderr=subprocess.DEVNULL, timeout=5)
            if out.strip() == b"PONG":
                return proc
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"{kind} did not answer PING")


def run_once(kind, port):
    d = tempfile.mkdtemp(prefix=f"berth-scripts-{kind}-")
    proc = start(kind, port, d)
    try:
        out = subprocess.run(["node", os.path.join(HERE, "scripts.js"), str(port), str(proc.pid),
                              str(args.n), str(args.prefill)],
                             capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            sys.exit(f"scripts.js against {kind} failed:\n{out.stderr[-3000:]}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    kinds = [k for k in args.servers.split(",") if k]
    results = {k: [] for k in kinds}  # kind -> list of runs, each {script: row}
    for r in range(args.runs):
        for i, kind in enumerate(kinds):
            port = args.port + i if args.port else free_port()
            log(f"run {r + 1}/{args.runs}: {SERVERS[kind]} on port {port}")
            rows = run_once(kind, port)
            results[kind].append({row["script"]: row for row in rows if "script" in row})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)

    def med(kind, script, field):
        vals = [run[script][field] for run in results[kind]
                if script in run and run[script].get(field) is not None]
        return statistics.median(vals) if vals else None

    def fmt(x, digits=1):
        return "" if x is None else f"{x:,.{digits}f}"

    base = "redis" if "redis" in kinds else None
    head = ["script", "redis.calls"]
    head += [f"{SERVERS[k]} µs/call" + ("" if k == base or not base else " (x Redis)") for k in kinds]
    head += [f"µs/redis.call {k}" for k in kinds]
    head += ["all threads µs/call, " + " / ".join(kinds)]
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for s in SCRIPTS:
        cells = [s, fmt(med(kinds[0], s, "redis_calls_per_call"), 1)]
        b = med(base, s, "main_us_per_call") if base else None
        for k in kinds:
            v = med(k, s, "main_us_per_call")
            cells.append(fmt(v) + (f" ({v / b:.2f}x)" if k != base and v and b else ""))
        cells += [fmt(med(k, s, "main_us_per_redis_call"), 2) for k in kinds]
        alls = []
        for k in kinds:
            srv = med(k, s, "server_us_per_call")
            dfr = med(k, s, "deferred_us_per_call")
            alls.append(fmt(srv) + (f" (+{fmt(dfr)} later)" if dfr and dfr >= 0.5 else ""))
        cells.append(" / ".join(alls))
        print("| " + " | ".join(cells) + " |")
    rounds = "worker rounds (deferred)"
    later = [f"{SERVERS[k]} {fmt(med(k, rounds, 'deferred_us_per_call'))} µs" for k in kinds]
    print(f"\nDeferred work after the Worker's rounds (moveToActive, extendLock, moveToFinished, "
          f"retryJob), per job: {', '.join(later)}.")
    print(f"Medians of {args.runs} runs, {args.n} calls per script, {args.prefill} jobs waiting "
          f"before the calls.")


if __name__ == "__main__":
    main()
