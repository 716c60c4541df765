// BullMQ 6 (compat/bullmq/node_modules) throughput against the server on PORT: add N jobs with
// addBulk (chunks of 1,000), then process them with one Worker at CONCURRENCY (no-op processor,
// removeOnComplete: true so the completed set does not grow). Prints one JSON line.
// Usage: node bullmq_bench.js PORT N [CONCURRENCY]
const path = require('node:path');
const { Queue, Worker } = require(path.join(__dirname, '..', 'bullmq', 'node_modules', 'bullmq'));

async function main() {
  const [port, n, concurrency] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4] || 50)];
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const queue = new Queue('bench', { connection });
  await queue.waitUntilReady();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(i + 1000, n); j++) jobs.push({ name: 'noop', data: { i: j }, opts: { removeOnComplete: true } });
    await queue.addBulk(jobs);
  }
  const addS = (performance.now() - t0) / 1000;
  const waiting = await queue.getWaitingCount();
  if (waiting !== n) throw new Error(`waiting ${waiting}, expected ${n}`);
  let completed = 0;
  let failed = 0;
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  const worker = new Worker('bench', async () => {}, { connection, concurrency, autorun: false });
  worker.on('completed', () => { if (++completed === n) resolveDone(); });
  worker.on('failed', () => { if (++failed + completed === n) resolveDone(); });
  const t1 = performance.now();
  worker.run();
  await done;
  const processS = (performance.now() - t1) / 1000;
  await worker.close();
  const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'failed');
  await queue.close();
  console.log(JSON.stringify({
    jobs: n, concurrency, add_s: +addS.toFixed(3), add_per_s: Math.round(n / addS),
    process_s: +processS.toFixed(3), process_per_s: Math.round(n / processS), completed, failed, counts,
    ok: completed === n && failed === 0 && counts.wait === 0 && counts.active === 0,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
