#!/usr/bin/env python3
"""Copies every key of a Redis server into Berth (or any Redis-compatible server).

Berth has no DUMP/RESTORE (it does not read RDB payloads), so this walks the source with SCAN
and copies each key with typed reads and writes, keeping:
  - strings, lists (order), hashes (field order, which Berth keeps as Redis's small hashes do),
    sets, sorted sets (scores exactly as the source prints them), in every database;
  - streams: entries with their ids, last-generated-id, entries-added and max-deleted-entry-id
    (XSETID), consumer groups with last-delivered-id and entries-read, their consumers, and
    every pending entry with its consumer, delivery count and idle time (XCLAIM ... FORCE);
  - TTLs, as absolute deadlines (PEXPIRETIME -> PEXPIREAT), so a key expires when it would have.
Each key is written in one MULTI/EXEC on the target, so a key is either copied whole or absent.

Stop the producers and workers first (Sidekiq: quiet, then stop; BullMQ: close workers and
queues): keys changed during the copy may be copied in either state.

Limits: a pending entry whose stream entry was deleted cannot be recreated (XCLAIM needs the
entry) and is reported; consumers' seen-time restarts at the copy.

Usage:
  tools/migrate.py --source redis://old-redis:6379 --target redis://:password@berth:6379
    [--db N ...] [--replace] [--verify]
Needs redis-py (pip install redis; compat/python/.venv has it).
"""

import argparse
import sys

import redis

CHUNK = 1000


def connect(url, db):
    """A client that returns every reply raw (no redis-py reply parsing): the copy sees exactly
    the bytes and numbers the server sent."""
    r = redis.Redis.from_url(url, decode_responses=False, protocol=2)
    # The database given here wins over one in the URL's path.
    r.connection_pool.connection_kwargs["db"] = db
    r.response_callbacks.clear()
    return r


def cmd(conn, *args):
    return conn.execute_command(*args)


def source_dbs(src):
    info = cmd(src, "INFO", "keyspace").decode()
    return sorted(int(line.split(":")[0][2:]) for line in info.splitlines() if line.startswith("db"))


def pairs(flat):
    return list(zip(flat[0::2], flat[1::2]))


def as_dict(flat):
    return {k: v for k, v in pairs(flat)}


def scan(conn, *args):
    """Every element of a SCAN-family iteration (SCAN, or HSCAN/SSCAN with a key)."""
    cursor = b"0"
    while True:
        cursor, items = cmd(conn, *args[:2], cursor, "COUNT", CHUNK) if args[0] != "SCAN" else \
            cmd(conn, "SCAN", cursor, "COUNT", CHUNK)
        yield from items
        if cursor == b"0":
            return


def copy_key(src, dst, key, replace, problems):
    kind = cmd(src, "TYPE", key)
    if kind == b"none":
        return False  # gone since SCAN returned it
    deadline = cmd(src, "PEXPIRETIME", key)
    p = dst.pipeline(transaction=True)
    if replace:
        p.execute_command("DEL", key)
    if kind == b"string":
        value = cmd(src, "GET", key)
        if value is None:
            return False
        p.execute_command("SET", key, value)
    elif kind == b"list":
        start = 0
        while True:
            chunk = cmd(src, "LRANGE", key, start, start + CHUNK - 1)
            if not chunk:
                break
            p.execute_command("RPUSH", key, *chunk)
            start += len(chunk)
    elif kind == b"hash":
        # HGETALL gives the fields in the hash's own order (a small hash's insertion order),
        # which HSET then keeps in Berth.
        flat = cmd(src, "HGETALL", key)
        for i in range(0, len(flat), 2 * CHUNK):
            p.execute_command("HSET", key, *flat[i:i + 2 * CHUNK])
    elif kind == b"set":
        members = list(scan(src, "SSCAN", key))
        for i in range(0, len(members), CHUNK):
            p.execute_command("SADD", key, *members[i:i + CHUNK])
    elif kind == b"zset":
        start = 0
        while True:
            flat = cmd(src, "ZRANGE", key, start, start + CHUNK - 1, "WITHSCORES")
            if not flat:
                break
            args = []
            for member, score in pairs(flat):
                args += [score, member]
            p.execute_command("ZADD", key, *args)
            start += len(flat) // 2
    elif kind == b"stream":
        copy_stream(src, p, key, problems)
    else:
        problems.append("%r: type %s is not copied" % (key, kind.decode()))
        return False
    if deadline >= 0:
        p.execute_command("PEXPIREAT", key, deadline)
    p.execute()
    return True


