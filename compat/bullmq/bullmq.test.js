// BullMQ 6.7.0 with ioredis 6 (RESP3 via HELLO 3) against a real berth.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { fork } = require('node:child_process');
const { Queue, Worker, QueueEvents, FlowProducer, Job, MetricsTime } = require('bullmq');
const IORedis = require('ioredis');
const { Server, sleep, waitFor } = require('./server');

let server;
let n = 0;
const open = [];
const track = (x) => { open.push(x); return x; };
const qname = () => `q${++n}-${process.pid}`;

test.before(async () => { server = await Server.start(); });
test.after(async () => {
  for (const x of open.reverse()) await x.close().catch(() => {});
  await server.close();
});

function queue(name, opts = {}) { return track(new Queue(name, { connection: server.connection, ...opts })); }
function worker(name, fn, opts = {}) {
  return track(new Worker(name, fn, { connection: server.connection, ...opts }));
}

test('add, process and return values; job counts', async () => {
  const name = qname();
  const q = queue(name);
  const jobs = await q.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'add', data: { a: i, b: 1 } })));
  assert.equal(jobs.length, 20);
  assert.deepEqual(await q.getJobCounts('wait', 'active', 'completed'), { wait: 20, active: 0, completed: 0 });
  worker(name, async (job) => job.data.a + job.data.b, { concurrency: 5 });
  await waitFor('20 completed', async () => (await q.getCompletedCount()) === 20);
  const done = await q.getCompleted(0, -1);
  assert.deepEqual(done.map((j) => j.returnvalue).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
  const job = await Job.fromId(q, jobs[3].id);
  assert.equal(job.returnvalue, 4);
  assert.equal(await job.getState(), 'completed');
});

// From BullMQ's own suite: the listener is attached only after queue.add resolves, so the
// producer's reply must reach the process before the worker's moveToActive reply. Under group
// commit both turns become durable together; replies must still leave in turn order.
test('the active event is seen after queue.add resolves (replies in turn order)', async () => {
  for (let round = 0; round < 10; round++) {
    const name = qname();
    const q = queue(name);
    await q.waitUntilReady();
    // Not awaited: the worker's first moveToActive races the add, as in BullMQ's test.
    const w = worker(name, async () => {});
    await q.add('test', { round });
    const prev = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`round ${round}: no active event`)), 5000);
      w.once('active', (job, prev) => { clearTimeout(timer); resolve(prev); });
    });
    assert.equal(prev, 'waiting');
    await w.close();
  }
});

test('delayed, prioritized and LIFO jobs run in the right order', async () => {
  const name = qname();
  const q = queue(name);
  await q.add('later', { v: 'delayed' }, { delay: 700 });
  await q.add('low', { v: 'p10' }, { priority: 10 });
  await q.add('high', { v: 'p1' }, { priority: 1 });
  await q.add('fifo', { v: 'first' });
  await q.add('lifo', { v: 'last-in' }, { lifo: true });
  assert.equal(await q.getDelayedCount(), 1);
  assert.equal(await q.getPrioritizedCount(), 2);
  const order = [];
  worker(name, async (job) => { order.push(job.data.v); });
  await waitFor('5 completed', async () => (await q.getCompletedCount()) === 5);
  assert.deepEqual(order, ['last-in', 'first', 'p1', 'p10', 'delayed']);
});

test('custom job ids and deduplication', async () => {
  const name = qname();
  const q = queue(name);
  const a = await q.add('x', { n: 1 }, { jobId: 'my-id' });
  const b = await q.add('x', { n: 2 }, { jobId: 'my-id' });
  assert.equal(a.id, 'my-id');
  assert.equal(b.id, 'my-id');
  await q.add('x', { n: 3 }, { deduplication: { id: 'dedup-1' } });
  await q.add('x', { n: 4 }, { deduplication: { id: 'dedup-1' } });
  assert.equal(await q.getWaitingCount(), 2);
  const job = await q.getJob('my-id');
  assert.deepEqual(job.data, { n: 1 });
});

