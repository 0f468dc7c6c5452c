# SPDX-License-Identifier: Apache-2.0
"""A master killed (kill -9) and started again loses nothing published.

Directories, their xattrs and symlinks come back from the master's
--data-dir; every file comes back from the nodes, which report the files
they hold replicas of (their catalogs) when they reconnect. The nodes'
mounts stay up throughout: an application sees a pause, not an error.

Waits poll with generous deadlines; nothing passes or fails on timing."""

import errno
import hashlib
import os
import random
import time

import pytest

from helpers import read_file, write_file

DEADLINE = 60


def sha(data):
    return hashlib.sha256(data).hexdigest()


def build_tree(cluster, rnd, nfiles):
    """Nested directories with xattrs, files written through every node
    (some by temp file + rename, some unlinked again), an empty directory
    and a symlink. Returns what must be there afterwards."""
    a = cluster.nodes[0]
    want = {}
    dirs = []
    for i in range(4):
        for j in range(3):
            d = f"m{i}/layer{j}"
            os.makedirs(os.path.join(a.mnt, d), exist_ok=True)
            dirs.append(d)
        os.setxattr(os.path.join(a.mnt, f"m{i}"), "user.model", f"model-{i}".encode())
    os.makedirs(os.path.join(a.mnt, "empty/inner"))
    os.setxattr(os.path.join(a.mnt, "empty/inner"), "user.keep", b"yes")
    os.chmod(os.path.join(a.mnt, "empty"), 0o750)
    os.symlink("m0/layer0", os.path.join(a.mnt, "latest"))
    for k in range(nfiles):
        node = cluster.nodes[k % len(cluster.nodes)]
        rel = f"{dirs[k % len(dirs)]}/blk_{k:05d}"
        data = rnd.randbytes(rnd.choice([0, 100, 4096, 70000, 300000]))
        path = os.path.join(node.mnt, rel)
        if k % 3 == 0:
            tmp = path + ".tmp"
            write_file(tmp, data)
            os.rename(tmp, path)
        else:
            write_file(path, data)
        if k % 7 == 0:
            os.setxattr(path, "user.tokens", str(k).encode())
        want[rel] = sha(data)
    for k in range(0, nfiles, 10):
        rel = f"{dirs[k % len(dirs)]}/blk_{k:05d}"
        os.unlink(os.path.join(a.mnt, rel))
        del want[rel]
    return want


def check_tree(node, want, nfiles):
    seen = {}
    for root, _, files in os.walk(node.mnt):
        for f in files:
            p = os.path.join(root, f)
            if os.path.islink(p):
                continue
            seen[os.path.relpath(p, node.mnt)] = sha(read_file(p))
    assert seen == want
    for i in range(4):
        assert os.getxattr(os.path.join(node.mnt, f"m{i}"), "user.model") == f"model-{i}".encode()
    assert os.getxattr(os.path.join(node.mnt, "empty/inner"), "user.keep") == b"yes"
    assert os.stat(os.path.join(node.mnt, "empty")).st_mode & 0o777 == 0o750
    assert os.readlink(os.path.join(node.mnt, "latest")) == "m0/layer0"
    for k in range(0, nfiles, 7):
        rel = next((r for r in want if r.endswith(f"blk_{k:05d}")), None)
        if rel is not None:
            assert os.getxattr(os.path.join(node.mnt, rel), "user.tokens") == str(k).encode()


def wait_tree(node, want, nfiles):
    """Until every node has reported its files, some may still be missing:
    poll until the tree is whole (it must become whole)."""
    end = time.monotonic() + DEADLINE
    while True:
        try:
            check_tree(node, want, nfiles)
            return
        except (AssertionError, OSError):
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("replicas", [1, 2])
def test_master_restart_loses_nothing(cluster, tmp_path, replicas):
    c = cluster(n=3, replicas=replicas, master_extra=["--data-dir", str(tmp_path / "data")])
    rnd = random.Random(6 + replicas)
    nfiles = 150
    want = build_tree(c, rnd, nfiles)
    for n in c.nodes:
        check_tree(n, want, nfiles)
    # Nodes' catalogs trail the master by one SYNC (50 ms): an unlink or
    # rename that a crash follows closer than that may be undone. Published
    # data is never lost, and that is what this test is about.
    time.sleep(0.5)

    c.kill_master()
    c.restart_master()

    for n in c.nodes:
        wait_tree(n, want, nfiles)
    # The cluster goes on: new files, new directories, through every node.
    for i, n in enumerate(c.nodes):
        data = rnd.randbytes(50000)
        os.makedirs(os.path.join(n.mnt, f"after/{i}"))
        write_file(os.path.join(n.mnt, f"after/{i}/new"), data)
        want[f"after/{i}/new"] = sha(data)
    for n in c.nodes:
        check_tree(n, want, nfiles)
    time.sleep(0.5)

    # And again: what was rebuilt is itself rebuilt after a second restart.
    c.kill_master()
    c.restart_master()
    for n in c.nodes:
        wait_tree(n, want, nfiles)


