# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the mcfs integration tests: starting and stopping real
daemons (mcfs, mcfs-master) on 127.0.0.1 with their logs kept, reading
/proc/mounts, and a reference crc32c to check user.mcfs.checksum with.

Everything started here is stopped by PID and every mount is unmounted,
whatever happened in the test."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MiB = 1 << 20

# Seconds to wait for a mount to appear, and for a process to exit.
MOUNT_TIMEOUT = float(os.environ.get("MCFS_MOUNT_TIMEOUT", "30"))
EXIT_TIMEOUT = float(os.environ.get("MCFS_EXIT_TIMEOUT", "30"))
# A test that runs longer than this has hung (a FUSE request nobody answers):
# the watchdog kills its daemons so the test fails instead of blocking the run.
TEST_TIMEOUT = float(os.environ.get("MCFS_TEST_TIMEOUT", "240"))

SANITIZER_MARKS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "ERROR: UndefinedBehaviorSanitizer",
)


def build_dir():
    b = os.environ.get("MCFS_BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(REPO, b)


def binary(name):
    return os.path.join(build_dir(), "bin", name)


def _unescape_mount(s):
    # /proc/mounts writes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1 : i + 4].isdigit():
            out.append(chr(int(s[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mount_type(path):
    """The filesystem type mounted exactly at path, or None."""
    path = os.path.abspath(path)
    found = None
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and _unescape_mount(parts[1]) == path:
                found = parts[2]
    return found


def is_mounted(path):
    return mount_type(path) is not None


_ports_given = set()


def free_port():
    """A port free on 127.0.0.1 now, never one this run handed out before
    (a master's RPC and HTTP ports are asked for back to back)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1 that was not handed out already")


def wait_port(port, proc, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not listening on 127.0.0.1:{port} after {timeout:.0f}s")
        time.sleep(0.05)


def tail(path, limit=30000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read()
    except OSError as e:
        return f"(cannot read {path}: {e})"
    text = data.decode("utf-8", "replace")
    if size > limit:
        text = f"(last {limit} of {size} bytes)\n" + text
    return text


def sanitizer_report(text):
    return any(m in text for m in SANITIZER_MARKS)


class Proc:
    """A child process with its stdout+stderr in a log file."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log_text = None  # filled at stop, survives removal of the file
        self.killed = False
        self._log = open(log_path, "wb")
        self._log.write(("+ " + " ".join(argv) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def terminate(self, timeout=10):
        """SIGTERM, then SIGKILL. Returns a problem string or None."""
        problem = None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            if not self.wait_exit(timeout):
                problem = f"{self.name} ignored SIGTERM for {timeout}s; killed"
                self.kill()
        return problem

    def kill(self):
        if self.alive():
            self.killed = True
            self.proc.kill()
            self.proc.wait()

    def close_log(self):
        if not self._log.closed:
            self._log.close()
        self.log_text = tail(self.log_path)

    def text(self):
        return self.log_text if self.log_text is not None else tail(self.log_path)


class Node:
    """One mcfs node mounted on a fresh temp directory, with its own
    mcfs-master when mode is "external" (else the embedded master).
    master_extra: more mcfs-master options (external mode only)."""

    def __init__(self, mode="embedded", segment_size="256M", extra=(), master_extra=()):
        assert mode in ("embedded", "external")
        self.mode = mode
        self.segment_size = segment_size
        self.extra = list(extra)
        self.master_extra = list(master_extra)
        self.tmp = tempfile.mkdtemp(prefix="mcfs-it-", dir="/tmp")
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        self.master = None
        self.master_port = None
        self.listen_port = None
        self.daemon = None
        self.problems = []
        self.timed_out = False
        self._watchdog = None

    # -- start -------------------------------------------------------------
    def start(self):
        for b in ("mcfs",) + (("mcfs-master",) if self.mode == "external" else ()):
            if not os.access(binary(b), os.X_OK):
                raise RuntimeError(f"{binary(b)} is missing: build first (MCFS_BUILD={build_dir()})")
        args = [binary("mcfs"), self.mnt, "-f", "--segment-size", self.segment_size]
        if self.mode == "external":
            self.master_port = free_port()
            http_port = free_port()
            self.master = Proc(
                "mcfs-master",
                [binary("mcfs-master"), "--listen", f"127.0.0.1:{self.master_port}",
                 "--http", f"127.0.0.1:{http_port}"] + self.master_extra,
                os.path.join(self.tmp, "master.log"),
            )
            wait_port(self.master_port, self.master.proc, MOUNT_TIMEOUT, "mcfs-master")
            self.listen_port = free_port()
            args += ["--master", f"127.0.0.1:{self.master_port}",
                     "--listen", f"127.0.0.1:{self.listen_port}"]
        args += self.extra
        self.daemon = Proc("mcfs", args, os.path.join(self.tmp, "mcfs.log"))
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not is_mounted(self.mnt):
            if not self.daemon.alive():
                raise RuntimeError(
                    f"mcfs exited with {self.daemon.proc.returncode} before mounting {self.mnt}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.mnt} not in /proc/mounts after {MOUNT_TIMEOUT:.0f}s")
            time.sleep(0.05)
        if mount_type(self.mnt) is None or "fuse" not in mount_type(self.mnt):
            raise RuntimeError(f"{self.mnt} is mounted as {mount_type(self.mnt)}, not FUSE")
        self._watchdog = threading.Timer(TEST_TIMEOUT, self._hung)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def _hung(self):
        # Killing the daemon aborts the FUSE connection: the blocked request
        # fails with ENOTCONN and the test fails instead of hanging forever.
        self.timed_out = True
        for p in (self.daemon, self.master):
            if p is not None:
                p.kill()

    def procs(self):
        return [p for p in (self.daemon, self.master) if p is not None]

    # -- stop --------------------------------------------------------------
    def _unmount(self):
        if not is_mounted(self.mnt):
            return None
        last = ""
        for _ in range(50):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
            if r.returncode == 0 or not is_mounted(self.mnt):
                return None
            last = r.stderr.strip()
            if "busy" not in last.lower():
                break
            time.sleep(0.1)
        subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
        if is_mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        return f"fusermount3 -u {self.mnt} failed ({last}); lazily unmounted"

    def stop(self):
        """Unmount, stop every process, remove the temp dir. Never raises;
        returns the list of problems found (empty when all was clean)."""
        problems = []
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.timed_out:
            problems.append(f"test ran past {TEST_TIMEOUT:.0f}s (hung?); daemons were killed")
        try:
            if self.daemon is not None:
                died_early = not self.daemon.alive()
                if died_early and not self.timed_out:
                    problems.append(f"mcfs died during the test (exit {self.daemon.proc.returncode})")
                p = self._unmount()
                if p:
                    problems.append(p)
                if self.daemon.alive() and not self.daemon.wait_exit(EXIT_TIMEOUT):
                    problems.append(f"mcfs still running {EXIT_TIMEOUT:.0f}s after unmount")
                    p = self.daemon.terminate()
                    if p:
                        problems.append(p)
                rc = self.daemon.proc.returncode
                if rc != 0 and not died_early and not self.daemon.killed:
                    problems.append(f"mcfs exited with {rc} after a clean unmount (expected 0)")
                self.daemon.close_log()
                if sanitizer_report(self.daemon.text()):
                    problems.append("sanitizer report in the mcfs log")
            if self.master is not None:
                if not self.master.alive() and not self.master.killed:
                    problems.append(f"mcfs-master died during the test (exit {self.master.proc.returncode})")
                p = self.master.terminate()
                if p:
                    problems.append(p)
                rc = self.master.proc.returncode
                if rc not in (0, -signal.SIGTERM) and not self.master.killed:
                    problems.append(f"mcfs-master exited with {rc} on SIGTERM")
                self.master.close_log()
                if sanitizer_report(self.master.text()):
                    problems.append("sanitizer report in the mcfs-master log")
        finally:
            for p in self.procs():
                p.kill()
                p.close_log()
            if is_mounted(self.mnt):
                problems.append(f"{self.mnt} is still mounted; temp dir left in place")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        self.problems = problems
        return problems


# -- crc32c (Castagnoli), the reference for user.mcfs.checksum -------------
def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC32C
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# -- file helpers -----------------------------------------------------------
def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


# -- clusters: one master and several nodes on 127.0.0.1 --------------------
def _lazy_unmount(path):
    """Detach a mount whose daemon is dead or stopped (fusermount3 -uz)."""
    if is_mounted(path):
        subprocess.run(["fusermount3", "-uz", path], capture_output=True)
    if is_mounted(path):
        subprocess.run(["umount", "-l", path], capture_output=True)


def _wait_mounted(path, proc, what):
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while not is_mounted(path):
        if not proc.alive():
            raise RuntimeError(f"{what} exited with {proc.proc.returncode} before mounting {path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} not in /proc/mounts after {MOUNT_TIMEOUT:.0f}s")
        time.sleep(0.05)
    if "fuse" not in (mount_type(path) or ""):
        raise RuntimeError(f"{path} is mounted as {mount_type(path)}, not FUSE")


class ClusterNode:
    """One mcfs daemon of a Cluster: its own mount point, segment server
    port and --node-name. It can be killed (kill -9, then its dead mount is
    lazily detached), stopped and continued (SIGSTOP/SIGCONT), and started
    again with the same name, port and mount point. Every process it ran is
    kept (incarnations) so that all their logs reach a failure report."""

    def __init__(self, cluster, name, port, replicas=None, extra=()):
        self.cluster = cluster
        self.name = name
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.replicas = replicas
        self.extra = list(extra)
        self.mnt = os.path.join(cluster.tmp, name)
        os.mkdir(self.mnt)
        self.incarnations = []  # Proc per start, newest last
        self.stopped = False  # SIGSTOPped and not yet continued
        self.unmounted = False  # cleanly unmounted by the test

    @property
    def daemon(self):
        return self.incarnations[-1] if self.incarnations else None

    def argv(self):
        args = [binary("mcfs"), self.mnt, "-f",
                "--master", f"127.0.0.1:{self.cluster.master_port}",
                "--listen", self.addr,
                "--node-name", self.name,
                "--segment-size", self.cluster.segment_size]
        if self.replicas is not None:
            args += ["--replicas", str(self.replicas)]
        return args + self.cluster.extra + self.extra

    def start(self):
        """Start the daemon (again) and wait for its mount."""
        if self.daemon is not None and self.daemon.alive():
            raise RuntimeError(f"{self.name} is still running (pid {self.daemon.pid})")
        _lazy_unmount(self.mnt)
        n = len(self.incarnations)
        log = os.path.join(self.cluster.tmp, f"{self.name}.{n}.log")
        p = Proc(f"mcfs {self.name}" + (f" (start {n + 1})" if n else ""), self.argv(), log)
        self.incarnations.append(p)
        self.stopped = False
        self.unmounted = False
        _wait_mounted(self.mnt, p, f"mcfs {self.name}")
        return self

    def alive(self):
        return self.daemon is not None and self.daemon.alive()

    def kill(self):
        """kill -9 the daemon and lazily detach its dead mount."""
        p = self.daemon
        if self.stopped:
            self.cont()
        p.kill()
        _lazy_unmount(self.mnt)

    def stop(self):
        """SIGSTOP: the process stays, its sockets stay open, nothing answers."""
        os.kill(self.daemon.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        if self.stopped and self.daemon.alive():
            os.kill(self.daemon.pid, signal.SIGCONT)
        self.stopped = False

    def unmount(self, timeout=None):
        """Clean unmount (fusermount3 -u) and wait for the daemon to exit.
        Returns the daemon's exit status; raises when it does not exit."""
        timeout = EXIT_TIMEOUT if timeout is None else timeout
        r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
        if r.returncode != 0 and is_mounted(self.mnt):
            raise RuntimeError(f"fusermount3 -u {self.mnt}: {r.stderr.strip()}")
        self.unmounted = True
        if not self.daemon.wait_exit(timeout):
            raise RuntimeError(f"mcfs {self.name} still running {timeout:.0f}s after unmount")
        return self.daemon.proc.returncode

    def teardown(self):
        """Unmount, stop every incarnation, check exits and logs. Never
        raises; returns the problems found."""
        problems = []
        p = self.daemon
        if p is None:
            return problems
        try:
            self.cont()
            if p.killed:  # killed on purpose, or by the watchdog
                _lazy_unmount(self.mnt)
            elif not p.alive():
                if not self.unmounted:
                    problems.append(f"{self.name}: mcfs died during the test (exit {p.proc.returncode})")
                elif p.proc.returncode != 0:
                    problems.append(f"{self.name}: mcfs exited with {p.proc.returncode} after a clean unmount")
                _lazy_unmount(self.mnt)
            else:
                msg = None
                for _ in range(50):
                    r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
                    if r.returncode == 0 or not is_mounted(self.mnt):
                        msg = None
                        break
                    msg = r.stderr.strip()
                    if "busy" not in msg.lower():
                        break
                    time.sleep(0.1)
                if msg is not None:
                    problems.append(f"{self.name}: fusermount3 -u failed ({msg}); lazily unmounted")
                    _lazy_unmount(self.mnt)
                if not p.wait_exit(EXIT_TIMEOUT):
                    problems.append(f"{self.name}: mcfs still running {EXIT_TIMEOUT:.0f}s after unmount")
                    t = p.terminate()
                    if t:
                        problems.append(f"{self.name}: {t}")
                elif p.proc.returncode != 0:
                    problems.append(f"{self.name}: mcfs exited with {p.proc.returncode} after a clean unmount (expected 0)")
        finally:
            for q in self.incarnations:
                q.kill()
                q.close_log()
                if sanitizer_report(q.text()):
                    problems.append(f"{q.name}: sanitizer report in its log")
            _lazy_unmount(self.mnt)
        return problems


class Cluster:
    """An mcfs-master (--node-ttl short, for tests) and nodes named node-a,
    node-b, ... each with its own mount point and segment server port, all
    on 127.0.0.1 under one temp dir. stop() tears everything down by PID,
    whatever state the test left the nodes in (killed, SIGSTOPped,
    unmounted), and removes the temp dir. extra goes to every node,
    master_extra to the master."""

    mode = "cluster"  # for the log sections of a failure report

    def __init__(self, node_ttl="3s", segment_size="128M", extra=(), master_extra=()):
        self.node_ttl = node_ttl
        self.segment_size = segment_size
        self.extra = list(extra)
        self.master_extra = list(master_extra)
        self.tmp = tempfile.mkdtemp(prefix="mcfs-cl-", dir="/tmp")
        self.mnt = self.tmp  # what the failure report names
        self.master = None
        self.master_port = None
        self.http_port = None
        self.nodes = []
        self.old_masters = []  # killed by kill_master(), newest last
        self.timed_out = False
        self._watchdog = threading.Timer(TEST_TIMEOUT, self._hung)
        self._watchdog.daemon = True

    def start_master(self):
        for b in ("mcfs", "mcfs-master"):
            if not os.access(binary(b), os.X_OK):
                raise RuntimeError(f"{binary(b)} is missing: build first (MCFS_BUILD={build_dir()})")
        self.master_port = free_port()
        self.http_port = free_port()
        self.master = Proc(
            "mcfs-master",
            [binary("mcfs-master"), "--listen", f"127.0.0.1:{self.master_port}",
             "--http", f"127.0.0.1:{self.http_port}", "--node-ttl", self.node_ttl]
            + self.master_extra,
            os.path.join(self.tmp, "master.log"),
        )
        wait_port(self.master_port, self.master.proc, MOUNT_TIMEOUT, "mcfs-master")
        self._watchdog.start()
        return self

    def kill_master(self):
        """kill -9 the master; it is kept for the failure report."""
        self.master.kill()
        self.old_masters.append(self.master)

    def restart_master(self):
        """Start the master again on the same ports with the same options."""
        n = len(self.old_masters)
        self.master = Proc(
            f"mcfs-master (start {n + 1})", self.master.argv,
            os.path.join(self.tmp, f"master.{n}.log"),
        )
        wait_port(self.master_port, self.master.proc, MOUNT_TIMEOUT, "mcfs-master")
        return self

    def add_node(self, name=None, replicas=None, extra=(), start=True):
        name = name or f"node-{chr(ord('a') + len(self.nodes))}"
        n = ClusterNode(self, name, free_port(), replicas, extra)
        self.nodes.append(n)
        if start:
            n.start()
        return n

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def procs(self):
        out = list(self.old_masters)
        out += [self.master] if self.master is not None else []
        for n in self.nodes:
            out += n.incarnations
        return out

    def _hung(self):
        self.timed_out = True
        for n in self.nodes:
            if n.daemon is not None:
                try:
                    n.cont()
                except OSError:
                    pass
        for p in self.procs():
            p.kill()

    def stop(self):
        problems = []
        self._watchdog.cancel()
        if self.timed_out:
            problems.append(f"test ran past {TEST_TIMEOUT:.0f}s (hung?); daemons were killed")
        try:
            # Continue every stopped node first: a stopped node would hold
            # up the clean unmounts of the others.
            for n in self.nodes:
                try:
                    n.cont()
                except OSError:
                    pass
            for n in reversed(self.nodes):
                problems += n.teardown()
            if self.master is not None:
                m = self.master
                if not m.alive() and not m.killed:
                    problems.append(f"mcfs-master died during the test (exit {m.proc.returncode})")
                t = m.terminate()
                if t:
                    problems.append(t)
                if m.proc.returncode not in (0, -signal.SIGTERM) and not m.killed:
                    problems.append(f"mcfs-master exited with {m.proc.returncode} on SIGTERM")
                m.close_log()
                if sanitizer_report(m.text()):
                    problems.append("sanitizer report in the mcfs-master log")
        finally:
            for p in self.procs():
                p.kill()
                p.close_log()
            still = [n.mnt for n in self.nodes if is_mounted(n.mnt)]
            if still:
                problems.append(f"still mounted: {' '.join(still)}; temp dir left in place")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


def replicas_of(path):
    """user.mcfs.replicas as a list of (node, addr, tier, state) tuples."""
    text = os.getxattr(path, "user.mcfs.replicas").decode()
    return [tuple(line.split()) for line in text.splitlines() if line.strip()]


def wait_for(cond, timeout, what, interval=0.2):
    """Poll cond() until it returns something true; return that. Fails
    (AssertionError) after timeout seconds, naming what was awaited. A
    deadline is for hangs, never a measure: make it generous."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last_exc = None
        except OSError as e:
            last_exc = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_exc})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(interval)


# A child process that reads files and prints one line per path: the
# sha256 and size of the content, or the errno name of the failure. Reads
# that hang (a stopped peer nobody times out) are killed with the child
# instead of blocking the test: FUSE waits are killable.
_DIGEST_CHILD = r"""
import errno, hashlib, json, os, sys
for path in json.load(sys.stdin):
    try:
        h = hashlib.sha256()
        n = 0
        with open(path, "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
                n += len(b)
        out = [path, h.hexdigest(), n]
    except OSError as e:
        out = [path, errno.errorcode.get(e.errno, str(e.errno)), -1]
    print(json.dumps(out), flush=True)
"""


def digests(paths, timeout=60):
    """{path: (sha256 hex or errno name, size)} for every path, read in a
    child process that is killed after timeout seconds; paths it did not
    get to map to ("TIMEOUT", -1)."""
    import json

    paths = list(paths)
    p = subprocess.Popen(["/usr/bin/python3", "-c", _DIGEST_CHILD], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(json.dumps(paths), timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    got = {}
    for line in out.splitlines():
        path, d, n = json.loads(line)
        got[path] = (d, n)
    for path in paths:
        got.setdefault(path, ("TIMEOUT", -1))
    return got