test('retries with backoff end in failed; removeOnComplete/removeOnFail', async () => {
  const name = qname();
  const q = queue(name);
  const attempts = {};
  worker(name, async (job) => {
    attempts[job.id] = (attempts[job.id] || 0) + 1;
    if (job.data.fail) throw new Error(`fail ${job.id}`);
    return 'ok';
  });
  const fixed = await q.add('f', { fail: true }, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
  const expo = await q.add('e', { fail: true }, { attempts: 3, backoff: { type: 'exponential', delay: 50 } });
  await q.add('gone', {}, { removeOnComplete: true });
  await q.add('gone-fail', { fail: true }, { removeOnFail: true });
  await waitFor('2 failed', async () => (await q.getFailedCount()) === 2);
  assert.equal(attempts[fixed.id], 3);
  assert.equal(attempts[expo.id], 3);
  const failed = await Job.fromId(q, fixed.id);
  assert.equal(failed.failedReason, `fail ${fixed.id}`);
  assert.equal(failed.attemptsMade, 3);
  await waitFor('removed job', async () => (await q.getJobCounts('completed')).completed === 0 && Object.keys(attempts).length === 4);
  assert.equal(await q.getCompletedCount(), 0);
});

test('progress, logs and QueueEvents see every event', async () => {
  const name = qname();
  const q = queue(name);
  const events = track(new QueueEvents(name, { connection: server.connection }));
  await events.waitUntilReady();
  await sleep(300); // ready means connected; its first XREAD BLOCK ... $ follows shortly after
  const seen = [];
  for (const e of ['waiting', 'active', 'progress', 'completed', 'failed']) {
    events.on(e, ({ jobId }) => seen.push(`${e}:${jobId}`));
  }
  worker(name, async (job) => {
    await job.updateProgress(50);
    await job.log('half way');
    if (job.data.fail) throw new Error('nope');
    return 'done';
  });
  const ok = await q.add('ok', {});
  const bad = await q.add('bad', { fail: true });
  assert.equal(await ok.waitUntilFinished(events, 10000), 'done');
  await waitFor('failed event', async () => seen.includes(`failed:${bad.id}`));
  for (const e of ['waiting', 'active', 'progress', 'completed']) assert.ok(seen.includes(`${e}:${ok.id}`), `${e} seen in ${seen}`);
  const { logs } = await q.getJobLogs(ok.id);
  assert.deepEqual(logs, ['half way']);
  assert.equal((await Job.fromId(q, ok.id)).progress, 50);
});

test('rate limiting, pause and resume', async () => {
  const name = qname();
  const q = queue(name);
  const times = [];
  const w = worker(name, async () => { times.push(Date.now()); }, { limiter: { max: 2, duration: 500 } });
  await q.addBulk(Array.from({ length: 6 }, () => ({ name: 'r', data: {} })));
  await waitFor('6 completed', async () => (await q.getCompletedCount()) === 6, 20000);
  assert.ok(times[5] - times[0] >= 900, `rate limited: ${times[5] - times[0]} ms`);
  await q.pause();
  assert.equal(await q.isPaused(), true);
  await q.add('p', {});
  await sleep(400);
  assert.equal(await q.getCompletedCount(), 6);
  await q.resume();
  await waitFor('7 completed', async () => (await q.getCompletedCount()) === 7);
  await w.close();
});

test('flows: a parent runs after its children with their results', async () => {
  const name = qname();
  const flow = track(new FlowProducer({ connection: server.connection }));
  const tree = await flow.add({
    name: 'parent', queueName: name, data: {},
    children: [
      { name: 'child', queueName: name, data: { v: 1 } },
      { name: 'child', queueName: name, data: { v: 2 } },
    ],
  });
  const q = queue(name);
  assert.equal(await tree.job.getState(), 'waiting-children');
  worker(name, async (job) => {
    if (job.name === 'child') return job.data.v * 10;
    const values = await job.getChildrenValues();
    return Object.values(values).reduce((a, b) => a + b, 0);
  });
  await waitFor('parent completed', async () => (await tree.job.getState()) === 'completed');
  assert.equal((await Job.fromId(q, tree.job.id)).returnvalue, 30);
});

test('job schedulers repeat jobs', async () => {
  const name = qname();
  const q = queue(name);
  await q.upsertJobScheduler('every-300ms', { every: 300 }, { name: 'tick', data: { k: 1 } });
  await q.upsertJobScheduler('cron-1s', { pattern: '* * * * * *' }, { name: 'cron', data: {} });
  assert.equal((await q.getJobSchedulers()).length, 2);
  const ran = { tick: 0, cron: 0 };
  worker(name, async (job) => { ran[job.name]++; });
  await waitFor('ticks and cron', async () => ran.tick >= 3 && ran.cron >= 2, 10000);
  await q.removeJobScheduler('every-300ms');
  await q.removeJobScheduler('cron-1s');
  assert.equal((await q.getJobSchedulers()).length, 0);
});

test('drain and obliterate', async () => {
  const name = qname();
  const q = queue(name);
  await q.addBulk(Array.from({ length: 5 }, () => ({ name: 'd', data: {} })));
  await q.add('delayed', {}, { delay: 60000 });
  await q.drain(true);
  assert.deepEqual(await q.getJobCounts('wait', 'delayed'), { wait: 0, delayed: 0 });
  await q.add('x', {});
  await q.obliterate({ force: true });
  const redis = new IORedis(server.port);
  const keys = await redis.keys(`bull:${name}:*`);
  await redis.quit();
  assert.deepEqual(keys, []);
});

test('a killed worker process leaves a stalled job that another worker recovers', async () => {
  const name = qname();
  const q = queue(name);
  const child = fork(path.join(__dirname, 'stall-worker.js'), [String(server.port), name], { stdio: 'ignore' });
  const job = await q.add('stall', {});
  await waitFor('job active', async () => (await job.getState()) === 'active');
  child.kill('SIGKILL');
  const events = track(new QueueEvents(name, { connection: server.connection }));
  let stalled = false;
  events.on('stalled', ({ jobId }) => { if (jobId === job.id) stalled = true; });
  await events.waitUntilReady();
  worker(name, async () => 'recovered', { stalledInterval: 500, lockDuration: 1000 });
  await waitFor('job recovered', async () => (await Job.fromId(q, job.id)).returnvalue === 'recovered', 30000);
  await waitFor('the stalled event', async () => stalled, 5000);
});

test('removeOnComplete/removeOnFail keep the last N jobs (by count)', async () => {
  const name = qname();
  const q = queue(name);
  await q.addBulk(Array.from({ length: 8 }, (_, i) => ({
    name: 'c', data: { i, fail: i >= 5 },
    opts: { removeOnComplete: { count: 2 }, removeOnFail: { count: 1 } },
  })));
  worker(name, async (job) => { if (job.data.fail) throw new Error(`f${job.data.i}`); return job.data.i; });
  await waitFor('8 processed', async () => {
    const c = await q.getJobCounts('wait', 'active');
    return c.wait === 0 && c.active === 0 && (await q.getFailedCount()) >= 1;
  });
  await waitFor('kept 2 completed and 1 failed', async () => {
    const c = await q.getJobCounts('completed', 'failed');
    return c.completed === 2 && c.failed === 1;
  });
  const completed = await q.getCompleted(0, -1);
  assert.deepEqual(completed.map((j) => j.returnvalue).sort(), [3, 4]);
  const failed = await q.getFailed(0, -1);
  assert.deepEqual(failed.map((j) => j.failedReason), ['f7']);
  // The removed jobs' hashes are gone too.
  for (let i = 0; i < 8; i++) {
    const j = await q.getJob(String(i + 1));
    assert.equal(j !== undefined, [3, 4, 7].includes(i), `job ${i + 1}`);
  }
});

test('removeOnComplete/removeOnFail drop jobs older than the age', async () => {
  const name = qname();
  const q = queue(name);
  const opts = { removeOnComplete: { age: 1 }, removeOnFail: { age: 1 } };
  worker(name, async (job) => { if (job.data.fail) throw new Error('old'); return job.data.i; });
  await q.addBulk([0, 1, 2].map((i) => ({ name: 'a', data: { i, fail: i === 2 }, opts })));
  await waitFor('2 completed, 1 failed', async () => {
    const c = await q.getJobCounts('completed', 'failed');
    return c.completed === 2 && c.failed === 1;
  });
  await sleep(2100);
  const fresh = await q.add('a', { i: 3 }, opts);
  const freshBad = await q.add('a', { i: 4, fail: true }, opts);
  await waitFor('old ones removed', async () => {
    const c = await q.getJobCounts('completed', 'failed');
    return c.completed === 1 && c.failed === 1;
  });
  assert.deepEqual((await q.getCompleted()).map((j) => j.id), [fresh.id]);
  assert.deepEqual((await q.getFailed()).map((j) => j.id), [freshBad.id]);
  assert.equal(await q.getJob('1'), undefined);
});

test('getMetrics counts completed and failed jobs of a metrics-collecting worker', async () => {
  const name = qname();
  const q = queue(name);
  worker(name, async (job) => { if (job.data.fail) throw new Error('m'); return 1; },
    { metrics: { maxDataPoints: MetricsTime.ONE_WEEK * 2 } });
  await q.addBulk(Array.from({ length: 7 }, (_, i) => ({ name: 'm', data: { fail: i >= 5 } })));
  await waitFor('5 completed, 2 failed', async () => {
    const c = await q.getJobCounts('completed', 'failed');
    return c.completed === 5 && c.failed === 2;
  });
  const done = await q.getMetrics('completed');
  assert.equal(done.meta.count, 5);
  assert.ok(done.meta.prevTS > Date.now() - 120000 && done.meta.prevTS <= Date.now(), `prevTS ${done.meta.prevTS}`);
  assert.equal(done.count, done.data.length);
  assert.equal((await q.getMetrics('failed')).meta.count, 2);
  // Pretend the last data point was taken three minutes ago: the next completion adds one point
  // per elapsed minute, the newest holding the five completions since.
  const redis = new IORedis(server.port);
  await redis.hset(`bull:${name}:metrics:completed`, 'prevTS', Date.now() - 180000, 'prevCount', 0);
  await redis.del(`bull:${name}:metrics:completed:data`);
  redis.disconnect();
  await q.addBulk([{ name: 'm', data: {} }, { name: 'm', data: {} }]);
  await waitFor('7 completed', async () => (await q.getCompletedCount()) === 7);
  const later = await q.getMetrics('completed');
  assert.equal(later.meta.count, 7);
  assert.equal(later.meta.prevCount, 5);
  assert.ok([3, 4].includes(later.count), `data points ${later.data}`);
  assert.deepEqual(later.data, [...Array(later.count - 1).fill(0), 5]);
  assert.deepEqual((await q.getMetrics('completed', 0, 0)).data, [0]);
});

test('getJobs by type', async () => {
  const name = qname();
  const q = queue(name);
  const w = worker(name, async (job) => { if (job.data.fail) throw new Error('t'); return job.data.k; });
  const ok = await q.add('t', { k: 'ok' });
  const bad = await q.add('t', { k: 'bad', fail: true });
  await waitFor('1 completed, 1 failed', async () => {
    const c = await q.getJobCounts('completed', 'failed');
    return c.completed === 1 && c.failed === 1;
  });
  await w.close();
  const waiting = await q.addBulk([{ name: 't', data: { k: 'w1' } }, { name: 't', data: { k: 'w2' } }]);
  const delayed = await q.add('t', { k: 'd' }, { delay: 60000 });
  const prio = await q.add('t', { k: 'p' }, { priority: 5 });
  const ids = async (types) => (await q.getJobs(types, 0, -1, true)).map((j) => j.id).sort();
  assert.deepEqual(await ids(['completed']), [ok.id]);
  assert.deepEqual(await ids(['failed']), [bad.id]);
  assert.deepEqual(await ids(['delayed']), [delayed.id]);
  assert.deepEqual(await ids(['waiting']), waiting.map((j) => j.id).sort());
  assert.deepEqual(await ids(['prioritized']), [prio.id]);
  assert.deepEqual(await ids(['completed', 'failed']), [ok.id, bad.id].sort());
  assert.deepEqual((await q.getJobs(['completed'])).map((j) => j.returnvalue), ['ok']);
  assert.equal((await ids(['waiting', 'delayed', 'prioritized', 'completed', 'failed'])).length, 6);
});

test('worker.close() waits for the in-flight job and stores its return value', async () => {
  const name = qname();
  const q = queue(name);
  let started = false;
  const w = new Worker(name, async () => { started = true; await sleep(800); return 'finished in time'; },
    { connection: server.connection });
  const job = await q.add('slow', {});
  await waitFor('job started', async () => started);
  assert.equal(await job.getState(), 'active');
  const t0 = Date.now();
  await w.close();
  assert.ok(Date.now() - t0 >= 400, `close waited ${Date.now() - t0} ms`);
  const after = await Job.fromId(q, job.id);
  assert.equal(await after.getState(), 'completed');
  assert.equal(after.returnvalue, 'finished in time');
  assert.equal(await q.getActiveCount(), 0);
});

// Every key of a queue with its type, whole value and whether it has a TTL.
async function dump(redis, name) {
  const keys = (await redis.keys(`bull:${name}:*`)).sort();
  const out = [];
  for (const k of keys) {
    const t = await redis.type(k);
    let v;
    if (t === 'string') v = await redis.get(k);
    else if (t === 'list') v = await redis.lrange(k, 0, -1);
    else if (t === 'hash') v = Object.entries(await redis.hgetall(k)).sort();
    else if (t === 'set') v = (await redis.smembers(k)).sort();
    else if (t === 'zset') v = await redis.zrange(k, 0, -1, 'WITHSCORES');
    else if (t === 'stream') v = await redis.xrange(k, '-', '+');
    out.push([k, t, v, (await redis.pttl(k)) > 0]);
  }
  return out;
}

test('jobs survive a graceful restart and a kill -9 of the server, key by key', async () => {
  for (const signal of ['SIGTERM', 'SIGKILL']) {
    const name = qname();
    const q = queue(name);
    await q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: 'r', data: { i } })));
    await q.add('later', { i: 99 }, { delay: 1000 });
    await q.add('prio', { i: 98 }, { priority: 3 });
    const redis = new IORedis(server.port);
    const before = await dump(redis, name);
    assert.ok(before.some(([k, t]) => k.endsWith(':events') && t === 'stream'), 'events stream present');
    redis.disconnect();
    await server.restart(signal);
    const after = new IORedis(server.port);
    assert.deepEqual(await dump(after, name), before, `keyspace after ${signal}`);
    after.disconnect();
    await waitFor('reconnected', async () => (await q.getWaitingCount().catch(() => -1)) === 10);
    assert.equal(await q.getDelayedCount(), 1);
    const seen = new Set();
    worker(name, async (job) => { seen.add(job.data.i); return job.data.i; });
    await waitFor('12 completed', async () => (await q.getCompletedCount()) === 12, 20000);
    assert.equal(seen.size, 12);
  }
});
