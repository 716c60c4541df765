"""The RESP3 path Sidekiq 7/8 (redis-client) use, checked on the wire against a real berth.

Sidekiq 7/8 are not packaged here, so this replays their prelude and the commands of
/work/shared/reference/sidekiq-needs.md section (c) "Reply shapes Sidekiq relies on" and asserts
the exact RESP3 types (read by a tiny raw-socket parser, which keeps every sigil), then the same
through redis-py with protocol=3."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import redis  # noqa: E402

from berth_server import Berth  # noqa: E402

SERVER = None

SCRIPT_B = """local key, now = KEYS[1], ARGV[1]
local jobs = redis.call("zrange", key, "-inf", now, "byscore", "limit", 0, 1)
if jobs[1] then
  redis.call("zrem", key, jobs[1])
  return jobs[1]
end
"""


def setUpModule():
    global SERVER
    SERVER = Berth()


def tearDownModule():
    SERVER.close()


class R:
    """One RESP3 value with its type sigil kept: R('$', b'x'), R(',', b'1.5'), R('*', [...]),
    R('%', [(k, v), ...]), R('_', None), R(':', 3), R('+', b'OK'), R('-', b'ERR ...')."""

    def __init__(self, t, v):
        self.t, self.v = t, v

    def __eq__(self, other):
        return isinstance(other, R) and (self.t, self.v) == (other.t, other.v)

    def __repr__(self):
        return "R(%r, %r)" % (self.t, self.v)


def S(b):  # bulk string
    return R("$", b if isinstance(b, bytes) else str(b).encode())


def D(x):  # double
    return R(",", x if isinstance(x, bytes) else str(x).encode())


def I(n):
    return R(":", n)


def A(*items):
    return R("*", list(items))


NULL = R("_", None)
OK = R("+", b"OK")


class Raw:
    """A raw RESP3 connection: sends commands (optionally pipelined in one write), parses replies."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def close(self):
        self.sock.close()

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *cmds):
        self.sock.sendall(b"".join(self.encode(*c) for c in cmds))

    def call(self, *args):
        self.send(args)
        return self.read()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, rest = self.buf[:n], self.buf[n:]
        assert rest[:2] == b"\r\n", "bulk not followed by CRLF"
        self.buf = rest[2:]
        return data

    def read(self):
        line = self._line()
        t, rest = chr(line[0]), line[1:]
        if t in "+-,":
            return R(t, rest)
        if t in ":(":
            return R(t, int(rest))
        if t == "_":
            return NULL
        if t == "#":
            return R("#", rest == b"t")
        if t in "$=!":
            n = int(rest)
            return R(t, None) if n < 0 else R(t, self._exact(n))
        if t in "*~>":
            n = int(rest)
            return R(t, None) if n < 0 else R(t, [self.read() for _ in range(n)])
        if t == "%":
            return R("%", [(self.read(), self.read()) for _ in range(int(rest))])
        raise AssertionError("unexpected RESP3 type byte %r in %r" % (t, line))