def test_restart_during_io_is_a_pause(cluster, tmp_path):
    """Files written and read while the master is down and coming back:
    every call finishes (the daemon retries), none fails."""
    c = cluster(n=2, replicas=2, master_extra=["--data-dir", str(tmp_path / "data")])
    a, b = c.nodes
    rnd = random.Random(11)
    data = {f"k{i}": rnd.randbytes(20000) for i in range(20)}
    for k, v in data.items():
        write_file(os.path.join(a.mnt, k), v)
    c.kill_master()
    pid = os.fork()
    if pid == 0:  # the application: writes and reads while there is no master
        try:
            for k, v in data.items():
                write_file(os.path.join(b.mnt, k + ".new"), v)
                assert read_file(os.path.join(b.mnt, k)) == v
            os._exit(0)
        except BaseException:
            os._exit(1)
    time.sleep(1.0)
    c.restart_master()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    for n in c.nodes:
        for k, v in data.items():
            assert read_file(os.path.join(n.mnt, k)) == v
            assert read_file(os.path.join(n.mnt, k + ".new")) == v


def test_data_dir_is_exclusive(cluster, tmp_path):
    """Two masters on one --data-dir would corrupt it: the second refuses."""
    import subprocess

    from helpers import binary, free_port

    c = cluster(n=1, master_extra=["--data-dir", str(tmp_path / "data")])
    r = subprocess.run([binary("mcfs-master"), "--listen", f"127.0.0.1:{free_port()}",
                        "--http", "off", "--data-dir", str(tmp_path / "data")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "in use" in r.stderr
    assert c.master.alive()
    _ = errno


def test_reads_wait_for_the_rebuild(cluster, tmp_path):
    """A node that is slow to come back after a master restart: until it has
    reported, a read of a file only it holds waits (the master answers
    "rebuilding", the daemon asks again) instead of failing with ENOENT."""
    c = cluster(n=2, replicas=1, master_extra=["--data-dir", str(tmp_path / "data")])
    a, b = c.nodes
    rnd = random.Random(12)
    data = {f"only-a/k{i}": rnd.randbytes(30000) for i in range(10)}
    os.makedirs(os.path.join(a.mnt, "only-a"))
    for k, v in data.items():
        write_file(os.path.join(a.mnt, k), v)
    time.sleep(0.5)
    a.stop()  # SIGSTOP: it cannot report until continued
    c.kill_master()
    c.restart_master()
    pid = os.fork()
    if pid == 0:  # the application on b: every read must succeed
        try:
            for k, v in data.items():
                assert read_file(os.path.join(b.mnt, k)) == v
            os._exit(0)
        except BaseException:
            os._exit(1)
    time.sleep(1.0)
    a.cont()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    for k, v in data.items():
        assert read_file(os.path.join(a.mnt, k)) == v


def test_put_in_flight_across_a_restart_fails_cleanly(cluster, tmp_path):
    """A file being written when the master restarts: the new master knows
    nothing of that put and may hand its staging range out again, so the
    writer gets EIO (at a later write or at close) and nothing half-written
    is ever published, while files written after the restart are intact.

    The writer is a child process: the test starts the new master, and an
    exec closes every open file, which would make the kernel flush (publish)
    the file being written first."""
    c = cluster(n=1, master_extra=["--data-dir", str(tmp_path / "data")])
    (a,) = c.nodes
    rnd = random.Random(13)
    path = os.path.join(a.mnt, "in-flight")
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.close(ready_r)
            os.close(go_w)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"a" * 300000)
            os.write(ready_w, b"1")
            os.read(go_r, 1)
            try:
                os.write(fd, b"b" * 300000)
                os.close(fd)
                code = 0  # no error: wrong
            except OSError as e:
                code = 1 if e.errno == errno.EIO else 2
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    assert os.read(ready_r, 1) == b"1"
    c.kill_master()
    c.restart_master()
    others = {f"after{i}": rnd.randbytes(300000) for i in range(8)}
    for k, v in others.items():  # new puts: they may get the old staging range
        write_file(os.path.join(a.mnt, k), v)
    os.write(go_w, b"1")
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1, \
        f"the writer should get EIO, got exit status {status}"
    for k, v in others.items():
        assert read_file(os.path.join(a.mnt, k)) == v
    # Nothing of the failed write became visible (the name itself may
    # remain as the empty file the create made, never with its bytes).
    if os.path.exists(path):
        assert os.path.getsize(path) == 0
