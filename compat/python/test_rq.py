"""RQ against a real berth: enqueue, a real `rq worker` process, failed registry, scheduled jobs."""

import os
import subprocess
import sys
import time
import unittest
from datetime import timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq.job import Job  # noqa: E402
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry  # noqa: E402

import jobs  # noqa: E402
from berth_server import Berth  # noqa: E402


class RQ(unittest.TestCase):
    def setUp(self):
        self.server = Berth()
        self.r = redis.Redis(port=self.server.port)

    def tearDown(self):
        self.r.close()
        self.server.close()

    def work(self):
        env = dict(os.environ, PYTHONPATH=HERE)
        subprocess.run([sys.executable, "-m", "rq.cli", "worker", "--burst", "--with-scheduler",
                        "--url", self.server.url, "default"],
                       env=env, cwd=HERE, check=True, capture_output=True, timeout=120)

    def test_jobs_run_fail_and_get_scheduled(self):
        q = Queue("default", connection=self.r)
        ok = q.enqueue(jobs.add, 2, 3)
        bad = q.enqueue(jobs.fail)
        later = q.enqueue_in(timedelta(seconds=1), jobs.add, 10, 20)
        self.assertEqual(q.count, 2)
        self.assertIn(later.id, ScheduledJobRegistry(queue=q).get_job_ids())
        time.sleep(1.2)
        self.work()
        self.assertEqual(Job.fetch(ok.id, connection=self.r).return_value(), 5)
        self.assertEqual(Job.fetch(later.id, connection=self.r).return_value(), 30)
        self.assertIn(bad.id, FailedJobRegistry(queue=q).get_job_ids())
        self.assertEqual(Job.fetch(bad.id, connection=self.r).get_status(), "failed")
        self.assertEqual(sorted(FinishedJobRegistry(queue=q).get_job_ids()), sorted([ok.id, later.id]))
        self.assertEqual(q.count, 0)

    def test_queued_jobs_survive_a_kill_9(self):
        q = Queue("default", connection=self.r)
        ids = [q.enqueue(jobs.add, i, i).id for i in range(20)]
        self.r.close()
        self.server.kill9()
        self.server.start()
        self.r = redis.Redis(port=self.server.port)
        q = Queue("default", connection=self.r)
        self.assertEqual(sorted(q.job_ids), sorted(ids))
        self.work()
        self.assertEqual([Job.fetch(i, connection=self.r).return_value() for i in ids],
                         [2 * i for i in range(20)])


if __name__ == "__main__":
    unittest.main()
