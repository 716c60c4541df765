#!/usr/bin/env python3
"""Runs the container image's command lines against the locally built binary.

There is no Docker engine here, so this reads docker/Dockerfile (its final stage), takes the
ENTRYPOINT, CMD and HEALTHCHECK exactly as written, maps the image's paths to temporary
directories (/usr/local/bin/berth -> target/debug/berth, /etc/berth -> a copy of what the
Dockerfile COPYs there, /data -> an empty directory) and checks that:
  - the server starts from them and answers on its port, with its data in the volume directory;
  - configuration by environment (BERTH_*), by arguments and by a mounted config file works;
  - the HEALTHCHECK command succeeds while the server runs (also with a password set) and
    fails once it is gone;
  - SIGTERM stops it with exit status 0 within Docker's default 10 s grace period, also as PID 1
    of a new PID namespace (where only signals with a handler are delivered), and the data is
    there after a restart, and in a copy of the stopped data directory;
  - the compose example workers run their jobs against a berth by URL (when installed here).
It also checks the Dockerfile's promises: exec (JSON) forms, a non-root USER, VOLUME /data,
EXPOSE of the configured port, COPY sources that exist and that .dockerignore lets through.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BINARY = os.environ.get("BERTH_BIN", os.path.join(ROOT, "target", "debug", "berth"))
checks = 0


def ok(cond, what):
    global checks
    checks += 1
    if not cond:
        sys.exit("docker check FAILED: " + what)
    print("ok   " + what)


def instructions(path):
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined."""
    out, cur = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if cur and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def exec_form(text, what):
    try:
        argv = json.loads(text)
    except ValueError:
        argv = None
    ok(isinstance(argv, list) and all(isinstance(a, str) for a in argv),
       "%s is in exec (JSON) form, so berth gets signals directly: %s" % (what, text))
    return argv


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_reply(f):
    line = f.readline().decode().rstrip("\r\n")
    if line.startswith("$"):
        n = int(line[1:])
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if line.startswith("*"):
        return [read_reply(f) for _ in range(int(line[1:]))]
    return line


def command(port, *args, password=None):
    """Sends one command (after AUTH when a password is given) and returns its reply: status
    and error lines as text, bulks as their contents, arrays as lists."""
    cmds = ([["AUTH", password]] if password is not None else []) + [list(args)]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(
            b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in c)
            for c in cmds))
        f = s.makefile("rb")
        return [read_reply(f) for _ in cmds][-1]


