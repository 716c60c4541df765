// A BullMQ worker for compose.yaml: `node worker.js`. The server's address comes from
// REDIS_URL (redis://:password@berth:6379/0). On start it adds one job to the `hello` queue;
// the processor counts it in the `example:hello` key. SIGTERM closes the worker gracefully.
const { Queue, Worker } = require("bullmq");
const IORedis = require("ioredis");

const url = process.env.REDIS_URL || "redis://127.0.0.1:6379/0";
// BullMQ workers need maxRetriesPerRequest: null (blocking commands must not time out).
const connection = new IORedis(url, { maxRetriesPerRequest: null });

const worker = new Worker(
  "hello",
  async (job) => {
    await connection.incr("example:hello");
    console.log(`hello, ${job.data.name}`);
  },
  { connection }
);
worker.on("failed", (job, err) => console.error(`job ${job && job.id} failed: ${err.message}`));

const queue = new Queue("hello", { connection });
queue.add("greet", { name: "bullmq" }).then(() => console.log("enqueued a hello job"));

async function stop() {
  await worker.close();
  await queue.close();
  connection.disconnect();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
