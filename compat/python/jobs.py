"""Job functions for the RQ and Celery suites (imported by the worker processes)."""

import os

from celery import Celery

BROKER = os.environ.get("COMPAT_REDIS_URL", "redis://127.0.0.1:6379/0")


def add(a, b):
    return a + b


def fail():
    raise ValueError("this job always fails")


app = Celery("jobs", broker=BROKER, backend=BROKER)
app.conf.update(broker_connection_retry_on_startup=True, task_acks_late=True,
                worker_prefetch_multiplier=1, result_expires=3600)


@app.task
def celery_add(a, b):
    return a + b


@app.task(bind=True, max_retries=3, default_retry_delay=0.2)
def celery_flaky(self, key):
    """Fails on the first attempt, succeeds on the retry; counts attempts in Redis."""
    import redis
    attempts = redis.Redis.from_url(BROKER).incr(key)
    if attempts < 2:
        raise self.retry(exc=RuntimeError("first attempt fails"))
    return attempts