def stream_info(conn, key):
    return as_dict(cmd(conn, "XINFO", "STREAM", key, "FULL", "COUNT", "0"))


def copy_stream(src, p, key, problems):
    info = stream_info(src, key)
    start, count = b"-", 0
    while True:
        entries = cmd(src, "XRANGE", key, start, "+", "COUNT", CHUNK)
        if not entries:
            break
        for entry_id, fields in entries:
            p.execute_command("XADD", key, entry_id, *fields)
            count += 1
        start = b"(" + entries[-1][0]
    if count == 0:
        # An empty stream (all entries deleted, or made by XGROUP CREATE MKSTREAM).
        p.execute_command("XGROUP", "CREATE", key, "berth-migrate-tmp", "$", "MKSTREAM")
        p.execute_command("XGROUP", "DESTROY", key, "berth-migrate-tmp")
    p.execute_command("XSETID", key, info[b"last-generated-id"], "ENTRIESADDED", info[b"entries-added"],
                      "MAXDELETEDID", info[b"max-deleted-entry-id"])
    for g in cmd(src, "XINFO", "GROUPS", key):
        g = as_dict(g)
        name = g[b"name"]
        create = ["XGROUP", "CREATE", key, name, g[b"last-delivered-id"]]
        if g.get(b"entries-read") is not None:
            create += ["ENTRIESREAD", g[b"entries-read"]]
        p.execute_command(*create)
        for c in cmd(src, "XINFO", "CONSUMERS", key, name):
            consumer = as_dict(c)[b"name"]
            p.execute_command("XGROUP", "CREATECONSUMER", key, name, consumer)
            start = b"-"
            while True:
                pending = cmd(src, "XPENDING", key, name, start, "+", CHUNK, consumer)
                for entry_id, _, idle, deliveries in pending:
                    if not cmd(src, "XRANGE", key, entry_id, entry_id):
                        problems.append("%r group %r: pending entry %s was deleted from the stream; not copied"
                                        % (key, name, entry_id.decode()))
                        continue
                    p.execute_command("XCLAIM", key, name, consumer, 0, entry_id, "IDLE", idle,
                                      "RETRYCOUNT", deliveries, "FORCE", "JUSTID")
                if len(pending) < CHUNK:
                    break
                start = b"(" + pending[-1][0]


def typed_value(conn, key, hash_order=True):
    """A comparable picture of a key: its type and contents (stream: entries, ids, groups).
    hash_order=False compares a hash's fields as a sorted list."""
    kind = cmd(conn, "TYPE", key).decode()
    if kind == "string":
        return kind, cmd(conn, "GET", key)
    if kind == "list":
        return kind, cmd(conn, "LRANGE", key, 0, -1)
    if kind == "hash":
        fields = pairs(cmd(conn, "HGETALL", key))
        return kind, fields if hash_order else sorted(fields)
    if kind == "set":
        return kind, sorted(cmd(conn, "SMEMBERS", key))
    if kind == "zset":
        return kind, pairs(cmd(conn, "ZRANGE", key, 0, -1, "WITHSCORES"))
    if kind == "stream":
        info = stream_info(conn, key)
        groups = []
        for g in cmd(conn, "XINFO", "GROUPS", key):
            g = as_dict(g)
            consumers = sorted((as_dict(c)[b"name"], as_dict(c)[b"pending"])
                               for c in cmd(conn, "XINFO", "CONSUMERS", key, g[b"name"]))
            pending = [(e[0], e[1], e[3]) for e in cmd(conn, "XPENDING", key, g[b"name"], "-", "+", 1 << 30)]
            groups.append((g[b"name"], g[b"last-delivered-id"], g.get(b"entries-read"), g.get(b"lag"),
                           consumers, pending))
        head = {k: info[k] for k in (b"length", b"last-generated-id", b"max-deleted-entry-id",
                                     b"entries-added", b"recorded-first-entry-id")}
        return kind, (head, cmd(conn, "XRANGE", key, "-", "+"), sorted(groups))
    return kind, None


