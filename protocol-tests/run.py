#!/usr/bin/env python3
"""Differential protocol tests: replay recorded Redis 7.0 replies against Berth.

Each case file in cases/ is a list of commands (see cases/README.md for the syntax). Recording
(--record) runs every file against a real redis-server and stores the raw reply bytes in
expected/<name>.json, once with RESP2 connections and once with RESP3 (HELLO 3) connections.
Replaying (the default) runs the same files against a berth binary and compares byte for byte,
apart from the modifiers a line asks for (!sort, !type, !ignore, ...).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
EXPECTED = os.path.join(HERE, "expected")


class Conn:
    def __init__(self, port, resp3):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        if resp3:
            self.send_cmd([b"HELLO", b"3"])
            self.read_reply()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_cmd(self, args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def _fill(self, timeout=5):
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_reply(self):
        """Reads one reply; returns (raw bytes, parsed tree) where the tree is
        (type char, payload) with payload a list of subtrees for aggregates."""
        line = self._line()
        t = chr(line[0])
        raw = line + b"\r\n"
        if t in "+-:,#_(":
            return raw, (t, line[1:])
        if t in "$=!":
            n = int(line[1:])
            if n < 0:
                return raw, (t, None)
            data = self._exact(n + 2)
            return raw + data, (t, data[:-2])
        if t in "*~>%|":
            n = int(line[1:])
            if n < 0:
                return raw, (t, None)
            count = n * 2 if t in "%|" else n
            items = []
            for _ in range(count):
                r, tree = self.read_reply()
                raw += r
                items.append((r, tree))
            return raw, (t, items)
        raise ValueError("bad reply line %r" % line)

    def has_data(self, wait=0.3):
        """Whether a reply is waiting or arrives within `wait` seconds."""
        if self.buf:
            return True
        try:
            self._fill(wait)
            return True
        except (socket.timeout, EOFError):
            return False

    def read_all(self, wait=0.3):
        """Everything the server sends until it closes or goes quiet."""
        data = self.buf
        self.buf = b""
        end = time.time() + wait
        while time.time() < end:
            try:
                self.sock.settimeout(max(0.01, end - time.time()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data + b"<closed>"
                data += chunk
            except socket.timeout:
                break
            except ConnectionResetError:
                return data + b"<closed>"
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def split_args(line):
    """redis-cli style words: "double quoted" with \\n \\r \\t \\xHH escapes, 'single quoted'."""
    out, i, n = [], 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return out
        cur = bytearray()
        if line[i] == '"':
            i += 1
            while line[i] != '"':
                c = line[i]
                if c == "\\":
                    i += 1
                    e = line[i]
                    if e == "x":
                        cur.append(int(line[i + 1:i + 3], 16))
                        i += 2
                    else:
                        cur += {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0"}.get(e, e.encode())
                else:
                    cur += c.encode()
                i += 1
            i += 1
        elif line[i] == "'":
            i += 1
            while line[i] != "'":
                cur += line[i].encode()
                i += 1
            i += 1
        else:
            while i < n and not line[i].isspace():
                cur += line[i].encode()
                i += 1
        out.append(bytes(cur))


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


MODS = ("!sort", "!sortpairs", "!type", "!ignore", "!len", "!scan")


def parse_case_file(path):
    """Yields steps: dict(line, conn, kind, args/raw, mods, nowait)."""
    steps = []
    with open(path, encoding="utf-8") as f:
        for lineno, text in enumerate(f, 1):
            text = text.rstrip("\n")
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            step = {"line": lineno, "text": stripped, "conn": 1, "mods": [], "nowait": False}
            words = stripped.split(None, 1)
            while words and (words[0].startswith("@") or words[0] == "&" or words[0] in MODS
                             or words[0].startswith("!drop=")):
                w = words[0]
                if w.startswith("@"):
                    step["conn"] = int(w[1:])
                elif w == "&":
                    step["nowait"] = True
                else:
                    step["mods"].append(w)
                words = words[1].split(None, 1) if len(words) > 1 else []
            rest = words[0] + (" " + words[1] if len(words) > 1 else "") if words else ""
            if rest == "<":
                step["kind"] = "read"
            elif rest == "<?":
                step["kind"] = "read"
                step["optional"] = True
            elif rest.startswith("sleep "):
                step["kind"] = "sleep"
                step["seconds"] = float(rest.split()[1])
            elif rest.startswith("raw "):
                step["kind"] = "raw"
                step["raw"] = unescape(rest[4:])
            elif rest == "reconnect":
                step["kind"] = "reconnect"
            else:
                step["kind"] = "cmd"
                step["args"] = split_args(rest)
            steps.append(step)
    return steps


def drop_pairs(tree, mods):
    """`!drop=a,b`: removes the pairs whose key is a or b from a flat key/value array or map."""
    names = [n.encode() for m in mods if m.startswith("!drop=") for n in m[6:].split(",")]
    t, payload = tree
    if not names or not isinstance(payload, list):
        return tree
    kept = []
    for i in range(0, len(payload) - 1, 2):
        if payload[i][1][1] not in names:
            kept += payload[i:i + 2]
    return (t, kept)


def normalize(tree, mods):
    """Turns a parsed reply into a comparable value according to the line's modifiers."""
    tree = drop_pairs(tree, mods)
    if "!type" in mods:
        return shape(tree)
    if "!len" in mods:
        t, payload = tree
        return (t, len(payload) if isinstance(payload, list) else payload)
    if "!sort" in mods:
        return sort_tree(tree)
    if "!sortpairs" in mods:
        t, payload = tree
        if isinstance(payload, list):
            pairs = [(payload[i][0], payload[i + 1][0]) for i in range(0, len(payload), 2)]
            return (t, sorted(pairs))
    return None


