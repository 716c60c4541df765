// Used by test_migrate.py. `produce <url>`: a real BullMQ queue on redis-server with completed,
// failed, waiting and delayed jobs. `finish <url>`: after the copy, a worker on Berth finishes
// the queue; prints the final counts.
const { Queue, Worker } = require("bullmq");
const IORedis = require("ioredis");

const [mode, url] = process.argv.slice(2);
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const queue = new Queue("mig", { connection });

function processor(job) {
  if (typeof job.data.n !== "number") throw new Error("job data lost: " + JSON.stringify(job.data));
  if (job.name === "bad") throw new Error("boom");
  return { doubled: job.data.n * 2 };
}

async function until(check, what) {
  const deadline = Date.now() + 60000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main() {
  if (mode === "produce") {
    const worker = new Worker("mig", processor, { connection: connection.duplicate() });
    await queue.addBulk([1, 2, 3, 4, 5].map((n) => ({ name: "ok", data: { n } })));
    await queue.add("bad", { n: 0 }, { attempts: 1 });
    await until(async () => {
      const c = await queue.getJobCounts("completed", "failed");
      return c.completed === 5 && c.failed === 1;
    }, "the first jobs");
    await worker.close();
    await queue.addBulk(Array.from({ length: 14 }, (_, i) => ({ name: "ok", data: { n: 10 + i } })));
    await queue.add("ok", { n: 99 }, { delay: 2000 });
    console.log("produced", JSON.stringify(await queue.getJobCounts()));
  } else {
    const worker = new Worker("mig", processor, { connection: connection.duplicate() });
    await until(async () => (await queue.getJobCounts("completed")).completed === 20, "the rest on Berth");
    const job = await queue.getJob("20");
    if (!job || job.returnvalue.doubled !== 2 * job.data.n) throw new Error("bad return value");
    await worker.close();
    const c = await queue.getJobCounts("completed", "failed", "waiting", "delayed");
    console.log(`finished: completed=${c.completed} failed=${c.failed} waiting=${c.waiting} delayed=${c.delayed}`);
  }
  await queue.close();
  connection.disconnect();
}

// Connections handed to a Worker stay open after worker.close(); exit once done.
main().then(() => process.exit(0)).catch((e) => {
  console.error(e);
  process.exit(1);
});
