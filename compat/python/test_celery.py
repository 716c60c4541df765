"""Celery with berth as broker and result backend, with a real worker process."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from berth_server import Berth  # noqa: E402

SERVER = Berth()
os.environ["COMPAT_REDIS_URL"] = SERVER.url
import jobs  # noqa: E402


class CeleryBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env = dict(os.environ, PYTHONPATH=HERE, COMPAT_REDIS_URL=SERVER.url)
        cls.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "jobs", "worker", "--pool=solo", "-c", "1",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
            env=env, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.worker.terminate()
        cls.worker.wait(timeout=30)
        import gc
        gc.collect()  # drop AsyncResults while the server is still up
        SERVER.close()

    def test_task_result(self):
        self.assertEqual(jobs.celery_add.delay(2, 3).get(timeout=60), 5)

    def test_many_tasks(self):
        results = [jobs.celery_add.delay(i, 1) for i in range(20)]
        self.assertEqual([r.get(timeout=60) for r in results], [i + 1 for i in range(20)])

    def test_retry_then_success(self):
        self.assertEqual(jobs.celery_flaky.delay("celery-attempts").get(timeout=60), 2)

    def test_countdown(self):
        self.assertEqual(jobs.celery_add.apply_async((40, 2), countdown=1).get(timeout=60), 42)


if __name__ == "__main__":
    unittest.main()