def shape(tree):
    t, payload = tree
    if isinstance(payload, list):
        return (t, [shape(p[1]) for p in payload])
    return (t, None if payload is None else "")


def sort_tree(tree):
    t, payload = tree
    if not isinstance(payload, list):
        return tree
    items = [sort_tree(p[1]) for p in payload]
    if t in "%|":
        pairs = sorted(zip(items[0::2], items[1::2]), key=repr)
        return (t, pairs)
    if t in "*~>" and not (len(items) == 2 and items[0][0] == "$" and items[1][0] in "*~"):
        return (t, sorted(items, key=repr))
    # A [cursor, [elements]] scan reply: sort the elements only.
    return (t, items)


def scan_all(conn, args):
    """Iterates a SCAN-family command to cursor 0; returns the sorted elements as bytes."""
    cursor_at = 1 if args[0].upper() == b"SCAN" else 2
    args = list(args)
    seen = []
    for _ in range(100000):
        conn.send_cmd(args)
        raw, tree = conn.read_reply()
        if tree[0] != "*":
            return raw
        cursor = tree[1][0][1][1]
        for _, item in tree[1][1][1][1]:
            seen.append(item[1] if item[1] is not None else b"")
        if cursor == b"0":
            break
        args[cursor_at] = cursor
    if args[0].upper() in (b"HSCAN", b"ZSCAN"):
        pairs = sorted(zip(seen[0::2], seen[1::2]))
        return repr(pairs).encode()
    return repr(sorted(set(seen))).encode()


