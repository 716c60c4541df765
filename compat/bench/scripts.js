// Per-script cost of BullMQ 6.7.0's hot Lua scripts on one server (issue 12): runs each script
// the way BullMQ's Queue and Worker call it (its own backend methods build KEYS/ARGV, options
// packed with msgpack) on a queue that already holds PREFILL waiting jobs, and measures the
// server's CPU time over each phase (the sum of /proc/PID/task/*/schedstat, nanoseconds, all
// the server's threads) and the commands the scripts ran (INFO commandstats delta: nested
// commands count there in Redis and in Berth). The client's own work is not in the figure.
// Prints one JSON line per script.
// Usage: node scripts.js PORT SERVER_PID [N] [PREFILL] [INFLIGHT]
const fs = require('node:fs');
const path = require('node:path');
const modules = path.join(__dirname, '..', 'bullmq', 'node_modules');
const { Queue, Worker, Job } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));

const [port, pid] = [Number(process.argv[2]), Number(process.argv[3])];
const N = Number(process.argv[4] || 2000);
const PREFILL = Number(process.argv[5] || 10000);
const INFLIGHT = Number(process.argv[6] || 10);
const CONCURRENCY = 50;
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };

// CPU nanoseconds used so far by the server's threads, by thread name.
function cpuByThread() {
  const out = {};
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      const ns = Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      out[name] = (out[name] || 0) + ns;
    } catch { /* the thread ended */ }
  }
  return out;
}
const sum = (t) => Object.values(t).reduce((a, b) => a + b, 0);
const cpuNs = () => sum(cpuByThread());
// The thread that runs scripts: Berth's keyspace thread, Redis's main thread.
const scriptThread = (t) => t.keyspace ?? t['redis-server'] ?? 0;