class Resp3Shapes(unittest.TestCase):
    def setUp(self):
        r = redis.Redis(port=SERVER.port)
        r.flushall()
        r.close()
        self.c = Raw(SERVER.port)
        hello = self.c.call("HELLO", "3")
        self.assertEqual(hello.t, "%")
        fields = {k.v: v for k, v in hello.v}
        self.assertEqual(fields[b"server"], S("redis"))
        self.assertEqual(fields[b"version"], S("7.0.15"))
        self.assertEqual(fields[b"proto"], I(3))

    def tearDown(self):
        self.c.close()

    def test_prelude_pipelined_in_one_write(self):
        c = Raw(SERVER.port)
        c.send(("HELLO", "3"), ("SELECT", "3"), ("CLIENT", "SETINFO", "LIB-NAME", "redis-client(sidekiq_v8.1.7)"),
               ("CLIENT", "SETINFO", "LIB-VER", "0.30.0"), ("CLIENT", "SETNAME", "myclient"))
        replies = [c.read() for _ in range(5)]
        self.assertEqual(replies[0].t, "%")
        self.assertEqual(replies[1], OK)
        for setinfo in replies[2:4]:  # redis-client >= 0.29 ignores an error here; Redis 7.0 has none
            self.assertTrue(setinfo == OK or (setinfo.t == "-" and setinfo.v.startswith(b"ERR")), setinfo)
        self.assertEqual(replies[4], OK)
        self.assertEqual(c.call("CLIENT", "GETNAME"), S("myclient"))
        self.assertEqual(c.call("SET", "in-db3", "1"), OK)
        self.assertEqual(c.call("PING"), R("+", b"PONG"))
        c.close()
        self.assertEqual(self.c.call("EXISTS", "in-db3"), I(0))

    def test_sorted_sets(self):
        c = self.c
        self.assertEqual(c.call("ZADD", "schedule", "1795423605.0", "a", "1.5", "b", "1000", "c"), I(3))
        self.assertEqual(c.call("ZADD", "schedule", "1795423605.0", "a"), I(0))
        pairs = A(A(S("b"), D("1.5")), A(S("c"), D("1000")), A(S("a"), D("1795423605")))
        self.assertEqual(c.call("ZRANGE", "schedule", "0", "-1", "WITHSCORES"), pairs)
        self.assertEqual(c.call("ZRANGE", "schedule", "-50", "-1", "withscores"), pairs)
        self.assertEqual(c.call("ZRANGE", "schedule", "0", "24", "REV", "withscores"), A(*reversed(pairs.v)))
        self.assertEqual(c.call("ZRANGE", "schedule", "1000", "1000", "BYSCORE", "withscores"), A(pairs.v[1]))
        self.assertEqual(c.call("ZRANGE", "schedule", "1000", "1000", "BYSCORE"), A(S("c")))
        self.assertEqual(c.call("ZRANGEBYSCORE", "schedule", "-inf", "+inf", "WITHSCORES"), pairs)
        self.assertEqual(c.call("ZREVRANGE", "schedule", "0", "24", "WITHSCORES"), A(*reversed(pairs.v)))
        self.assertEqual(c.call("ZRANGE", "missing", "0", "-1", "WITHSCORES"), A())
        self.assertEqual(c.call("ZCARD", "schedule"), I(3))
        self.assertEqual(c.call("ZSCORE", "schedule", "b"), D("1.5"))
        self.assertEqual(c.call("ZSCORE", "schedule", "nope"), NULL)
        self.assertEqual(c.call("ZINCRBY", "schedule", "-0.5", "b"), D("1"))
        self.assertEqual(c.call("ZINCRBY", "schedule", "1795423606.5", "b"), D("1795423607.5"))
        self.assertEqual(c.call("ZADD", "dead", "1.0e+16", "x"), I(1))
        self.assertEqual(c.call("ZSCORE", "dead", "x"), D("10000000000000000"))
        # ZSCAN: the cursor and the scores are bulk strings even in RESP3.
        self.assertEqual(c.call("ZSCAN", "schedule", "0", "MATCH", "*c*", "COUNT", "100"),
                         A(S("0"), A(S("c"), S("1000"))))
        self.assertEqual(c.call("ZSCAN", "schedule", "0", "match", "*b*", "count", "100"),
                         A(S("0"), A(S("b"), S("1795423607.5"))))
        # ZPOPMIN with a count nests pairs; without one it is flat.
        self.assertEqual(c.call("ZPOPMIN", "schedule", "1"), A(A(S("c"), D("1000"))))
        self.assertEqual(c.call("ZPOPMIN", "schedule"), A(S("a"), D("1795423605")))
        self.assertEqual(c.call("ZPOPMIN", "missing", "1"), A())
        self.assertEqual(c.call("ZPOPMIN", "missing"), A())
        self.assertEqual(c.call("ZREMRANGEBYSCORE", "schedule", "-inf", "(1795423607.5"), I(0))
        self.assertEqual(c.call("ZREMRANGEBYSCORE", "schedule", "-inf", "1795423607.5"), I(1))
        self.assertEqual(c.call("TYPE", "dead"), R("+", b"zset"))

    def test_hashes_and_strings(self):
        c = self.c
        self.assertEqual(c.call("HSET", "proc", "busy", "0", "quiet", "false", "info", "{}"), I(3))
        got = c.call("HGETALL", "proc")
        self.assertEqual(got.t, "%")
        self.assertEqual(sorted((k.v, v.v) for k, v in got.v),
                         [(b"busy", b"0"), (b"info", b"{}"), (b"quiet", b"false")])
        self.assertTrue(all(k.t == "$" and v.t == "$" for k, v in got.v))
        self.assertEqual(c.call("HGETALL", "missing"), R("%", []))
        self.assertEqual(c.call("HMGET", "proc", "info", "rss", "busy"), A(S("{}"), NULL, S("0")))
        self.assertEqual(c.call("HGET", "proc", "nope"), NULL)
        self.assertEqual(c.call("HINCRBY", "stat", "processed", "2"), I(2))
        self.assertEqual(c.call("HSETNX", "stat", "processed", "9"), I(0))
        self.assertEqual(c.call("SET", "lock", "1", "NX", "EX", "60"), OK)
        self.assertEqual(c.call("SET", "lock", "1", "nx", "ex", "60"), NULL)
        self.assertEqual(c.call("GET", "missing"), NULL)
        self.assertEqual(c.call("MGET", "lock", "missing"), A(S("1"), NULL))
        self.assertEqual(c.call("EXISTS", "lock", "missing"), I(1))
        self.assertEqual(c.call("EXISTS", "missing"), I(0))
        self.assertEqual(c.call("EXPIRE", "proc", "60", "NX"), I(1))
        self.assertEqual(c.call("EXPIRE", "proc", "60", "nx"), I(0))
        self.assertEqual(c.call("TYPE", "proc"), R("+", b"hash"))
        self.assertEqual(c.call("TYPE", "lock"), R("+", b"string"))
        self.assertEqual(c.call("TYPE", "missing"), R("+", b"none"))
        self.assertEqual(c.call("UNLINK", "lock", "missing"), I(1))

    def test_sets_and_lists(self):
        c = self.c
        self.assertEqual(c.call("SADD", "queues", "default", "low"), I(2))
        self.assertEqual(c.call("SISMEMBER", "queues", "low"), I(1))
        self.assertEqual(c.call("SISMEMBER", "queues", "high"), I(0))
        self.assertEqual(c.call("SCARD", "queues"), I(2))
        cursor, members = c.call("SSCAN", "queues", "0").v
        self.assertEqual(cursor, S("0"))
        self.assertEqual(members.t, "*")
        self.assertEqual(sorted(m.v for m in members.v), [b"default", b"low"])
        self.assertEqual(c.call("SSCAN", "missing", "0"), A(S("0"), A()))
        self.assertEqual(c.call("SMEMBERS", "missing").t in ("*", "~"), True)
        self.assertEqual(c.call("TYPE", "queues"), R("+", b"set"))
        self.assertEqual(c.call("LPUSH", "queue:default", "j1", "j2"), I(2))
        self.assertEqual(c.call("LINDEX", "queue:default", "-1"), S("j1"))
        self.assertEqual(c.call("LINDEX", "queue:none", "-1"), NULL)
        self.assertEqual(c.call("RPOP", "queue:none"), NULL)
        self.assertEqual(c.call("LLEN", "queue:default"), I(2))
        self.assertEqual(c.call("LRANGE", "queue:default", "0", "49"), A(S("j2"), S("j1")))
        self.assertEqual(c.call("TYPE", "queue:default"), R("+", b"list"))
        self.assertEqual(c.call("BRPOP", "queue:critical", "queue:default", "2"), A(S("queue:default"), S("j1")))
        t0 = time.time()
        self.assertEqual(c.call("BRPOP", "queue:critical", "queue:low", "1"), NULL)
        self.assertGreaterEqual(time.time() - t0, 0.9)

    def test_multi_exec_pipelined_and_bitfield(self):
        c = self.c
        c.send(("MULTI",), ("SADD", "processes", "host:1:abc"), ("HSET", "host:1:abc", "beat", "1.5"),
               ("EXPIRE", "host:1:abc", "60"), ("RPOP", "host:1:abc-signals"), ("EXEC",))
        replies = [c.read() for _ in range(6)]
        self.assertEqual(replies[0], OK)
        self.assertEqual(replies[1:5], [R("+", b"QUEUED")] * 4)
        self.assertEqual(replies[5], A(I(1), I(1), I(1), NULL))
        self.assertEqual(c.call("BITFIELD", "h|Ok", "OVERFLOW", "SAT", "INCRBY", "u16", "#3", "5"), A(I(5)))
        gets = []
        for i in range(26):
            gets += ["GET", "u16", "#%d" % i]
        got = c.call("BITFIELD_RO", "h|Ok", *gets)
        self.assertEqual(got, A(*[I(5 if i == 3 else 0) for i in range(26)]))
        self.assertEqual(c.call("BITFIELD", "h|Ok", "OVERFLOW", "SAT", "INCRBY", "u16", "#3", "70000"), A(I(65535)))

    def test_scripts(self):
        c = self.c
        sha = c.call("SCRIPT", "LOAD", SCRIPT_B)
        self.assertEqual(sha, S("000a4c2f82df69db1780053377a2c9b0741570e0"))
        c.call("ZADD", "retry", "100", "due-job", "9e18", "future-job")
        self.assertEqual(c.call("EVALSHA", sha.v, "1", "retry", "1795423605.2082462"), S("due-job"))
        self.assertEqual(c.call("EVALSHA", sha.v, "1", "retry", "1795423605.2082462"), NULL)
        self.assertEqual(c.call("ZCARD", "retry"), I(1))
        err = c.call("EVALSHA", "f" * 40, "1", "retry", "1")
        self.assertEqual(err, R("-", b"NOSCRIPT No matching script. Please use EVAL."))

    def test_info_parses_like_redis_rb_and_redis_client(self):
        info = self.c.call("INFO")
        self.assertIn(info.t, ("=", "$"))
        text = info.v
        if info.t == "=":
            self.assertEqual(text[:4], b"txt:")
            text = text[4:]
        text = text.decode()
        self.assertIn("\r\n", text)
        self.assertNotIn("\n", text.replace("\r\n", ""))
        fields = {}
        for line in text.split("\r\n"):  # redis-rb HashifyInfo: every other line must have a ':'
            if line == "" or line.startswith("#"):
                continue
            self.assertIn(":", line, line)
            k, v = line.split(":", 1)
            fields[k] = v
        self.assertEqual(fields["redis_version"], "7.0.15")
        self.assertEqual(fields["maxmemory_policy"], "noeviction")
        for k in ("uptime_in_days", "connected_clients", "used_memory_human", "used_memory_peak_human"):
            self.assertIn(k, fields)
        self.assertGreaterEqual(int(fields["connected_clients"]), 1)


