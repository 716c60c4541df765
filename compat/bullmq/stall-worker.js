// A worker process that takes a job and hangs, to be killed with SIGKILL by the stalled-job test.
const { Worker } = require('bullmq');

const [port, name] = process.argv.slice(2);
new Worker(name, () => new Promise(() => {}), {
  connection: { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null },
  lockDuration: 1000,
  stalledInterval: 500,
});