async function commandstats(client) {
  const out = {};
  for (const line of (await client.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// Waits until the work a phase left behind is done: Berth's checkpoint has caught up with its
// redo log (berth_checkpoint_lsn, every checkpoint-interval, 10 s by default), and the server
// used under 1% of a core over 300 ms. At most 30 s.
let settleClient;
async function settle() {
  const deadline = performance.now() + 30000;
  while (performance.now() < deadline) {
    const info = await settleClient.info('persistence');
    const field = (k) => Number((new RegExp(`^${k}:(\\d+)`, 'm').exec(info) || [])[1]);
    const caughtUp = !(field('berth_checkpoint_lsn') < field('berth_lsn'));
    const c0 = cpuNs();
    await sleep(300);
    if (caughtUp && cpuNs() - c0 < 3e6) return;
  }
}

// Runs `fn(i)` for i in [0, n) with `inflight` calls outstanding.
async function pool(n, inflight, fn) {
  let next = 0;
  const lane = async () => { while (next < n) await fn(next++); };
  await Promise.all(Array.from({ length: Math.min(inflight, n) }, lane));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const data = (i) => ({ userId: 100000 + i, email: `user${i}@example.com`, template: 'welcome', locale: 'en-GB' });
const jobOpts = { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: 1000, removeOnFail: 5000 };

async function main() {
  const queue = new Queue('bench', { connection });
  await queue.waitUntilReady();
  const client = new IORedis(connection); // INFO only, outside the measured spans
  settleClient = client;
  // A worker that never runs on its own: its backend builds the Worker's KEYS/ARGV. A 1 ms
  // stalled interval lets moveStalledJobsToWait do its full check on every call below.
  const worker = new Worker('bench', null, { connection, autorun: false, stalledInterval: 1, maxStalledCount: 1, lockDuration: 3600000 });
  await worker.waitUntilReady();
  const token = `${worker.id}:1`;

  for (let i = 0; i < PREFILL; i += 1000) {
    await queue.addBulk(Array.from({ length: Math.min(1000, PREFILL - i) }, (_, j) => ({ name: 'email', data: data(i + j), opts: jobOpts })));
  }

  // The server's CPU while idle (its timers), subtracted from each phase below.
  await settle();
  const idle0 = cpuNs();
  await sleep(1000);
  const idleNsPerMs = (cpuNs() - idle0) / 1000;
  console.log(JSON.stringify({ idle_cpu_us_per_s: Math.round(idleNsPerMs) }));
  // CPU and command counts summed over one or more measured spans (other work may run
  // between spans, unmeasured).
  class Meter {
    constructor(script) { Object.assign(this, { script, calls: 0, evals: 0, inner: 0, main: 0, all: 0, wall: 0 }); }
    async span(calls, run) {
      const before = await commandstats(client);
      const t0 = cpuByThread();
      const w0 = performance.now();
      await run();
      const wall = performance.now() - w0;
      const t1 = cpuByThread();
      const after = await commandstats(client);
      for (const [name, n] of Object.entries(after)) {
        const d = n - (before[name] || 0);
        if (name === 'evalsha' || name === 'eval') this.evals += d;
        else if (name !== 'info') this.inner += d;
      }
      this.calls += calls;
      this.wall += wall;
      this.main += scriptThread(t1) - scriptThread(t0);
      // Less what the server spends when idle (timers, cron) over the same wall time.
      this.all += sum(t1) - sum(t0) - idleNsPerMs * wall;
    }
    row(deferredNs) {
      const us = (ns) => +(ns / 1000 / this.calls).toFixed(2);
      const row = {
        script: this.script, calls: this.calls, evals: this.evals,
        redis_calls_per_call: +(this.inner / this.calls).toFixed(2),
        main_us_per_call: us(this.main),
        main_us_per_redis_call: this.inner ? +(this.main / 1000 / this.inner).toFixed(3) : null,
        server_us_per_call: us(this.all),
        deferred_us_per_call: deferredNs === undefined ? undefined : us(deferredNs),
        wall_ms: Math.round(this.wall),
      };
      console.log(JSON.stringify(row));
      return row;
    }
  }
  // What the server spends after the spans, until its deferred work is done (checkpoints).
  async function deferred() {
    const t0 = cpuNs();
    const w0 = performance.now();
    await settle();
    return cpuNs() - t0 - idleNsPerMs * (performance.now() - w0);
  }
  async function phase(script, calls, run) {
    await settle();
    const m = new Meter(script);
    await m.span(calls, run);
    m.row(await deferred());
  }

  await phase('addStandardJob', N, () => pool(N, INFLIGHT, (i) => queue.add('email', data(PREFILL + i), jobOpts)));
  await phase('addDelayedJob', N, () => pool(N, INFLIGHT, (i) => queue.add('email', data(i), { ...jobOpts, delay: 3600000 + i })));
  await phase('getCounts', N, () => pool(N, INFLIGHT, () => queue.getJobCounts()));

  // The Worker's scripts in rounds of CONCURRENCY jobs, so the active list stays as short as
  // under a Worker at that concurrency: activate, extend each lock, finish each (with
  // fetchNext, as the Worker does, which activates the next job), retry the jobs so fetched.
  await settle();
  const meters = ['moveToActive', 'extendLock', 'moveToFinished', 'retryJob'].map((s) => new Meter(s));
  for (let done = 0; done < N; done += CONCURRENCY) {
    const k = Math.min(CONCURRENCY, N - done);
    const active = [];
    await meters[0].span(k, () => pool(k, INFLIGHT, async () => {
      const [, id] = await worker.backend.moveToActive(token, undefined);
      if (!id) throw new Error('moveToActive found no job');
      active.push(id);
    }));
    await meters[1].span(k, () => pool(k, INFLIGHT, (i) => worker.backend.extendLock(active[i], token, 30000)));
    const next = [];
    await meters[2].span(k, () => pool(k, INFLIGHT, async (i) => {
      const job = new Job(worker, 'email', {}, jobOpts, active[i]);
      const { result } = await worker.backend.moveToCompleted(job, { ok: true }, jobOpts.removeOnComplete, token, true);
      if (!result || !result[1]) throw new Error('moveToFinished fetched no next job');
      next.push(result[1]);
    }));
    await meters[3].span(k, () => pool(k, INFLIGHT, (i) => worker.backend.retryJob(next[i], false, token)));
  }
  const late = await deferred();
  for (const m of meters) m.row();
  console.log(JSON.stringify({ script: 'worker rounds (deferred)', calls: N, deferred_us_per_call: +(late / 1000 / N).toFixed(2) }));

  // CONCURRENCY active jobs with their locks; the check runs once per stalled interval (here
  // each call after a 2 ms pause, beyond the 1 ms interval), one call at a time.
  for (let i = 0; i < CONCURRENCY; i++) await worker.backend.moveToActive(token, undefined);
  const stalledCalls = Math.max(1, Math.floor(N / 4));
  await phase('moveStalledJobsToWait', stalledCalls, async () => {
    for (let i = 0; i < stalledCalls; i++) {
      await sleep(2);
      const moved = await worker.backend.moveStalledJobsToWait();
      if (moved.length) throw new Error(`moveStalledJobsToWait moved ${moved.length} jobs`);
    }
  });

  await worker.close();
  await queue.close();
  client.disconnect();
}

main().catch((e) => { console.error(e); process.exit(1); });