def verify(src_url, dst_url, dbs, tolerance_ms=2000):
    """Compares every key of the source with the target; returns a list of differences."""
    diffs = []
    for db in dbs:
        src, dst = connect(src_url, db), connect(dst_url, db)
        src_keys, dst_keys = set(scan(src, "SCAN")), set(scan(dst, "SCAN"))
        for k in sorted(src_keys - dst_keys):
            diffs.append("db%d %r: missing in the target" % (db, k))
        for k in sorted(dst_keys - src_keys):
            diffs.append("db%d %r: only in the target" % (db, k))
        for k in sorted(src_keys & dst_keys):
            # A small (listpack) hash lists its fields in insertion order, in Redis and Berth
            # alike; a bigger one in hash order, which differs between servers.
            ordered = cmd(src, "TYPE", k) != b"hash" or cmd(src, "OBJECT", "ENCODING", k) == b"listpack"
            a, b = typed_value(src, k, ordered), typed_value(dst, k, ordered)
            if a != b:
                diffs.append("db%d %r: differs\n  source %r\n  target %r" % (db, k, a, b))
            ta, tb = cmd(src, "PEXPIRETIME", k), cmd(dst, "PEXPIRETIME", k)
            if (ta < 0) != (tb < 0) or abs(ta - tb) > tolerance_ms:
                diffs.append("db%d %r: expiry %d vs %d" % (db, k, ta, tb))
    return diffs


def migrate(src_url, dst_url, dbs=None, replace=False, log=print):
    """Copies the databases; returns (keys copied, problems)."""
    dbs = dbs if dbs is not None else source_dbs(connect(src_url, 0))
    copied, problems = 0, []
    for db in dbs:
        src, dst = connect(src_url, db), connect(dst_url, db)
        if not replace and cmd(dst, "DBSIZE") > 0:
            raise SystemExit("target db%d is not empty (use --replace to overwrite keys)" % db)
        n = 0
        for key in list(scan(src, "SCAN")):
            if copy_key(src, dst, key, replace, problems):
                n += 1
        log("db%d: copied %d keys" % (db, n))
        copied += n
    return copied, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="redis://[:password@]host:port of the Redis to copy")
    ap.add_argument("--target", required=True, help="redis://[:password@]host:port of Berth")
    ap.add_argument("--db", type=int, action="append", help="database to copy (repeatable; default: all)")
    ap.add_argument("--replace", action="store_true", help="overwrite keys that exist in the target")
    ap.add_argument("--verify", action="store_true", help="compare every key afterwards")
    a = ap.parse_args()
    dbs = a.db if a.db else source_dbs(connect(a.source, 0))
    copied, problems = migrate(a.source, a.target, dbs, a.replace)
    for p in problems:
        print("warning: " + p, file=sys.stderr)
    print("copied %d keys" % copied)
    if a.verify:
        diffs = verify(a.source, a.target, dbs)
        for d in diffs:
            print(d, file=sys.stderr)
        print("verify: %s" % ("%d differences" % len(diffs) if diffs else "every key matches"))
        if diffs:
            sys.exit(1)


if __name__ == "__main__":
    main()