class Server:
    def __init__(self, kind, binary, port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="berth-ptest-")
        if kind == "redis":
            cmd = [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", self.dir]
        else:
            cmd = [binary, "--port", str(port), "--dir", self.dir]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start: %s" % cmd)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def reset_server(port):
    c = Conn(port, False)
    for cmd in ([b"FLUSHALL"], [b"SCRIPT", b"FLUSH"], [b"CONFIG", b"RESETSTAT"]):
        c.send_cmd(cmd)
        c.read_reply()
    c.close()


def run_pass(port, steps, resp3):
    """Runs one file's steps; returns a list of (step, comparable result bytes or value)."""
    conns = {}
    results = []

    def conn(n):
        if n not in conns:
            conns[n] = Conn(port, resp3)
        return conns[n]

    for step in steps:
        kind = step["kind"]
        try:
            if kind == "sleep":
                time.sleep(step["seconds"])
                continue
            if kind == "reconnect":
                c = conns.pop(step["conn"], None)
                if c:
                    c.close()
                continue
            if kind == "raw":
                c = conn(step["conn"])
                c.send_raw(step["raw"])
                data = c.read_all()
                if data.endswith(b"<closed>"):
                    conns.pop(step["conn"]).close()
                results.append((step, data))
                continue
            c = conn(step["conn"])
            if kind == "cmd" and "!scan" in step["mods"]:
                results.append((step, scan_all(c, step["args"])))
                continue
            if kind == "read" and step.get("optional") and not c.has_data():
                results.append((step, b"<none>"))
                continue
            if kind == "cmd":
                c.send_cmd([client_ids(a, conn) for a in step["args"]])
                if step["nowait"]:
                    time.sleep(0.05)  # let the server register it before the next step
                    continue
            raw, tree = c.read_reply()
            if "!ignore" in step["mods"]:
                continue
            norm = normalize(tree, step["mods"])
            results.append((step, raw if norm is None else repr(norm).encode()))
        except (socket.timeout, EOFError, ConnectionError, OSError) as e:
            results.append((step, ("<%s>" % type(e).__name__).encode()))
            conns.pop(step["conn"], None)
    for c in conns.values():
        c.close()
    return results


def client_ids(arg, conn):
    """Replaces `{id:N}` in an argument with connection N's CLIENT ID (asked once, on first
    use: before that connection subscribes)."""
    while b"{id:" in arg:
        start = arg.index(b"{id:")
        end = arg.index(b"}", start)
        c = conn(int(arg[start + 4:end]))
        if not hasattr(c, "client_id"):
            c.send_cmd([b"CLIENT", b"ID"])
            c.client_id = c.read_reply()[1][1]
        arg = arg[:start] + c.client_id + arg[end + 1:]
    return arg


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def case_files(selected):
    names = sorted(f[:-4] for f in os.listdir(CASES) if f.endswith(".txt"))
    if selected:
        names = [n for n in names if n in selected]
    return names


def enc(b):
    return b.decode("latin-1")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true", help="record expectations from redis-server")
    ap.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--berth", default=os.path.join(HERE, "..", "target", "debug", "berth"))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    a = ap.parse_args()

    port = free_port()
    server = Server("redis" if a.record else "berth", a.redis if a.record else a.berth, port)
    total = failed = 0
    failed_files = []
    try:
        for name in case_files(a.cases):
            steps = parse_case_file(os.path.join(CASES, name + ".txt"))
            exp_path = os.path.join(EXPECTED, name + ".json")
            expected = None
            if not a.record:
                if not os.path.exists(exp_path):
                    print("%s: no recording (run with --record)" % name)
                    failed += 1
                    failed_files.append(name)
                    continue
                with open(exp_path) as f:
                    expected = json.load(f)
            recorded = {}
            file_failed = 0
            for proto in ("resp2", "resp3"):
                if not server.alive():
                    raise RuntimeError("server died during %s" % name)
                reset_server(port)
                results = run_pass(port, steps, proto == "resp3")
                recorded[proto] = [[s["line"], enc(r)] for s, r in results]
                if expected is None:
                    continue
                exp = {line: r for line, r in expected[proto]}
                for step, got in results:
                    total += 1
                    want = exp.get(step["line"])
                    if want is None or enc(got) != want:
                        failed += 1
                        file_failed += 1
                        if a.verbose or file_failed <= 20:
                            print("FAIL %s.txt:%d [%s] %s\n  expected: %r\n  got:      %r" % (
                                name, step["line"], proto, step["text"][:200],
                                (want or "<missing>")[:500], enc(got)[:500]))
            if a.record:
                os.makedirs(EXPECTED, exist_ok=True)
                with open(exp_path, "w") as f:
                    json.dump(recorded, f, indent=0)
                    f.write("\n")
                n = len(recorded["resp2"]) + len(recorded["resp3"])
                print("recorded %s: %d replies" % (name, n))
                total += n
            elif file_failed:
                failed_files.append(name)
    finally:
        server.stop()
    if a.record:
        print("recorded %d replies" % total)
        return 0
    print("protocol tests: %d checked, %d failed%s" % (
        total, failed, (" (in %s)" % ", ".join(failed_files)) if failed_files else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
