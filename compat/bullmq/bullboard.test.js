// bull-board (@bull-board/api + @bull-board/express) over a BullMQ queue on a real berth: the board's
// JSON API lists the queue with the right count per state and retries a failed job.
const test = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const { Queue, Worker, Job } = require('bullmq');
const { createBullBoard } = require('@bull-board/api');
const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
const { ExpressAdapter } = require('@bull-board/express');
const { Server, waitFor } = require('./server');

let server;
let http;
let base;
const open = [];
const track = (x) => { open.push(x); return x; };

test.before(async () => { server = await Server.start(); });
test.after(async () => {
  for (const x of open.reverse()) await x.close().catch(() => {});
  if (http) await new Promise((r) => http.close(r));
  await server.close();
});

async function api(method, path) {
  const res = await fetch(`${base}${path}`, { method });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

test('bull-board lists per-state counts and retries a failed job', async () => {
  const name = `board-${process.pid}`;
  const q = track(new Queue(name, { connection: server.connection }));
  const board = new ExpressAdapter();
  board.setBasePath('/ui');
  createBullBoard({ queues: [new BullMQAdapter(q)], serverAdapter: board });
  const app = express();
  app.use('/ui', board.getRouter());
  await new Promise((resolve) => { http = app.listen(0, '127.0.0.1', resolve); });
  base = `http://127.0.0.1:${http.address().port}/ui`;

  // Two jobs complete and one fails, then the worker stops; three wait and one is delayed.
  let failOnce = true;
  const processor = async (job) => {
    if (job.data.fail && failOnce) throw new Error('board boom');
    return `done ${job.data.n}`;
  };
  const w1 = new Worker(name, processor, { connection: server.connection });
  await q.add('ok', { n: 1 });
  await q.add('ok', { n: 2 });
  const bad = await q.add('bad', { n: 3, fail: true });
  await waitFor('2 completed, 1 failed', async () => {
    const c = await q.getJobCounts('completed', 'failed');
    return c.completed === 2 && c.failed === 1;
  });
  await w1.close();
  await q.addBulk([4, 5, 6].map((n) => ({ name: 'wait', data: { n } })));
  const later = await q.add('later', { n: 7 }, { delay: 60000 });

  const list = await api('GET', '/api/queues');
  assert.equal(list.status, 200);
  const entry = list.body.queues.find((x) => x.name === name);
  assert.ok(entry, `queue ${name} listed`);
  assert.equal(entry.type, 'bullmq');
  assert.equal(entry.isPaused, false);
  assert.deepEqual(
    { waiting: entry.counts.waiting, delayed: entry.counts.delayed, completed: entry.counts.completed,
      failed: entry.counts.failed, active: entry.counts.active },
    { waiting: 3, delayed: 1, completed: 2, failed: 1, active: 0 },
  );

  // The failed tab of the queue shows the failed job with its reason.
  const failedTab = await api('GET', `/api/queues?activeQueue=${name}&status=failed&page=1&jobsPerPage=10`);
  assert.equal(failedTab.status, 200);
  const fjobs = failedTab.body.queues.find((x) => x.name === name).jobs;
  assert.deepEqual(fjobs.map((j) => [j.id, j.failedReason, j.attempts]), [[bad.id, 'board boom', 1]]);

  // One job's page.
  const one = await api('GET', `/api/queues/${name}/${later.id}`);
  assert.equal(one.status, 200);
  assert.equal(one.body.status, 'delayed');
  assert.equal(one.body.job.id, later.id);

  // Retry the failed job through the board; a new worker then runs it to completion.
  failOnce = false;
  const retried = await api('PUT', `/api/queues/${name}/${bad.id}/retry`);
  assert.equal(retried.status, 204);
  assert.equal(await (await Job.fromId(q, bad.id)).getState(), 'waiting');
  track(new Worker(name, processor, { connection: server.connection }));
  await waitFor('retried job completed', async () => (await Job.fromId(q, bad.id)).returnvalue === 'done 3');
  await waitFor('6 completed', async () => (await q.getCompletedCount()) === 6);

  const after = (await api('GET', '/api/queues')).body.queues.find((x) => x.name === name);
  assert.deepEqual(
    { waiting: after.counts.waiting, delayed: after.counts.delayed, completed: after.counts.completed,
      failed: after.counts.failed },
    { waiting: 0, delayed: 1, completed: 6, failed: 0 },
  );
  const retryAgain = await api('PUT', `/api/queues/${name}/${later.id}/retry`);
  assert.equal(retryAgain.status, 400, 'a delayed job is not retriable');
});
