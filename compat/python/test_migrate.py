"""tools/migrate.py: a real redis-server 7.0 with Sidekiq- and BullMQ-shaped keyspaces (and real
Sidekiq and BullMQ clients' keys when those libraries are installed) copied into a real berth,
compared key by key, then used by the clients on Berth."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import redis

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
from berth_server import Berth, free_port  # noqa: E402
import migrate  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NODE_MODULES = os.path.join(ROOT, "compat", "bullmq", "node_modules")


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="berth-migrate-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--dir", self.dir, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def sidekiq_like(r, now):
    """The keys Sidekiq 6/7 keeps (queues, scheduled/retry/dead sets, stats, processes)."""
    job = '{"class":"HardJob","args":[1,"x"],"retry":true,"queue":"%s","jid":"%024x","created_at":%f}'
    r.sadd("queues", "default", "mailers", "critical")
    r.rpush("queue:default", *[job % ("default", i, now) for i in range(300)])
    r.rpush("queue:mailers", *[job % ("mailers", i, now) for i in range(5)])
    r.zadd("schedule", {job % ("default", 1000 + i, now): now + 60 + i / 7 for i in range(50)})
    r.zadd("retry", {job % ("default", 2000 + i, now): now + 30.123456789 for i in range(20)})
    r.zadd("dead", {job % ("default", 3000 + i, now): now - 86400 * i for i in range(10)})
    r.set("stat:processed", 123456)
    r.set("stat:failed", 42)
    r.set("stat:processed:2026-12-01", 77, ex=5 * 365 * 86400)
    r.sadd("processes", "host-1:12:abcdef")
    r.hset("host-1:12:abcdef", mapping={"info": '{"hostname":"host-1","concurrency":10}', "busy": 2,
                                        "beat": str(now), "quiet": "false", "rtt_us": 120})
    r.expire("host-1:12:abcdef", 60)
    r.hset("host-1:12:abcdef:work", mapping={"tid-1": '{"queue":"default","payload":"{}"}'})
    r.expire("host-1:12:abcdef:work", 60)
    r.hset("cron_job:nightly", mapping={"name": "nightly", "cron": "0 3 * * *", "klass": "NightlyJob",
                                        "status": "enabled"})
    r.zadd("cron_jobs", {"cron_job:nightly": 0})
    r.set("unique:lock:abc", "jid-1", px=90_000)


def bullmq_like(r, now):
    """The keys BullMQ 5/6 keeps for a queue (bull:<queue>:*), including its events stream."""
    q = "bull:emails:"
    r.set(q + "id", 40)
    r.hset(q + "meta", mapping={"opts.maxLenEvents": 10000, "version": "bullmq:6.7.0"})
    for i in range(1, 41):
        r.hset(q + str(i), mapping={"name": "send", "data": '{"to":"u%d@example.com"}' % i,
                                    "opts": '{"attempts":3,"backoff":{"type":"exponential","delay":1000}}',
                                    "timestamp": now * 1000 + i, "delay": 0, "priority": 0,
                                    "atm": 0 if i < 30 else 1})
    r.rpush(q + "wait", *[str(i) for i in range(40, 20, -1)])
    r.rpush(q + "active", "19", "18")
    r.set(q + "18:lock", "token-18", px=30_000)
    r.zadd(q + "completed", {str(i): now * 1000 + i for i in range(1, 11)})
    r.zadd(q + "failed", {str(i): now * 1000 + i for i in range(11, 14)})
    r.hset("bull:emails:11", "failedReason", "boom")
    r.zadd(q + "delayed", {str(i): (now * 1000 + 60_000) * 0x1000 + i for i in range(14, 18)})
    r.zadd(q + "prioritized", {"16": 2 * 0x100000000 + 1})
    r.set(q + "pc", 1)
    r.set(q + "stalled-check", now * 1000, px=30_000)
    r.sadd(q + "stalled", "19")
    for i in range(200):
        r.xadd(q + "events", {"event": "added", "jobId": str(i % 40 + 1), "name": "send"},
               maxlen=100, approximate=False)
    r.xadd(q + "events", {"event": "completed", "jobId": "1", "returnvalue": "null"}, id="*")


def streams_and_edges(r, now):
    """What a plain keyspace copy tends to get wrong: consumer groups with pending entries and
    lag, deleted entries, empty streams, binary data, big collections, other databases."""
    r.xadd("s", {"a": "1"}, id="1-1")
    for i in range(2, 12):
        r.xadd("s", {"n": str(i), "payload": os.urandom(8)}, id="%d-0" % i)
    r.xdel("s", "3-0", "4-0")
    r.xgroup_create("s", "workers", id="0")
    r.xreadgroup("workers", "alice", {"s": ">"}, count=3)
    r.xreadgroup("workers", "bob", {"s": ">"}, count=2)
    r.xack("s", "workers", "1-1")
    r.xgroup_createconsumer("s", "workers", "carol")
    r.xgroup_create("s", "late", id="5-0")
    r.xgroup_create("empty", "g", id="$", mkstream=True)
    r.xadd("trimmed", {"x": "1"}, id="7-7")
    r.xdel("trimmed", "7-7")
    r.set(b"bin\x00key\xff", b"\x00\x01\xfe\xff" * 10)
    r.rpush("big:list", *[str(i) for i in range(5000)])
    r.hset("big:hash", mapping={"f%d" % i: "v%d" % i for i in range(300)})
    r.sadd("ints", *range(100))
    r.sadd("big:set", *["m%d" % i for i in range(2000)])
    r.zadd("scores", {"inf": float("inf"), "ninf": float("-inf"), "pi": 3.141592653589793, "tiny": 5e-324,
                      "a": 1, "b": 1})
    r.set("soon", "x", px=1500)
    r.set("later", "y", exat=int(now) + 3600)
    db3 = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=3)
    db3.set("in:db3", "three")
    db3.hset("h3", "f", "v")
    db3.expire("h3", 1000)


class MigrateTest(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer()
        self.berth = Berth()
        self.src = redis.Redis.from_url(self.redis.url)
        self.dst = redis.Redis.from_url(self.berth.url)

    def tearDown(self):
        self.redis.close()
        self.berth.close()

    def test_copies_every_type_and_compares_key_by_key(self):
        now = time.time()
        sidekiq_like(self.src, now)
        bullmq_like(self.src, now)
        streams_and_edges(self.src, now)
        total = sum(migrate.cmd(migrate.connect(self.redis.url, db), "DBSIZE") for db in (0, 3))
        copied, problems = migrate.migrate(self.redis.url, self.berth.url, log=lambda *_: None)
        self.assertEqual(copied, total)
        self.assertEqual(problems, [])
        self.assertEqual(migrate.verify(self.redis.url, self.berth.url, [0, 3]), [])
        self.assertEqual(self.dst.dbsize(), self.src.dbsize())

        # Independent checks of what clients do next on each server.
        groups = [r.xinfo_groups("s") for r in (self.src, self.dst)]
        self.assertEqual(groups[0], groups[1])
        self.assertEqual(sorted(g["name"] for g in groups[1]), [b"late", b"workers"])
        nxt = [r.xreadgroup("workers", "dave", {"s": ">"}) for r in (self.src, self.dst)]
        self.assertEqual(nxt[0], nxt[1])
        late = [r.xreadgroup("late", "x", {"s": ">"}, count=2) for r in (self.src, self.dst)]
        self.assertEqual(late[0], late[1])
        claimed = [r.xautoclaim("s", "workers", "erin", 0, "0-0", justid=True) for r in (self.src, self.dst)]
        self.assertEqual(claimed[0], claimed[1])
        pend = [[(p["message_id"], p["consumer"], p["times_delivered"])
                 for p in r.xpending_range("s", "workers", "-", "+", 100)] for r in (self.src, self.dst)]
        self.assertEqual(pend[0], pend[1])
        with self.assertRaises(redis.ResponseError):
            self.dst.xadd("trimmed", {"y": 1}, id="7-7")  # the last id survived an empty stream
        self.assertEqual(self.dst.xadd("trimmed", {"y": 1}, id="7-8"), b"7-8")
        self.assertAlmostEqual(self.dst.pttl("later") / 1000, self.src.pttl("later") / 1000, delta=2)
        self.assertEqual(self.dst.zscore("scores", "tiny"), 5e-324)
        self.assertEqual(self.dst.lpop("queue:default"), self.src.lpop("queue:default"))
        time.sleep(1.6)
        self.assertIsNone(self.dst.get("soon"))

    def test_refuses_a_non_empty_target_unless_replace(self):
        self.src.set("k", "new")
        self.src.rpush("l", "a", "b")
        self.dst.set("k", "old")
        self.dst.rpush("l", "stale")
        with self.assertRaises(SystemExit):
            migrate.migrate(self.redis.url, self.berth.url, log=lambda *_: None)
        self.assertEqual(self.dst.get("k"), b"old")
        migrate.migrate(self.redis.url, self.berth.url, replace=True, log=lambda *_: None)
        self.assertEqual(self.dst.get("k"), b"new")
        self.assertEqual(self.dst.lrange("l", 0, -1), [b"a", b"b"])

    def test_command_line_with_password_and_verify(self):
        self.src.hset("h", mapping={"a": 1, "b": 2})
        self.dst.config_set("requirepass", "pw")
        target = "redis://:pw@127.0.0.1:%d" % self.berth.port
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "migrate.py"), "--source",
                              self.redis.url, "--target", target, "--verify"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("copied 1 keys", out.stdout)
        self.assertIn("verify: every key matches", out.stdout)

    def test_berth_to_berth_changes_engine(self):
        """The path for an upgrade that changes the store format, or a switch of storage
        engine: copy from the old Berth into a new one."""
        sled = Berth("--storage-engine", "sled")
        try:
            now = time.time()
            sidekiq_like(self.dst, now)
            streams_and_edges(self.dst, now)
            copied, problems = migrate.migrate(self.berth.url, sled.url, log=lambda *_: None)
            self.assertEqual(problems, [])
            self.assertGreater(copied, 20)
            self.assertEqual(migrate.verify(self.berth.url, sled.url, [0, 3]), [])
            sled.restart()
            self.assertEqual(migrate.verify(self.berth.url, sled.url, [0, 3]), [])
        finally:
            sled.close()

    @unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(NODE_MODULES, "bullmq")),
                         "BullMQ is not installed (compat/run.sh bullmq installs it)")
    def test_real_bullmq_queue_moves_and_finishes_on_berth(self):
        script = os.path.join(HERE, "migrate_bullmq.js")
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        first = subprocess.run(["node", script, "produce", self.redis.url], env=env, capture_output=True,
                               text=True, timeout=120)
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        copied, problems = migrate.migrate(self.redis.url, self.berth.url, log=lambda *_: None)
        self.assertEqual(problems, [])
        self.assertEqual(migrate.verify(self.redis.url, self.berth.url, [0]), [])
        second = subprocess.run(["node", script, "finish", self.berth.url], env=env, capture_output=True,
                                text=True, timeout=120)
        self.assertEqual(second.returncode, 0, second.stdout + second.stderr)
        self.assertIn("finished: completed=20 failed=1 waiting=0 delayed=0", second.stdout)

    @unittest.skipUnless(shutil.which("sidekiq") and shutil.which("ruby"), "Sidekiq is not installed")
    def test_real_sidekiq_jobs_move_and_run_on_berth(self):
        script = os.path.join(HERE, "migrate_sidekiq.rb")
        first = subprocess.run(["ruby", script, "produce"], env=dict(os.environ, REDIS_URL=self.redis.url),
                               capture_output=True, text=True, timeout=120)
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        copied, problems = migrate.migrate(self.redis.url, self.berth.url, log=lambda *_: None)
        self.assertEqual(problems, [])
        self.assertEqual(migrate.verify(self.redis.url, self.berth.url, [0]), [])
        env = dict(os.environ, REDIS_URL=self.berth.url)
        worker = subprocess.Popen(["sidekiq", "-r", script, "-c", "2"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and self.dst.scard("migrated:done") < 12:
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        # 10 enqueued jobs plus 2 scheduled ones (due a few seconds after the copy) ran on Berth.
        self.assertEqual(self.dst.scard("migrated:done"), 12)
        self.assertEqual(self.dst.zcard("schedule"), 1, "the job scheduled an hour ahead is still waiting")


if __name__ == "__main__":
    unittest.main()
