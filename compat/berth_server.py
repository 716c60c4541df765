"""Starts and stops a real berth process for the compatibility suites.

BERTH_BIN selects the binary (default: target/debug/berth of this checkout). COMPAT_SERVER=redis
runs the same suite against Debian's redis-server instead, so a difference shows as Berth's."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(ROOT, "target", "debug", "berth"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Berth:
    """One berth process on a free port with its own data directory."""

    def __init__(self, *extra_args):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="berth-compat-")
        self.extra = list(extra_args)
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self):
        log = open(os.path.join(self.dir, "berth.log"), "ab")
        if os.environ.get("COMPAT_SERVER") == "redis":
            cmd = ["redis-server", "--port", str(self.port), "--dir", self.dir, "--save", "",
                   "--appendonly", "yes", "--appendfsync", "always"]
        else:
            data = os.path.join(self.dir, "data")
            cmd = [BERTH_BIN, "--port", str(self.port), "--dir", data] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("berth exited with %s; see %s/berth.log" % (self.proc.returncode, self.dir))
            # Ready once PING answers PONG: while the dataset loads it answers -LOADING.
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("berth did not start")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def kill9(self):
        self.stop(signal.SIGKILL)

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        self.start()

    def close(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
