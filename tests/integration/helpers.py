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


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    mcfs-master when mode is "external" (else the embedded master)."""

    def __init__(self, mode="embedded", segment_size="256M", extra=()):
        assert mode in ("embedded", "external")
        self.mode = mode
        self.segment_size = segment_size
        self.extra = list(extra)
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
                 "--http", f"127.0.0.1:{http_port}"],
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