class RedisPyProtocol3(unittest.TestCase):
    """The same shapes as redis-py (protocol=3) hands them to code, types unconverted."""

    def setUp(self):
        self.r = redis.Redis(port=SERVER.port, protocol=3)
        self.r.flushall()

    def tearDown(self):
        self.r.close()

    def test_shapes(self):
        r = self.r
        self.assertEqual(r.connection_pool.get_connection("PING").protocol, 3)
        self.assertEqual(r.execute_command("ZADD", "s", "1.5", "m", "2", "n"), 2)
        raw = r.execute_command("ZRANGE", "s", "0", "-1", "WITHSCORES", **{redis.client.NEVER_DECODE: True})
        self.assertEqual(raw, [[b"m", 1.5], [b"n", 2.0]])
        self.assertIsInstance(raw[0][1], float)
        r.hset("h", mapping={"a": "1", "b": "2"})
        raw = r.execute_command("HGETALL", "h", **{redis.client.NEVER_DECODE: True})
        self.assertEqual(raw, {b"a": b"1", b"b": b"2"})
        r.sadd("q", "x")
        for cmd in (("SISMEMBER", "q", "x"), ("EXISTS", "q"), ("SCARD", "q")):  # EXPIRE: redis-py makes it a bool
            v = r.execute_command(*cmd, **{redis.client.NEVER_DECODE: True})
            self.assertIs(type(v), int, cmd)
            self.assertEqual(v, 1, cmd)
        cursor, members = r.execute_command("SSCAN", "q", "0", **{redis.client.NEVER_DECODE: True})
        self.assertEqual((cursor, members), (0, [b"x"]))  # redis-py parses the cursor; Raw checks it is "$1 0"
        cursor, items = r.execute_command("ZSCAN", "s", "0", **{redis.client.NEVER_DECODE: True})
        self.assertEqual((cursor, items), (0, [(b"m", 1.5), (b"n", 2.0)]))
        self.assertIsNone(r.get("missing"))
        self.assertEqual(r.hmget("h", "a", "zz"), [b"1", None])
        self.assertIsNone(r.brpop(["nothing-here"], timeout=1))
        with self.assertRaises(redis.exceptions.NoScriptError):
            r.evalsha("0" * 40, 0)
        sha = r.script_load(SCRIPT_B)
        r.zadd("schedule", {"j": 5})
        self.assertEqual(r.evalsha(sha, 1, "schedule", "10"), b"j")
        self.assertIsNone(r.evalsha(sha, 1, "schedule", "10"))
        info = r.info()
        self.assertEqual(info["redis_version"], "7.0.15")
        self.assertEqual(info["maxmemory_policy"], "noeviction")


if __name__ == "__main__":
    unittest.main()
