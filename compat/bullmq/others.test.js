// Bull 4 and Bee-Queue (RESP2 clients: ioredis 5 and node_redis 3) against a real berth.
const test = require('node:test');
const assert = require('node:assert/strict');
const Bull = require('bull');
const BeeQueue = require('bee-queue');
const { Server, waitFor } = require('./server');

let server;
const open = [];
test.before(async () => { server = await Server.start(); });
test.after(async () => {
  for (const q of open.reverse()) await q.close().catch(() => {});
  await server.close();
});

test('Bull 4: produce, process, retry with backoff, delayed jobs and global events', async () => {
  const q = new Bull(`bull4-${process.pid}`, { redis: { host: '127.0.0.1', port: server.port } });
  open.push(q);
  const events = [];
  q.on('global:completed', (id) => events.push(`completed:${id}`));
  q.on('global:failed', (id) => events.push(`failed:${id}`));
  await q.isReady();
  const attempts = {};
  q.process(3, async (job) => {
    attempts[job.id] = (attempts[job.id] || 0) + 1;
    if (job.data.fail && attempts[job.id] < 2) throw new Error('first try fails');
    if (job.data.always) throw new Error('always');
    return job.data.x * 2;
  });
  const ok = await q.add({ x: 21 });
  const retried = await q.add({ x: 1, fail: true }, { attempts: 2, backoff: { type: 'fixed', delay: 100 } });
  const bad = await q.add({ x: 0, always: true }, { attempts: 1 });
  const later = await q.add({ x: 5 }, { delay: 800 });
  assert.equal((await q.getJobCounts()).delayed, 1);
  assert.equal(await ok.finished(), 42);
  assert.equal(await retried.finished(), 2);
  assert.equal(await later.finished(), 10);
  await waitFor('failed job', async () => (await q.getFailedCount()) === 1);
  assert.equal((await q.getJob(bad.id)).failedReason, 'always');
  await waitFor('global events', async () => events.includes(`completed:${ok.id}`) && events.includes(`failed:${bad.id}`));
  assert.equal(attempts[retried.id], 2);
});

test('Bee-Queue: produce, process, retries, delayed jobs and job events', async () => {
  const q = new BeeQueue(`bee-${process.pid}`, {
    redis: { host: '127.0.0.1', port: server.port }, activateDelayedJobs: true, removeOnSuccess: false,
  });
  open.push(q);
  await q.ready();
  let tries = 0;
  q.process(2, async (job) => {
    if (job.data.flaky && ++tries < 2) throw new Error('flaky');
    return job.data.x + 1;
  });
  const run = (job) => new Promise((resolve, reject) => {
    job.on('succeeded', resolve);
    job.on('failed', (err) => reject(err));
  });
  // Listeners are attached in the same tick the save resolves, before any event can arrive.
  const a = q.createJob({ x: 1 }).save().then(run);
  const b = q.createJob({ x: 2, flaky: true }).retries(2).backoff('fixed', 100).save().then(run);
  const c = q.createJob({ x: 3 }).delayUntil(Date.now() + 700).save().then(run);
  assert.deepEqual(await Promise.all([a, b, c]), [2, 3, 4]);
  assert.equal(tries, 2);
  const counts = await q.checkHealth();
  assert.equal(counts.succeeded, 3);
});
