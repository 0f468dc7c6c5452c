# SPDX-License-Identifier: Apache-2.0
"""Master high availability through etcd: masters started with --etcd
--cluster --advertise campaign for leadership; GET /role answers "leader"
on the elected one and "standby" on the others; nodes find the leader with
--master etcd://HOST:PORT/NAME and follow leader changes. A new leader
rebuilds its state from the nodes' reports and from what the old leader
stored in etcd (directories, xattrs, symlinks).

- test_etcd_harness: the test harness alone (no mcfs): an etcd on free
  ports serves the v3 JSON gateway, keeps its keys across kill -9 and
  SIGTERM restarts on the same data dir, and is torn down by PID;
- test_leader_killed_standby_takes_over: 2 masters, 3 nodes, 1,000
  replica_num=2 files in nested directories with xattrs on files and
  directories (an empty directory with an xattr, a symlink, a mode);
  kill -9 of the leader: the standby becomes leader, every file reads back
  bit-exact through every node, every directory, xattr and symlink is
  there, new writes work; the old leader started again is a standby;
- test_stopped_leader_is_fenced: the leader SIGSTOPped until the standby
  has taken over (I/O started meanwhile finishes through the new leader),
  then continued: nothing it says is accepted, every node keeps reading
  what was last written through any node, and it ends up not serving as
  leader (standby, or it exits);
- test_etcd_restart_under_load: etcd killed (-9) and stopped (SIGTERM) and
  started again on its data dir while a writer/reader runs through every
  node: no application call fails, and everything written reads back.

Nothing passes or fails on timing: waits (a takeover, a rebuild) poll with
deadlines many times longer than needed; whole-tree reads run in a child
process killed at its deadline."""

import hashlib
import os
import random
import threading
import time

import pytest

from helpers import ETCD_BIN, LEADER, STANDBY, Etcd, digests, read_file, wait_for, write_file

pytestmark = pytest.mark.skipif(
    not os.access(ETCD_BIN, os.X_OK),
    reason=f"{ETCD_BIN} is missing: the HA tests need etcd (apt-get install etcd-server)")

# Deadline for a takeover, a rebuild, a role change: generous, for hangs.
DEADLINE = 60
# Deadline for a child process reading a whole tree through one node.
READ_DEADLINE = 120


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Tree:
    """What the test made through the nodes: files (relative path ->
    (sha256, size)), directories (every one, empty ones too), their modes,
    xattrs on files and directories, symlinks. problems(node) lists what a
    node does not show as made; check() and wait_whole() use it."""

    def __init__(self):
        self.files = {}
        self.dirs = set()
        self.modes = {}
        self.xattrs = {}  # rel -> {name: value}, files and directories
        self.links = {}

    def mkdir(self, node, rel, mode=None):
        os.makedirs(os.path.join(node.mnt, rel), exist_ok=True)
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            self.dirs.add("/".join(parts[:i]))
        if mode is not None:
            os.chmod(os.path.join(node.mnt, rel), mode)
            self.modes[rel] = mode

    def write(self, node, rel, data):
        write_file(os.path.join(node.mnt, rel), data)
        self.files[rel] = (sha(data), len(data))

    def setxattr(self, node, rel, name, value):
        os.setxattr(os.path.join(node.mnt, rel), name, value)
        self.xattrs.setdefault(rel, {})[name] = value

    def unlink(self, node, rel):
        os.unlink(os.path.join(node.mnt, rel))
        self.files.pop(rel, None)
        self.links.pop(rel, None)
        self.xattrs.pop(rel, None)

    def symlink(self, node, rel, target):
        os.symlink(target, os.path.join(node.mnt, rel))
        self.links[rel] = target

    def problems(self, node, limit=8):
        """What node does not show as made (at most limit of each kind;
        empty when the tree is whole)."""
        out = []
        dirs, files, links = set(), set(), set()
        for root, dnames, fnames in os.walk(node.mnt):
            for d in dnames:
                p = os.path.join(root, d)
                (links if os.path.islink(p) else dirs).add(os.path.relpath(p, node.mnt))
            for f in fnames:
                p = os.path.join(root, f)
                (links if os.path.islink(p) else files).add(os.path.relpath(p, node.mnt))
        for what, got, want in (("directories", dirs, self.dirs),
                                ("files", files, set(self.files)),
                                ("symlinks", links, set(self.links))):
            if got != want:
                out.append(f"{node.name}: {what} missing {sorted(want - got)[:limit]}, "
                           f"extra {sorted(got - want)[:limit]}")
        paths = {os.path.join(node.mnt, r): r for r in sorted(self.files)}
        got = digests(paths, READ_DEADLINE)
        bad = [(r, got[p], self.files[r]) for p, r in paths.items() if got[p] != self.files[r]]
        if bad:
            out.append(f"{node.name}: {len(bad)} files not bit-exact, e.g. (file, got, want) "
                       f"{bad[:limit]}")
        for rel, xs in sorted(self.xattrs.items()):
            for name, value in xs.items():
                try:
                    v = os.getxattr(os.path.join(node.mnt, rel), name)
                except OSError as e:
                    v = f"error {e.strerror}"
                if v != value:
                    out.append(f"{node.name}: {rel} xattr {name} is {v!r}, want {value!r}")
        for rel, mode in self.modes.items():
            try:
                m = os.stat(os.path.join(node.mnt, rel)).st_mode & 0o7777
            except OSError as e:
                m = f"error {e.strerror}"
            if m != mode:
                out.append(f"{node.name}: {rel} mode {m}, want {oct(mode)}")
        for rel, target in self.links.items():
            try:
                t = os.readlink(os.path.join(node.mnt, rel))
            except OSError as e:
                t = f"error {e.strerror}"
            if t != target:
                out.append(f"{node.name}: symlink {rel} -> {t!r}, want {target!r}")
        return out[: 4 * limit]

    def check(self, nodes):
        out = [p for n in nodes for p in self.problems(n)]
        assert not out, "the tree is not whole:\n" + "\n".join(out)

    def wait_whole(self, nodes, timeout=DEADLINE):
        """Until every node has reported its files to a new leader, some may
        be missing: poll until the tree is whole through every node (it
        must become whole)."""
        last = []

        def whole():
            nonlocal last
            last = [p for n in nodes for p in self.problems(n)]
            return not last

        try:
            wait_for(whole, timeout, "the tree to be whole through every node", interval=1.0)
        except AssertionError as e:
            raise AssertionError(f"{e}:\n" + "\n".join(last)) from None


