// Starts a real berth (or, with COMPAT_SERVER=redis, redis-server) on a free port.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BERTH_BIN = process.env.BERTH_BIN || path.join(__dirname, '..', '..', 'target', 'debug', 'berth');

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Ready once PING answers PONG: while the dataset loads the server answers -LOADING.
function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => { c.destroy(); resolve(d.toString().startsWith('+PONG')); });
    c.on('error', () => resolve(false));
  });
}

class Server {
  static async start() {
    const s = new Server();
    s.port = await freePort();
    s.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bullmq-'));
    await s.spawn();
    return s;
  }

  get connection() { return { host: '127.0.0.1', port: this.port, maxRetriesPerRequest: null }; }

  async spawn() {
    const args = process.env.COMPAT_SERVER === 'redis'
      ? ['redis-server', ['--port', String(this.port), '--dir', this.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always']]
      : [BERTH_BIN, ['--port', String(this.port), '--dir', path.join(this.dir, 'data')]];
    const log = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    this.proc = spawn(args[0], args[1], { stdio: ['ignore', log, log] });
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
    for (let i = 0; i < 400; i++) {
      if (await canConnect(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('server did not start');
  }

  async stop(signal = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill(signal);
      await this.exited;
    }
  }

  async restart(signal = 'SIGTERM') { await this.stop(signal); await this.spawn(); }

  async close() { await this.stop('SIGKILL'); fs.rmSync(this.dir, { recursive: true, force: true }); }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

module.exports = { Server, sleep, waitFor };