def wait_port(port, proc, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    dockerfile = os.path.join(HERE, "Dockerfile")
    ins = instructions(dockerfile)
    stages = [i for i, (w, _) in enumerate(ins) if w == "FROM"]
    ok(len(stages) >= 2, "multi-stage build (%d stages)" % len(stages))
    ok(ins[stages[0]][1].startswith("rust:"), "builds in a Rust image: " + ins[stages[0]][1])
    ok("debian" in ins[stages[-1]][1] and "slim" in ins[stages[-1]][1],
       "runs from a slim Debian image: " + ins[stages[-1]][1])
    build, final = ins[stages[0]:stages[-1]], ins[stages[-1]:]

    def last(word, part):
        found = [a for w, a in part if w == word]
        return found[-1] if found else None

    # The build stage builds the binary the final stage copies.
    build_runs = " ".join(a for w, a in build if w == "RUN")
    ok("cargo build --release --locked --bin berth" in build_runs, "the build stage runs cargo build --bin berth")
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        ok(re.search(r'\[\[bin\]\]\s*name = "berth"', f.read()) is not None, "Cargo.toml has the berth binary")

    # COPY sources from the build context exist and .dockerignore lets them through.
    ignore = []
    if os.path.exists(os.path.join(ROOT, ".dockerignore")):
        with open(os.path.join(ROOT, ".dockerignore")) as f:
            ignore = [l.strip() for l in f if l.strip() and not l.startswith("#")]

    def allowed(path):
        verdict = True
        for pat in ignore:
            neg = pat.startswith("!")
            p = pat[1:] if neg else pat
            p = p.rstrip("/")
            if p == "*" or path == p or path.startswith(p + "/"):
                verdict = neg
        return verdict

    image_files = {}  # image path -> local source
    for w, a in ins:
        if w != "COPY" or "--from=" in a:
            continue
        parts = shlex.split(a)
        srcs, dest = parts[:-1], parts[-1]
        for src in srcs:
            ok(os.path.exists(os.path.join(ROOT, src)), "COPY source exists: " + src)
            ok(allowed(src.rstrip("/")), ".dockerignore sends it to the build: " + src)
            if dest.startswith("/etc/berth"):
                image_files[dest if not dest.endswith("/") else dest + os.path.basename(src)] = src
    copies = [a for w, a in final if w == "COPY" and "--from=" in a]
    ok(any(a.split()[-1] == "/usr/local/bin/berth" for a in copies), "the binary is installed as /usr/local/bin/berth")

    user = last("USER", final)
    ok(user is not None and user.split(":")[0] not in ("root", "0"), "runs as a non-root user: %s" % user)
    volume = last("VOLUME", final)
    ok(volume is not None and "/data" in json.loads(volume), "VOLUME /data")
    expose = last("EXPOSE", final)
    ok(expose == "6379", "EXPOSE 6379")
    stop = last("STOPSIGNAL", final)
    ok(stop in (None, "SIGTERM"), "stops with SIGTERM")
    entry = exec_form(last("ENTRYPOINT", final), "ENTRYPOINT")
    cmd = exec_form(last("CMD", final), "CMD")
    health = last("HEALTHCHECK", final)
    ok(health is not None and " CMD " in " " + health, "HEALTHCHECK with a command")
    health_argv = exec_form((" " + health).split(" CMD ", 1)[1].strip(), "HEALTHCHECK CMD")
    workdir = last("WORKDIR", final)
    runs_final = [a for w, a in final if w == "RUN"]
    ok(not any("apt-get" in a for a in runs_final), "the runtime image installs no packages")
    # The binary needs only libraries every Debian base image has (libc6, libgcc-s1).
    if shutil.which("ldd"):
        libs = subprocess.run(["ldd", BINARY], capture_output=True, text=True).stdout.split()
        libs = sorted({os.path.basename(x) for x in libs if ".so" in x})
        base = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
                "libpthread.so.0", "libdl.so.2", "librt.so.1", "ld-linux-aarch64.so.1", "linux-vdso.so.1"}
        ok(set(libs) <= base, "the binary links only base-image libraries: %s" % " ".join(libs))

    # The image's paths, mapped to a temporary tree.
    tmp = tempfile.mkdtemp(prefix="berth-docker-check-")
    try:
        run_checks(tmp, entry, cmd, health_argv, workdir, image_files)
        check_compose()
        run_examples(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("docker check: %d checks passed" % checks)


def run_checks(tmp, entry, cmd, health_argv, workdir, image_files):
    etc, data = os.path.join(tmp, "etc-berth"), os.path.join(tmp, "data")
    os.makedirs(etc)
    os.makedirs(data)
    mapping = [("/usr/local/bin/berth", BINARY), ("/etc/berth", etc), ("/data", data)]

    def host(path):
        for image, local in mapping:
            if path == image or path.startswith(image + "/"):
                return local + path[len(image):]
        return path

    conf_image = [a for a in entry + cmd if a.startswith("/etc/berth/")]
    ok(conf_image == ["/etc/berth/berth.conf"], "the command line reads /etc/berth/berth.conf")
    ok("/etc/berth/berth.conf" in image_files, "the Dockerfile COPYs a berth.conf there")
    # The sample config, with the image's paths in its directives mapped too.
    with open(os.path.join(ROOT, image_files["/etc/berth/berth.conf"])) as f:
        text = f.read()
    ok(re.search(r"^dir /data$", text, re.M) is not None, "berth.conf keeps the data in /data")
    ok(re.search(r"^bind 0\.0\.0\.0", text, re.M) is not None, "berth.conf binds 0.0.0.0")
    ok(re.search(r"^port 6379$", text, re.M) is not None, "berth.conf listens on 6379 (EXPOSEd)")
    conf_text = re.sub(r"^(dir|logfile) (/\S+)$", lambda m: m.group(1) + " " + host(m.group(2)), text, flags=re.M)
    with open(host("/etc/berth/berth.conf"), "w") as f:
        f.write(conf_text)

    argv = [host(a) for a in entry + cmd]
    health = [host(a) for a in health_argv]
    cwd = host(workdir or "/")
    port = free_port()  # The host's 6379 may be taken; the port comes from the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env["BERTH_PORT"] = str(port)
    print("     server:      " + " ".join(argv))
    print("     healthcheck: " + " ".join(health))

    def healthcheck(extra_env=None):
        e = dict(env, **(extra_env or {}))
        r = subprocess.run(health, env=e, capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout.strip()

    def start(args, extra_env=None):
        log = open(os.path.join(tmp, "server.log"), "a")
        p = subprocess.Popen(args, cwd=cwd, env=dict(env, **(extra_env or {})), stdout=log, stderr=log)
        ready = wait_port(port, p)
        if not ready:
            p.kill()
            with open(os.path.join(tmp, "server.log")) as f:
                print(f.read()[-3000:])
        ok(ready, "the server answers on port %d" % port)
        return p

    def stop(p, what):
        t = time.time()
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            code = "killed after 10 s"
        ok(code == 0, "%s: SIGTERM -> exit status 0 in %.2f s (got %s)" % (what, time.time() - t, code))

    code, out = healthcheck()
    ok(code == 1, "HEALTHCHECK fails while no server runs (%s)" % out)
    p = start(argv)
    try:
        ok(command(port, "PING") == "+PONG", "PING -> +PONG")
        ok(command(port, "SET", "job:1", "payload") == "+OK", "SET a key")
        ok(command(port, "RPUSH", "queue:default", "a", "b") == ":2", "RPUSH a list")
        ok(command(port, "CONFIG", "GET", "dir") == ["dir", host("/data")], "CONFIG GET dir is the volume")
        ok(command(port, "CONFIG", "GET", "protected-mode") == ["protected-mode", "no"],
           "protected-mode no from berth.conf")
        ok(os.path.isdir(os.path.join(data, "fjall")) and os.path.exists(os.path.join(data, "berth.lock")),
           "the store and its lock are in /data")
        code, out = healthcheck()
        ok(code == 0 and out == "+PONG", "HEALTHCHECK succeeds against the running server (%s)" % out)
        ok(command(port, "CONFIG", "SET", "requirepass", "s3cret") == "+OK", "set a password")
        code, out = healthcheck()
        ok(code == 0 and out.startswith("-NOAUTH"), "HEALTHCHECK still succeeds with a password set (%s)" % out)
        code, out = healthcheck({"BERTH_PORT": str(free_port())})
        ok(code == 1, "HEALTHCHECK fails against a port nothing listens on (%s)" % out)
    finally:
        stop(p, "first run")
    code, out = healthcheck()
    ok(code == 1, "HEALTHCHECK fails once the server has stopped (%s)" % out)

    # Configuration by environment and by arguments after the config path (docker run ... CMD).
    p = start(argv + ["--maxclients", "77"], {"BERTH_APPENDFSYNC": "everysec", "BERTH_REQUIREPASS": "pw"})
    try:
        ok(command(port, "PING").startswith("-NOAUTH"), "BERTH_REQUIREPASS from the environment")
        ok(command(port, "GET", "job:1", password="pw") == "payload", "the data survived the restart")
        ok(command(port, "LRANGE", "queue:default", "0", "-1", password="pw") == ["a", "b"], "the list too")
        ok(command(port, "CONFIG", "GET", "appendfsync", password="pw") == ["appendfsync", "everysec"],
           "BERTH_APPENDFSYNC from the environment")
        ok(command(port, "CONFIG", "GET", "maxclients", password="pw") == ["maxclients", "77"],
           "--maxclients from the command line")
        code, out = healthcheck({"BERTH_REQUIREPASS": "pw"})
        ok(code == 0, "HEALTHCHECK succeeds with the container's environment (%s)" % out)
    finally:
        stop(p, "second run")

    # Backup while stopped: a copy of the data directory starts with every key.
    backup = os.path.join(tmp, "backup")
    shutil.copytree(data, backup)
    p = start(argv, {"BERTH_DIR": backup})
    try:
        ok(command(port, "CONFIG", "GET", "dir") == ["dir", backup], "a copy of the stopped data directory...")
        ok(command(port, "LRANGE", "queue:default", "0", "-1") == ["a", "b"], "...starts with the data")
    finally:
        stop(p, "the copy")

    # A mounted config file replaces the sample.
    with open(host("/etc/berth/berth.conf"), "w") as f:
        f.write("bind 127.0.0.1\nport %d\ndir %s\nmaxclients 33\n" % (port, data))
    p = start(argv)
    try:
        ok(command(port, "CONFIG", "GET", "maxclients") == ["maxclients", "33"], "a mounted berth.conf is read")
        ok(command(port, "GET", "job:1") == "payload", "with the same data")
        code, out = healthcheck()
        ok(code == 0, "HEALTHCHECK follows the mounted file (%s)" % out)
    finally:
        stop(p, "third run")
    as_pid_one(argv, cwd, env, port, tmp)
    p = start(argv)
    try:
        ok(command(port, "GET", "pid1") == "yes", "the write made before SIGTERM to PID 1 is kept")
    finally:
        stop(p, "fourth run")


def as_pid_one(argv, cwd, env, port, tmp):
    """Runs the image's command as PID 1 of a new PID namespace (as in a container, where a
    process without a SIGTERM handler would ignore `docker stop`), when unshare is allowed."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "--pid", "--fork", "true"],
                                                     capture_output=True).returncode != 0:
        print("skip the PID 1 check: cannot create a PID namespace here")
        return
    log = open(os.path.join(tmp, "pid1.log"), "w")
    u = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child"] + argv, cwd=cwd, env=env,
                         stdout=log, stderr=log)
    try:
        ok(wait_port(port, u), "the server answers as PID 1 of its own PID namespace")
        with open("/proc/%d/task/%d/children" % (u.pid, u.pid)) as f:
            child = int(f.read().split()[0])
        with open("/proc/%d/status" % child) as f:
            nspid = [l.split()[1:] for l in f if l.startswith("NSpid:")][0]
        ok(nspid[-1] == "1", "berth is PID 1 there (NSpid %s)" % " ".join(nspid))
        ok(command(port, "SET", "pid1", "yes") == "+OK", "it takes a write")
        t = time.time()
        os.kill(child, signal.SIGTERM)  # what docker stop sends, from outside the namespace
        code = u.wait(timeout=10)
        ok(code == 0, "SIGTERM to PID 1 -> exit status 0 in %.2f s (got %s)" % (time.time() - t, code))
    finally:
        if u.poll() is None:
            u.kill()
            u.wait()


def check_compose():
    """docker/compose.yaml: Berth from this Dockerfile, workers pointed at it by URL, the files
    it mounts present."""
    import yaml

    with open(os.path.join(HERE, "compose.yaml")) as f:
        compose = yaml.safe_load(f)
    services = compose["services"]
    berth = services["berth"]
    ok(os.path.normpath(os.path.join(HERE, berth["build"]["context"], berth["build"]["dockerfile"]))
       == os.path.join(HERE, "Dockerfile"), "compose builds berth from docker/Dockerfile")
    ok(any(v.split(":")[1] == "/data" for v in berth["volumes"]), "compose keeps /data in a volume")
    for name in ("sidekiq", "bullmq"):
        svc = services[name]
        url = svc["environment"]["REDIS_URL"]
        ok(re.match(r"redis://:\$\{BERTH_PASSWORD\}@berth:6379/0$", url) is not None,
           "compose %s reaches berth by URL with the password: %s" % (name, url))
        ok(svc["depends_on"]["berth"]["condition"] == "service_healthy", "compose %s waits for the HEALTHCHECK" % name)
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            ok(os.path.exists(os.path.join(HERE, src)), "compose %s mounts an existing %s" % (name, src))


def run_examples(tmp):
    """Runs the compose example workers (docker/examples) against a local berth with a password,
    when their libraries are installed here (Debian's sidekiq; compat/bullmq's node_modules)."""
    port = free_port()
    data = os.path.join(tmp, "examples-data")
    p = subprocess.Popen([BINARY, "--port", str(port), "--dir", data, "--requirepass", "pw"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ok(wait_port(port, p), "a berth for the example workers")
        url = "redis://:pw@127.0.0.1:%d/0" % port
        workers = [("sidekiq", ["sidekiq", "-r", "./worker.rb"], os.path.join(HERE, "examples", "sidekiq"), {},
                    shutil.which("sidekiq")),
                   ("bullmq", ["node", "worker.js"], os.path.join(HERE, "examples", "bullmq"),
                    {"NODE_PATH": os.path.join(ROOT, "compat", "bullmq", "node_modules")},
                    os.path.isdir(os.path.join(ROOT, "compat", "bullmq", "node_modules", "bullmq"))
                    and shutil.which("node"))]
        done = 0
        for name, argv, cwd, extra, available in workers:
            if not available:
                print("skip the %s example: its libraries are not installed here" % name)
                continue
            log = open(os.path.join(tmp, name + ".log"), "w")
            w = subprocess.Popen(argv, cwd=cwd, env=dict(os.environ, REDIS_URL=url, **extra),
                                 stdout=log, stderr=log)
            deadline = time.time() + 60
            while time.time() < deadline and command(port, "GET", "example:hello", password="pw") != str(done + 1):
                time.sleep(0.2)
            got = command(port, "GET", "example:hello", password="pw")
            w.send_signal(signal.SIGTERM)
            try:
                code = w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
                code = "killed"
            if got != str(done + 1):
                with open(os.path.join(tmp, name + ".log")) as f:
                    print(f.read()[-3000:])
            ok(got == str(done + 1), "the %s example worker ran its job against berth by URL" % name)
            ok(code == 0, "the %s example worker stops on SIGTERM (status %s)" % (name, code))
            done += 1
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


if __name__ == "__main__":
    main()