def build_tree(c, rnd, nfiles):
    """Nested directories (with xattrs at every level, one with a mode), an
    empty directory with an xattr inside another, a symlink, and nfiles
    files written round robin through every node, an xattr on every fifth."""
    t = Tree()
    a = c.nodes[0]
    leaves = []
    for i in range(4):
        for j in range(3):
            for k in range(2):
                d = f"m{i}/layer{j}/shard{k}"
                t.mkdir(c.nodes[(i + j + k) % len(c.nodes)], d)
                leaves.append(d)
            t.setxattr(a, f"m{i}/layer{j}", "user.layer", f"{i}.{j}".encode())
        t.setxattr(a, f"m{i}", "user.model", f"model-{i}".encode())
    t.mkdir(a, "empty", mode=0o750)
    t.mkdir(a, "empty/inner")
    t.setxattr(a, "empty/inner", "user.keep", b"yes")
    t.setxattr(c.nodes[-1], "empty", "user.note", b"\x00binary\xff")
    t.symlink(a, "latest", "m0/layer0")
    for n in range(nfiles):
        node = c.nodes[n % len(c.nodes)]
        rel = f"{leaves[n % len(leaves)]}/blk_{n:05d}"
        t.write(node, rel, rnd.randbytes(rnd.choice([0, 1, 100, 4095, 4096, 4097, 20000,
                                                     70000, 200000])))
        if n % 5 == 0:
            t.setxattr(node, rel, "user.tokens", str(n).encode())
    return t


def roles(c):
    return {m.name: (m.role() if m.alive() and not m.stopped else "down") for m in c.masters}


def the_other(c, m):
    others = [x for x in c.masters if x is not m]
    assert len(others) == 1, others
    return others[0]


