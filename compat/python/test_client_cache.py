"""redis-py's client-side caching (RESP3, CLIENT TRACKING) against a real berth: a read is
cached, served locally, and dropped when another client changes the key or flushes."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import redis  # noqa: E402
from redis.cache import CacheConfig  # noqa: E402
from redis.connection import CacheProxyConnection  # noqa: E402

from berth_server import Berth  # noqa: E402

# redis-py enables its cache only for servers that say 7.4 or later ("to maximize
# compatibility with all Redis products"); Berth, like Redis 7.0, reports 7.0.15 and has
# the tracking it uses (CLIENT TRACKING ON, RESP3 invalidate pushes).
CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"

SERVER = None


def setUpModule():
    global SERVER
    SERVER = Berth()


def tearDownModule():
    SERVER.close()


class ClientSideCaching(unittest.TestCase):
    def setUp(self):
        self.cached = redis.Redis(
            port=SERVER.port, protocol=3, cache_config=CacheConfig(), decode_responses=True
        )
        self.other = redis.Redis(port=SERVER.port, decode_responses=True)
        self.other.flushall()
        self.cached.get_cache().flush()

    def tearDown(self):
        self.cached.close()
        self.other.close()

    def gets(self):
        return self.other.info("commandstats").get("cmdstat_get", {}).get("calls", 0)

    def eventually(self, key, want):
        """Reads through the cache until the invalidation push has arrived."""
        deadline = time.time() + 2
        while time.time() < deadline:
            got = self.cached.get(key)
            if got == want:
                return got
            time.sleep(0.01)
        return self.cached.get(key)

    def test_tracking_is_on(self):
        self.cached.ping()
        conn = self.cached.connection_pool.get_connection("PING")
        try:
            conn.send_command("CLIENT", "TRACKINGINFO")
            info = conn.read_response()
        finally:
            self.cached.connection_pool.release(conn)
        self.assertIn("on", info["flags"])
        self.assertEqual(self.other.info("clients")["tracking_clients"], 1)

    def test_read_cached_then_invalidated_by_another_client(self):
        self.other.set("k", "v1")
        self.assertEqual(self.cached.get("k"), "v1")
        self.assertEqual(self.cached.get_cache().size, 1)
        before = self.gets()
        # Served from the local cache: the server sees no GET.
        self.assertEqual(self.cached.get("k"), "v1")
        self.assertEqual(self.gets(), before)
        self.assertEqual(self.other.info("stats")["tracking_total_keys"], 1)
        self.other.set("k", "v2")
        self.assertEqual(self.eventually("k", "v2"), "v2")
        self.assertEqual(self.gets(), before + 1)

    def test_own_write_and_other_keys(self):
        self.other.mset({"a": "1", "b": "2"})
        self.assertEqual(self.cached.get("a"), "1")
        self.assertEqual(self.cached.get("b"), "2")
        self.cached.set("a", "10")
        self.assertEqual(self.eventually("a", "10"), "10")
        before = self.gets()
        self.assertEqual(self.cached.get("b"), "2")
        self.assertEqual(self.gets(), before)

    def test_expiry_and_delete_invalidate(self):
        self.other.set("e", "v", px=100)
        self.other.set("d", "v")
        self.assertEqual(self.cached.get("e"), "v")
        self.assertEqual(self.cached.get("d"), "v")
        self.other.delete("d")
        self.assertIsNone(self.eventually("d", None))
        time.sleep(0.3)
        self.assertIsNone(self.eventually("e", None))

    def test_flush_empties_the_cache(self):
        self.other.set("f", "v")
        self.assertEqual(self.cached.get("f"), "v")
        self.other.flushdb()
        self.other.set("f", "w")
        self.assertEqual(self.eventually("f", "w"), "w")


if __name__ == "__main__":
    unittest.main()
