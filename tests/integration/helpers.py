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
# The same for a test on an HACluster (etcd, several masters, takeovers).
HA_TEST_TIMEOUT = float(os.environ.get("MCFS_HA_TEST_TIMEOUT", str(2 * TEST_TIMEOUT)))

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
                if died_early and not self.timed_out and not self.daemon.killed:
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


# -- etcd and a highly available cluster (masters elected through etcd) ------
ETCD_BIN = os.environ.get("MCFS_ETCD", "/usr/bin/etcd")


def _http(method, url, body=None, timeout=5.0):
    """(status, body bytes) of one HTTP request, never through a proxy
    (an http_proxy in the environment must not see 127.0.0.1). Raises
    OSError (urllib.error.URLError is one) when nothing answers."""
    import http.client
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()
    except http.client.HTTPException as e:  # a torn or garbled reply
        raise OSError(f"{method} {url}: {e!r}") from e


def _log_lines(proc, n=5):
    """The last n lines of a process's log, for an error message."""
    lines = [ln for ln in proc.text().splitlines() if ln.strip() and not ln.startswith("+ ")]
    return " | ".join(lines[-n:])


class Etcd:
    """A one-member etcd (/usr/bin/etcd, Debian's etcd-server) on two free
    127.0.0.1 ports (client and peer) with a fresh data dir (on /dev/shm
    when it can: etcd fsyncs every write). url is http://127.0.0.1:PORT,
    endpoint 127.0.0.1:PORT.

    kill() is kill -9, stop() is SIGTERM (both by PID, waiting for the
    exit), restart() starts it again on the same ports and the same data
    dir. Every process it ran is kept (incarnations) with its own log so
    that a failure report shows them all; teardown() stops it by PID and
    removes its files. put()/get()/range() speak the v3 JSON gateway."""

    mode = "etcd"  # for the log sections of a failure report

    def __init__(self, tmp=None, name="etcd"):
        if not os.access(ETCD_BIN, os.X_OK):
            raise RuntimeError(f"{ETCD_BIN} is missing (apt-get install etcd-server)")
        self.name = name
        self.own_tmp = tmp is None
        self.tmp = tempfile.mkdtemp(prefix="mcfs-etcd-", dir="/tmp") if tmp is None else tmp
        self.mnt = self.tmp  # what a failure report names
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.data_root = tempfile.mkdtemp(prefix="mcfs-etcd-data-", dir=shm or self.tmp)
        self.data_dir = os.path.join(self.data_root, "data")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"127.0.0.1:{self.client_port}"
        self.url = f"http://{self.endpoint}"
        self.peer_url = f"http://127.0.0.1:{self.peer_port}"
        self.incarnations = []  # Proc per start, newest last
        self.down_on_purpose = False  # kill()/stop() by the test
        self.stopped = False  # SIGSTOPped and not yet continued

    @property
    def proc(self):
        return self.incarnations[-1] if self.incarnations else None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def argv(self):
        return [ETCD_BIN, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f"{self.name}={self.peer_url}",
                "--initial-cluster-state", "new", "--logger", "zap"]

    def procs(self):
        return list(self.incarnations)

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def start(self, timeout=None):
        """Start etcd (again: same ports, same data dir) and wait until it
        serves: /health says true and a range read works."""
        if self.alive():
            raise RuntimeError(f"etcd is still running (pid {self.pid})")
        n = len(self.incarnations)
        p = Proc("etcd" + (f" (start {n + 1})" if n else ""), self.argv(),
                 os.path.join(self.tmp, f"etcd.{n}.log"))
        self.incarnations.append(p)
        self.down_on_purpose = False
        self.stopped = False
        self.wait_ready(MOUNT_TIMEOUT if timeout is None else timeout)
        return self

    def restart(self, timeout=None):
        """Start again on the same ports and data dir (SIGTERM first when
        it is still running)."""
        if self.alive():
            self.stop()
        return self.start(timeout)

    def ready(self):
        """True when etcd has a leader and answers a range read."""
        import json

        try:
            status, body = _http("GET", self.url + "/health", timeout=2)
            if status != 200 or json.loads(body).get("health") not in ("true", True):
                return False
            status, _ = _http("POST", self.url + "/v3/kv/range",
                              json.dumps({"key": _b64("mcfs-probe")}).encode(), timeout=2)
            return status == 200
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.ready():
            p = self.proc
            if not p.alive():
                raise RuntimeError(f"etcd exited with {p.proc.returncode} before serving on "
                                   f"{self.url}: {_log_lines(p)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd not serving on {self.url} after {timeout:.0f}s: "
                                   f"{_log_lines(p)}")
            time.sleep(0.1)

    def kill(self):
        """kill -9 by PID and wait for it."""
        self.cont()
        self.down_on_purpose = True
        if self.proc is not None:
            self.proc.kill()

    def stop(self, timeout=10):
        """SIGTERM by PID and wait for the exit (SIGKILL after timeout).
        Returns a problem string or None."""
        self.cont()
        self.down_on_purpose = True
        return self.proc.terminate(timeout) if self.proc is not None else None

    def pause(self):
        """SIGSTOP: the sockets stay open, nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        if self.stopped and self.alive():
            os.kill(self.pid, signal.SIGCONT)
        self.stopped = False

    # -- the v3 JSON gateway (keys and values are base64 in JSON) ----------
    def _call(self, path, req, timeout=5):
        import json

        status, body = _http("POST", self.url + path, json.dumps(req).encode(), timeout)
        if status != 200:
            raise RuntimeError(f"etcd {path}: HTTP {status}: {body[:300]!r}")
        return json.loads(body)

    def put(self, key, value):
        """Store value (str or bytes) at key; returns the new revision."""
        r = self._call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(r["header"]["revision"])

    def get(self, key):
        """The value (bytes) at key, or None."""
        kvs = self._call("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        return _unb64(kvs[0].get("value", "")) if kvs else None

    def range(self, prefix):
        """{key (str): value (bytes)} of every key starting with prefix."""
        p = prefix.encode() if isinstance(prefix, str) else prefix
        end = bytearray(p)
        while end and end[-1] == 0xFF:
            end.pop()
        if end:
            end[-1] += 1
        req = {"key": _b64(p), "range_end": _b64(bytes(end) if end else b"\0")}
        kvs = self._call("/v3/kv/range", req).get("kvs", [])
        return {_unb64(kv["key"]).decode("utf-8", "replace"): _unb64(kv.get("value", ""))
                for kv in kvs}

    def teardown(self):
        """Stop by PID, close the logs, remove the data dir (and the temp
        dir when it made its own). Never raises; returns the problems."""
        problems = []
        try:
            self.cont()
            p = self.proc
            if p is not None:
                if not p.alive() and not self.down_on_purpose and not p.killed:
                    problems.append(f"etcd died during the test (exit {p.proc.returncode})")
                elif p.alive():
                    t = p.terminate()
                    if t:
                        problems.append(t)
                    elif p.proc.returncode not in (0, -signal.SIGTERM):
                        problems.append(f"etcd exited with {p.proc.returncode} on SIGTERM")
        finally:
            for q in self.incarnations:
                q.kill()
                q.close_log()
            shutil.rmtree(self.data_root, ignore_errors=True)
            if self.own_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


def _b64(s):
    import base64

    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def _unb64(s):
    import base64

    return base64.b64decode(s)


# Roles GET /role answers (docs/cluster.md, "Monitoring").
LEADER = "leader"
STANDBY = "standby"


class HAMaster:
    """One mcfs-master of an HACluster: its own --listen and --http ports,
    campaigning through the cluster's etcd. It can be killed (kill -9),
    stopped and continued (SIGSTOP/SIGCONT) and started again on the same
    ports; every process it ran is kept (incarnations) for the report.
    may_exit: the test accepts that it exits on its own (e.g. a deposed
    leader that quits); a crash (a signal) is still a problem."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.listen_port = free_port()
        self.http_port = free_port()
        self.addr = f"127.0.0.1:{self.listen_port}"
        self.incarnations = []
        self.stopped = False
        self.may_exit = False
        self.failed_start = None  # the incarnation whose start() raised (reported then)

    def __repr__(self):
        return f"<{self.name} rpc {self.addr} http {self.http_port}>"

    @property
    def proc(self):
        return self.incarnations[-1] if self.incarnations else None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def argv(self):
        c = self.cluster
        return [binary("mcfs-master"),
                "--listen", self.addr, "--http", f"127.0.0.1:{self.http_port}",
                "--etcd", c.etcd.url, "--cluster", c.name, "--advertise", self.addr,
                "--node-ttl", c.node_ttl] + c.master_extra

    def start(self):
        """Start (again, same ports) and wait for its HTTP port: a standby
        serves /role, maybe not RPC."""
        if self.alive():
            raise RuntimeError(f"{self.name} is still running (pid {self.pid})")
        n = len(self.incarnations)
        p = Proc(f"mcfs-master {self.name}" + (f" (start {n + 1})" if n else ""), self.argv(),
                 os.path.join(self.cluster.tmp, f"{self.name}.{n}.log"))
        self.incarnations.append(p)
        self.stopped = False
        try:
            wait_port(self.http_port, p.proc, MOUNT_TIMEOUT, f"mcfs-master {self.name}")
        except RuntimeError as e:
            self.failed_start = p
            time.sleep(0.1)  # let the log catch up
            raise RuntimeError(f"{e}: {_log_lines(p)}") from None
        return self

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def role(self, timeout=2.0):
        """GET /role, stripped ("leader", "standby", ...), or None when it
        does not answer (dead, stopped, not listening yet)."""
        try:
            status, body = _http("GET", f"http://127.0.0.1:{self.http_port}/role",
                                 timeout=timeout)
        except OSError:
            return None
        return body.decode("utf-8", "replace").strip() if status == 200 else None

    def health(self, timeout=2.0):
        """The HTTP status of GET /health (200 serving as leader, 503
        otherwise), or None when it does not answer."""
        try:
            return _http("GET", f"http://127.0.0.1:{self.http_port}/health", timeout=timeout)[0]
        except OSError:
            return None

    def kill(self):
        if self.proc is not None:
            if self.stopped:
                self.cont()
            self.proc.kill()

    def stop(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        if self.stopped and self.alive():
            os.kill(self.pid, signal.SIGCONT)
        self.stopped = False

    def teardown(self):
        """SIGTERM by PID and check the exit. Never raises."""
        problems = []
        p = self.proc
        if p is None:
            return problems
        try:
            self.cont()
            if not p.alive() and not p.killed:
                rc = p.proc.returncode
                if p is self.failed_start:
                    pass  # the test failed on it already
                elif not self.may_exit:
                    problems.append(f"{self.name}: mcfs-master died during the test (exit {rc})")
                elif rc < 0:
                    problems.append(f"{self.name}: mcfs-master killed by signal {-rc}")
            elif p.alive():
                t = p.terminate()
                if t:
                    problems.append(f"{self.name}: {t}")
                elif p.proc.returncode not in (0, -signal.SIGTERM):
                    problems.append(f"{self.name}: mcfs-master exited with "
                                    f"{p.proc.returncode} on SIGTERM")
        finally:
            for q in self.incarnations:
                q.kill()
                q.close_log()
                if sanitizer_report(q.text()):
                    problems.append(f"{q.name}: sanitizer report in its log")
        return problems


class HAClusterNode(ClusterNode):
    """A ClusterNode that finds its master through etcd
    (--master etcd://HOST:PORT/NAME) and follows leader changes."""

    def argv(self):
        args = super().argv()
        args[args.index("--master") + 1] = self.cluster.master_url
        return args


class HACluster:
    """A highly available cluster on 127.0.0.1 under one temp dir: one etcd
    (Etcd), masters master-0, master-1, ... (each with its own --listen and
    --http ports, --etcd, --cluster name, --advertise its RPC address,
    --node-ttl short) and nodes node-a, node-b, ... with --master
    etcd://127.0.0.1:PORT/NAME. The same shape as Cluster (nodes, node(),
    add_node(), procs(), stop()) so that the tests' helpers work on both.

    stop() tears everything down by PID whatever state the test left it in
    (killed, SIGSTOPped, etcd down): the nodes first (unmounted), then the
    standbys, the leader, and etcd last."""

    mode = "ha cluster"  # for the log sections of a failure report

    def __init__(self, name="mcfs-it", node_ttl="3s", segment_size="128M", extra=(),
                 master_extra=(), timeout=None):
        self.name = name
        self.node_ttl = node_ttl
        self.segment_size = segment_size
        self.extra = list(extra)
        self.master_extra = list(master_extra)
        self.tmp = tempfile.mkdtemp(prefix="mcfs-ha-", dir="/tmp")
        self.mnt = self.tmp  # what the failure report names
        self.master_port = None  # no fixed master: ClusterNode.argv is rewritten
        self.etcd = None
        self.masters = []
        self.nodes = []
        self.timed_out = False
        self.timeout = HA_TEST_TIMEOUT if timeout is None else timeout
        self._watchdog = threading.Timer(self.timeout, self._hung)
        self._watchdog.daemon = True

    @property
    def master_url(self):
        return f"etcd://{self.etcd.endpoint}/{self.name}"

    # -- start -------------------------------------------------------------
    def start_etcd(self):
        self.etcd = Etcd(tmp=self.tmp)
        if not self._watchdog.is_alive():
            self._watchdog.start()
        self.etcd.start()
        return self.etcd

    def add_master(self, start=True):
        for b in ("mcfs", "mcfs-master"):
            if not os.access(binary(b), os.X_OK):
                raise RuntimeError(f"{binary(b)} is missing: build first "
                                   f"(MCFS_BUILD={build_dir()})")
        m = HAMaster(self, f"master-{len(self.masters)}")
        self.masters.append(m)
        if start:
            m.start()
        return m

    def start_masters(self, count, timeout=60):
        """Start count masters one after the other: the first must become
        the leader, each later one a standby."""
        for i in range(count):
            m = self.add_master()
            if i == 0:
                self.wait_leader(timeout)
            else:
                wait_for(lambda: m.role() == STANDBY or (not m.alive() and "exited"), timeout,
                         f"{m.name} to answer /role {STANDBY}")
                if not m.alive():
                    raise RuntimeError(f"{m.name} exited with {m.proc.proc.returncode}: "
                                       f"{_log_lines(m.proc)}")
        return self

    def add_node(self, name=None, replicas=None, extra=(), start=True):
        name = name or f"node-{chr(ord('a') + len(self.nodes))}"
        n = HAClusterNode(self, name, free_port(), replicas, extra)
        self.nodes.append(n)
        if start:
            n.start()
        return n

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    # -- roles -------------------------------------------------------------
    def role(self, m):
        """m's GET /role, or None when it does not answer."""
        return m.role()

    def leaders(self):
        """The masters (running and not stopped) whose /role is leader."""
        return [m for m in self.masters if m.alive() and not m.stopped and m.role() == LEADER]

    def leader(self):
        """The one master whose /role is leader; None when there is none
        (or, split brain, more than one)."""
        ls = self.leaders()
        return ls[0] if len(ls) == 1 else None

    def standbys(self):
        return [m for m in self.masters if m.alive() and not m.stopped and m.role() == STANDBY]

    def wait_leader(self, timeout=60, exclude=()):
        """Poll until exactly one master answers leader (not one of exclude,
        a master or a list of them) and return it."""
        exclude = [exclude] if isinstance(exclude, HAMaster) else list(exclude)

        def one():
            ls = self.leaders()
            return ls[0] if len(ls) == 1 and ls[0] not in exclude else None

        try:
            return wait_for(one, timeout, "one master to answer /role leader"
                            + (f" (not {', '.join(m.name for m in exclude)})" if exclude else ""))
        except AssertionError as e:
            seen = ", ".join(f"{m.name}: {m.role() if m.alive() and not m.stopped else 'down'}"
                             for m in self.masters)
            raise AssertionError(f"{e}; roles now: {seen}") from None

    def kill_master(self, m):
        """kill -9 a master (by PID); its processes stay for the report."""
        m.kill()

    def restart_master(self, m):
        """Start m again on the same ports with the same options."""
        return m.start()

    def stop_master(self, m):
        """SIGSTOP: its sockets stay open, nothing answers."""
        m.stop()

    def cont_master(self, m):
        m.cont()

    # -- stop --------------------------------------------------------------
    def procs(self):
        out = list(self.etcd.incarnations) if self.etcd is not None else []
        for m in self.masters:
            out += m.incarnations
        for n in self.nodes:
            out += n.incarnations
        return out

    def _hung(self):
        self.timed_out = True
        for x in self.nodes + self.masters + ([self.etcd] if self.etcd else []):
            try:
                x.cont()
            except OSError:
                pass
        for p in self.procs():
            p.kill()

    def stop(self):
        problems = []
        self._watchdog.cancel()
        if self.timed_out:
            problems.append(f"test ran past {self.timeout:.0f}s (hung?); daemons were killed")
        try:
            # Continue everything first: a stopped master or node would hold
            # up the clean unmounts.
            for x in self.nodes + self.masters + ([self.etcd] if self.etcd else []):
                try:
                    x.cont()
                except OSError:
                    pass
            for n in reversed(self.nodes):
                problems += n.teardown()
            # Standbys before the leader: no needless takeover on the way out.
            leader = [m for m in self.masters if m.alive() and m.role() == LEADER]
            for m in [m for m in self.masters if m not in leader] + leader:
                problems += m.teardown()
            if self.etcd is not None:
                problems += self.etcd.teardown()
        finally:
            for p in self.procs():
                p.kill()
                p.close_log()
            still = [n.mnt for n in self.nodes if is_mounted(n.mnt)]
            if still:
                problems.append(f"still mounted: {' '.join(still)}; temp dir left in place")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
            if self.etcd is not None:
                shutil.rmtree(self.etcd.data_root, ignore_errors=True)
        return problems