# -- the harness alone ----------------------------------------------------------
def test_etcd_harness(etcd):
    assert etcd.url == f"http://127.0.0.1:{etcd.client_port}"
    assert etcd.endpoint == f"127.0.0.1:{etcd.client_port}"
    assert etcd.alive() and etcd.ready()
    value = b"value\x00\xff\n"
    rev = etcd.put("mcfs-test/key", value)
    etcd.put("mcfs-test/other", "x")
    etcd.put("mcfs-tesu", "outside the prefix")
    assert etcd.get("mcfs-test/key") == value
    assert etcd.get("mcfs-test/none") is None
    assert etcd.range("mcfs-test/") == {"mcfs-test/key": value, "mcfs-test/other": b"x"}

    # kill -9 and start again on the same ports and data dir: the keys stay.
    first = etcd.pid
    data_dir, url = etcd.data_dir, etcd.url
    etcd.kill()
    assert not etcd.alive() and etcd.proc.proc.returncode == -9
    assert not etcd.ready()
    etcd.restart()
    assert etcd.pid != first and etcd.url == url and etcd.data_dir == data_dir
    assert etcd.get("mcfs-test/key") == value
    assert etcd.put("mcfs-test/key", b"v2") > rev

    # SIGTERM and again.
    assert etcd.stop() is None
    assert etcd.proc.proc.returncode in (0, -15)
    etcd.restart()
    assert etcd.get("mcfs-test/key") == b"v2"
    assert etcd.range("mcfs-test/")["mcfs-test/other"] == b"x"
    assert len(etcd.procs()) == 3
    for p in etcd.procs():
        assert "+ " + ETCD_BIN in p.text()

    # A second one, torn down by hand: its process is gone and its files too.
    e2 = Etcd()
    try:
        e2.start()
        assert e2.client_port not in (etcd.client_port, etcd.peer_port)
        e2.put("k", "v")
        assert etcd.get("k") is None and e2.get("k") == b"v"
    finally:
        problems = e2.teardown()
    assert problems == []
    assert e2.proc.proc.returncode is not None
    assert not os.path.exists(e2.data_root) and not os.path.exists(e2.tmp)
    assert not e2.ready()


# -- failover -----------------------------------------------------------------
def test_leader_killed_standby_takes_over(ha_cluster):
    c = ha_cluster(masters=2, n=3, replicas=2)
    old = c.wait_leader(DEADLINE)
    standby = the_other(c, old)
    assert standby.role() == STANDBY, roles(c)
    assert old.health() == 200 and standby.health() == 503
    rnd = random.Random(61)
    tree = build_tree(c, rnd, 1000)
    tree.check(c.nodes)
    # Nodes' catalogs trail the leader by one SYNC: let them catch up, the
    # test is about published data.
    time.sleep(1.0)

    c.kill_master(old)
    new = c.wait_leader(DEADLINE, exclude=old)
    assert new is standby
    assert new.health() == 200

    tree.wait_whole(c.nodes)
    # The cluster goes on: new directories, files and xattrs through every node.
    for i, n in enumerate(c.nodes):
        tree.mkdir(n, f"after/{i}/deep")
        tree.setxattr(n, f"after/{i}", "user.after", str(i).encode())
        tree.write(n, f"after/{i}/deep/new", rnd.randbytes(50000))
        tree.write(n, f"m{i}/layer0/shard0/new-{i}", rnd.randbytes(3000))
    tree.check(c.nodes)

    # The old leader started again is a standby; the new one stays leader.
    c.restart_master(old)
    wait_for(lambda: old.role() == STANDBY, DEADLINE, f"{old.name} to answer /role {STANDBY}")
    assert c.leader() is new, roles(c)
    assert old.health() == 503
    tree.write(c.nodes[1], "after/last", rnd.randbytes(1000))
    tree.check(c.nodes)


