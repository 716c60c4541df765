"""redis-py against a real berth, over RESP2 and over RESP3 (protocol=3)."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import redis  # noqa: E402

from berth_server import Berth  # noqa: E402

SERVER = None


def setUpModule():
    global SERVER
    SERVER = Berth()


def tearDownModule():
    SERVER.close()


class CommandSurface:
    """Shared tests; subclasses pick the protocol."""

    PROTOCOL = 2

    def setUp(self):
        self.r = redis.Redis(port=SERVER.port, protocol=self.PROTOCOL, decode_responses=True)
        self.r.flushall()

    def tearDown(self):
        self.r.close()

    def test_hello_reports_protocol_and_version(self):
        info = self.r.info("server")
        self.assertEqual(info["redis_version"], "7.0.15")
        self.assertEqual(self.r.connection_pool.get_connection("PING").protocol, self.PROTOCOL)

    def test_strings_and_expiry(self):
        self.assertTrue(self.r.set("k", "v", ex=100))
        self.assertIsNone(self.r.set("k", "w", nx=True))
        self.assertEqual(self.r.get("k"), "v")
        self.assertTrue(90 < self.r.ttl("k") <= 100)
        self.assertEqual(self.r.incrby("n", 5), 5)
        self.assertEqual(self.r.incrbyfloat("f", 0.1), 0.1)
        self.assertEqual(self.r.mget("k", "missing", "n"), ["v", None, "5"])
        self.r.set("short", "x", px=50)
        time.sleep(0.15)
        self.assertIsNone(self.r.get("short"))
        self.assertEqual(self.r.exists("short"), 0)

    def test_lists(self):
        self.assertEqual(self.r.lpush("q", "a", "b", "c"), 3)
        self.assertEqual(self.r.lrange("q", 0, -1), ["c", "b", "a"])
        self.assertEqual(self.r.rpop("q"), "a")
        self.assertEqual(self.r.rpop("q", 5), ["b", "c"])
        self.assertIsNone(self.r.rpop("q"))
        self.r.rpush("q", "x", "y", "x")
        self.assertEqual(self.r.lpos("q", "x", rank=2), 2)
        self.assertEqual(self.r.lmove("q", "dst", "LEFT", "RIGHT"), "x")
        self.assertEqual(tuple(self.r.brpop(["empty", "dst"], timeout=1)), ("dst", "x"))
        self.assertIsNone(self.r.brpop(["empty"], timeout=0.1))

    def test_blocking_pop_is_served_by_a_push(self):
        got = []
        other = redis.Redis(port=SERVER.port, protocol=self.PROTOCOL, decode_responses=True)
        t = threading.Thread(target=lambda: got.append(tuple(other.blpop(["jobs"], timeout=5))))
        t.start()
        time.sleep(0.2)
        self.r.rpush("jobs", "job-1")
        t.join()
        other.close()
        self.assertEqual(got, [("jobs", "job-1")])

    def test_hashes(self):
        self.assertEqual(self.r.hset("h", mapping={"a": "1", "b": "2"}), 2)
        self.assertEqual(self.r.hgetall("h"), {"a": "1", "b": "2"})
        self.assertEqual(self.r.hincrby("h", "a", 10), 11)
        self.assertEqual(self.r.hincrbyfloat("h", "c", 1.5), 1.5)
        self.assertEqual(self.r.hmget("h", "a", "zz"), ["11", None])
        self.assertEqual(self.r.hgetall("missing"), {})
        self.assertEqual(sorted(self.r.hkeys("h")), ["a", "b", "c"])

    def test_sets(self):
        self.assertEqual(self.r.sadd("s", "a", "b", "c"), 3)
        self.assertEqual(self.r.smembers("s"), {"a", "b", "c"})
        self.assertEqual(self.r.sismember("s", "a"), 1)
        self.r.sadd("t", "b", "c", "d")
        self.assertEqual(self.r.sinter("s", "t"), {"b", "c"})
        self.assertEqual(set(self.r.sscan_iter("s")), {"a", "b", "c"})

    def test_sorted_sets_and_scores(self):
        self.r.zadd("z", {"a": 1.5, "b": 1795423607.5, "c": -2182.81756401062})
        self.assertEqual(self.r.zscore("z", "b"), 1795423607.5)
        # redis-py gives tuples over RESP2 and lists over RESP3.
        self.assertEqual([tuple(p) for p in self.r.zrange("z", 0, -1, withscores=True)],
                         [("c", -2182.81756401062), ("a", 1.5), ("b", 1795423607.5)])
        self.assertEqual(self.r.zrangebyscore("z", "(1.5", "+inf"), ["b"])
        self.assertEqual([tuple(p) for p in self.r.zpopmin("z", 1)], [("c", -2182.81756401062)])
        self.assertEqual(self.r.zincrby("z", 1, "a"), 2.5)
        self.assertEqual(tuple(self.r.bzpopmin(["z"], timeout=1)), ("z", "a", 2.5))
        self.assertEqual(dict(self.r.zscan_iter("z")), {"b": 1795423607.5})

    def test_pipeline_and_transaction(self):
        with self.r.pipeline(transaction=True) as p:
            p.incr("counter").incr("counter").get("counter")
            self.assertEqual(p.execute(), [1, 2, "2"])
        with self.r.pipeline(transaction=False) as p:
            for i in range(1000):
                p.rpush("many", i)
            self.assertEqual(p.execute()[-1], 1000)

    def test_watch_detects_a_concurrent_write(self):
        self.r.set("balance", 10)
        with self.r.pipeline() as p:
            p.watch("balance")
            redis.Redis(port=SERVER.port).set("balance", 99)
            p.multi()
            p.incr("balance")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertEqual(self.r.get("balance"), "99")

    def test_scan_iter_visits_every_key(self):
        for i in range(300):
            self.r.set("key:%d" % i, i)
        self.r.set("other", 1)
        self.assertEqual(len(set(self.r.scan_iter(match="key:*", count=7))), 300)
        self.assertEqual(self.r.dbsize(), 301)

    def test_pubsub(self):
        p = self.r.pubsub()
        p.subscribe("chan")
        p.psubscribe("ch*")
        deadline = time.time() + 2
        while time.time() < deadline and self.r.publish("chan", "hello") < 2:
            time.sleep(0.05)
        messages = []
        while len(messages) < 2 and time.time() < deadline + 2:
            m = p.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if m:
                messages.append((m["type"], m["data"]))
        p.close()
        self.assertIn(("message", "hello"), messages)
        self.assertIn(("pmessage", "hello"), messages)

    def test_client_commands_and_errors(self):
        self.r.client_setname("worker-1")
        self.assertEqual(self.r.client_getname(), "worker-1")
        self.assertTrue(any(c["name"] == "worker-1" for c in self.r.client_list()))
        self.r.set("str", "x")
        with self.assertRaises(redis.ResponseError) as e:
            self.r.lpush("str", "y")
        self.assertTrue(str(e.exception).startswith("WRONGTYPE"))
        with self.assertRaises(redis.ResponseError) as e:
            self.r.execute_command("NOSUCH")
        self.assertIn("unknown command", str(e.exception))

    def test_config_and_info(self):
        self.assertEqual(self.r.config_get("maxmemory-policy"), {"maxmemory-policy": "noeviction"})
        info = self.r.info()
        self.assertEqual(info["role"], "master")
        self.assertIn("connected_clients", info)


class Resp2(CommandSurface, unittest.TestCase):
    PROTOCOL = 2


class Resp3(CommandSurface, unittest.TestCase):
    PROTOCOL = 3


if __name__ == "__main__":
    unittest.main()