def test_stopped_leader_is_fenced(ha_cluster):
    c = ha_cluster(masters=2, n=3, replicas=2)
    old = c.wait_leader(DEADLINE)
    standby = the_other(c, old)
    rnd = random.Random(62)
    tree = build_tree(c, rnd, 120)
    tree.check(c.nodes)
    time.sleep(1.0)
    names = sorted(tree.files)[:30]

    # SIGSTOP the leader; I/O through every node starts at once (its first
    # requests go to the stopped leader) and must finish through the new one.
    c.stop_master(old)
    errors = []
    v2 = {rel: rnd.randbytes(rnd.choice([10, 5000, 90000])) for rel in names}

    def app():
        try:
            for k, rel in enumerate(names):
                n = c.nodes[k % len(c.nodes)]
                write_file(os.path.join(n.mnt, rel), v2[rel])
                other = c.nodes[(k + 1) % len(c.nodes)]
                got = read_file(os.path.join(other.mnt, rel))
                if got != v2[rel]:
                    errors.append(f"{rel}: written on {n.name}, {other.name} read "
                                  f"{len(got)} bytes sha {sha(got)[:12]}, not the new content")
            os.makedirs(os.path.join(c.nodes[1].mnt, "during/stop"))
        except OSError as e:
            errors.append(f"{e!r}")

    th = threading.Thread(target=app, daemon=True)
    th.start()
    new = c.wait_leader(DEADLINE, exclude=old)
    assert new is standby
    th.join(READ_DEADLINE)
    assert not th.is_alive(), "I/O started while the leader was stopped never finished"
    assert not errors, errors
    for rel, data in v2.items():
        tree.files[rel] = (sha(data), len(data))
    tree.dirs |= {"during", "during/stop"}
    tree.check(c.nodes)

    # Continue the old leader: whatever it still answers must not be taken.
    # Keep overwriting through one node and reading through the others
    # (close-to-open: each open asks the leader) while it wakes up, at
    # least until it no longer claims to lead.
    c.cont_master(old)
    old.may_exit = True

    def deposed():
        return not old.alive() or old.role() not in (None, LEADER)

    rounds = 0
    end = time.monotonic() + DEADLINE
    while rounds < 10 or not deposed():
        assert time.monotonic() < end, \
            f"{old.name} still answers /role {old.role()!r} {DEADLINE}s after SIGCONT"
        rel = names[rounds % len(names)]
        w = c.nodes[rounds % len(c.nodes)]
        tree.write(w, rel, rnd.randbytes(rnd.choice([1, 4096, 30000])))
        for n in c.nodes:
            got = read_file(os.path.join(n.mnt, rel))
            assert (sha(got), len(got)) == tree.files[rel], \
                f"round {rounds}: {rel} written on {w.name}, {n.name} reads stale content"
        rounds += 1
    wait_for(deposed, DEADLINE, f"{old.name} to stop serving as leader (or exit)")
    if old.alive():
        assert old.role() != LEADER and old.health() != 200, roles(c)
    assert c.leader() is new, roles(c)
    tree.mkdir(c.nodes[0], "after")
    for i, n in enumerate(c.nodes):
        tree.write(n, f"after/{i}", rnd.randbytes(7000))
    tree.check(c.nodes)


# -- etcd itself --------------------------------------------------------------
def test_etcd_restart_under_load(ha_cluster):
    c = ha_cluster(masters=2, n=3, replicas=2)
    c.wait_leader(DEADLINE)
    rnd = random.Random(63)
    tree = Tree()
    tree.mkdir(c.nodes[0], "load")
    stop = threading.Event()
    errors = []
    done = [0]
    lock = threading.Lock()

    def load():
        # Files and directories (with xattrs) written through one node and
        # read back through the next; every call must succeed.
        wr = random.Random(64)
        cur = "load"
        i = 0
        while not stop.is_set() and not errors:
            n = c.nodes[i % len(c.nodes)]
            other = c.nodes[(i + 1) % len(c.nodes)]
            try:
                if i % 10 == 0:
                    d = f"load/d{i:05d}"
                    with lock:
                        tree.mkdir(n, d)
                        tree.setxattr(n, d, "user.i", str(i).encode())
                    cur = d
                rel = f"{cur}/f{i:05d}"
                data = wr.randbytes(wr.choice([0, 100, 4096, 40000]))
                with lock:
                    tree.write(n, rel, data)
                got = read_file(os.path.join(other.mnt, rel))
                if got != data:
                    errors.append(f"{rel}: written on {n.name}, {other.name} read other bytes")
            except OSError as e:
                errors.append(f"op {i} on {n.name}: {e!r}")
            i += 1
            done[0] = i

    th = threading.Thread(target=load, daemon=True)
    th.start()
    try:
        wait_for(lambda: done[0] >= 30 or errors, DEADLINE, "the load to get going")
        for how in ("kill", "stop"):
            getattr(c.etcd, how)()  # kill -9, then SIGTERM
            time.sleep(3.0)  # the cluster without etcd for a while
            c.etcd.restart()
            at = done[0]
            wait_for(lambda: done[0] >= at + 30 or errors, DEADLINE,
                     f"the load to go on after etcd's {how} and restart")
            assert not errors, errors
    finally:
        stop.set()
        th.join(READ_DEADLINE)
    assert not th.is_alive(), "the load thread never finished"
    assert not errors, errors
    c.wait_leader(DEADLINE)
    tree.write(c.nodes[2], "load/last", rnd.randbytes(5000))
    tree.check(c.nodes)
