# SPDX-License-Identifier: Apache-2.0
"""A real cluster on 127.0.0.1: one mcfs-master (--node-ttl 3s) and nodes
node-a, node-b, node-c, each with its own mount point and segment server
port (docs/cluster.md).

- a file written through one node reads bit-exact through every other;
- close-to-open: an open() after close()/rename()/unlink() returned on
  another node sees the result, whatever that node had cached;
- replica_num=2 files survive a kill -9 of a node holding replicas, reads
  through the others finish while a node is SIGSTOPped, a killed node
  started again rejoins and serves, a clean unmount moves the objects only
  it held;
- mcfs --replicas N is the replica count of new files; replica_num raised
  on a file adds a replica that holds the real bytes, lowered drops some;
- concurrent writers on different nodes, to different keys and to one key:
  the last close wins and no reader ever sees a torn file; two nodes
  creating the same new name both succeed (O_CREAT never gives EEXIST);
- a bounded fuzz of the segment servers: forged, malformed and
  out-of-bounds requests are all refused, never answered with data, and
  no byte of any stored file changes.

No pass/fail depends on timing: waits (a node dropped after --node-ttl, a
replica added) poll with deadlines many times longer than needed, and
reads that could hang on a stopped peer run in a child process that is
killed at its deadline."""

import contextlib
import errno
import hashlib
import os
import random
import socket
import struct
import threading
import time

import pytest

from helpers import MiB, digests, read_file, replicas_of, wait_for, write_file

# Deadline for anything the master does after --node-ttl (3 s): generous.
DROP_DEADLINE = 60
# Deadline for a child process reading a set of files.
READ_DEADLINE = 120


def sha(data):
    return hashlib.sha256(data).hexdigest()


def content(rnd, size):
    return rnd.randbytes(size)


class Files:
    """What the test wrote: relative path -> (sha256, size), and checks of
    every file through chosen nodes."""

    def __init__(self):
        self.want = {}

    def write(self, node, rel, data):
        write_file(os.path.join(node.mnt, rel), data)
        self.want[rel] = (sha(data), len(data))

    def bad(self, nodes, rels=None, timeout=READ_DEADLINE):
        """Every (node, path, got, want) that did not read back bit-exact."""
        rels = sorted(self.want if rels is None else rels)
        out = []
        for n in nodes:
            paths = {os.path.join(n.mnt, r): r for r in rels}
            got = digests(paths, timeout)
            for p, r in paths.items():
                if got[p] != self.want[r]:
                    out.append((n.name, r, got[p], self.want[r]))
        return out

    def check(self, nodes, rels=None, timeout=READ_DEADLINE):
        bad = self.bad(nodes, rels, timeout)
        assert not bad, f"{len(bad)} reads not bit-exact, e.g. (node, file, got, want): {bad[:8]}"


def sizes(rnd, count):
    """File sizes: the edges around pages first, then mostly small to
    medium objects and a few of several MiB."""
    edges = [0, 1, 4095, 4096, 4097, MiB - 1, MiB + 7, 3 * MiB + 5]
    out = edges[: min(count, len(edges))]
    while len(out) < count:
        out.append(rnd.choice((rnd.randrange(1, 64 << 10), rnd.randrange(64 << 10, MiB),
                               rnd.randrange(64 << 10, MiB), rnd.randrange(MiB, 3 * MiB))))
    return out


def rep_nodes(path):
    return [r[0] for r in replicas_of(path)]


def statfs_total(node):
    st = os.statvfs(node.mnt)
    return st.f_blocks * st.f_frsize


def check_replicas(cluster, path, count):
    """The replicas xattr lists count complete DRAM replicas on distinct
    nodes, each with that node's --node-name and --listen address."""
    reps = replicas_of(path)
    assert len(reps) == count, f"{path}: {reps}"
    addrs = {n.name: n.addr for n in cluster.nodes}
    for r in reps:
        assert len(r) == 4, f"{path}: replica line {r} is not 'NODE HOST:PORT TIER STATE'"
        assert r[0] in addrs and r[1] == addrs[r[0]], f"{path}: {r}, nodes are {addrs}"
        assert r[2:] == ("dram", "complete"), f"{path}: {r}"
    assert len({r[0] for r in reps}) == count, f"{path}: two replicas on one node: {reps}"
    return [r[0] for r in reps]


# -- data path ---------------------------------------------------------------
def test_write_on_a_read_on_b_and_c(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    rnd = random.Random(1)
    files = Files()
    os.mkdir(os.path.join(a.mnt, "m1"))
    for i, size in enumerate(sizes(rnd, 24)):
        files.write(a, f"m1/blk_{i:04d}", content(rnd, size))
    for n in (b, cc):
        assert sorted(os.listdir(os.path.join(n.mnt, "m1"))) == sorted(
            r.split("/")[1] for r in files.want)
        for rel, (_, size) in files.want.items():
            assert os.stat(os.path.join(n.mnt, rel)).st_size == size, (n.name, rel)
    files.check([b, cc, a])
    for rel in files.want:
        # One replica (the default), on the writer, listed the same on every node.
        assert check_replicas(c, os.path.join(a.mnt, rel), 1) == ["node-a"], rel
        for n in (b, cc):
            assert replicas_of(os.path.join(n.mnt, rel)) == replicas_of(os.path.join(a.mnt, rel))
            assert os.getxattr(os.path.join(n.mnt, rel), "user.mcfs.checksum") == \
                os.getxattr(os.path.join(a.mnt, rel), "user.mcfs.checksum")
    # And the other way round: written on C, read on A and B.
    files2 = Files()
    for i, size in enumerate(sizes(rnd, 6)):
        files2.write(cc, f"m1/from_c_{i}", content(rnd, size))
    files2.check([a, b])
    # statfs is the cluster pool: all three segments, seen alike from every node.
    df = [statfs_total(n) for n in c.nodes]
    assert df[0] == df[1] == df[2] > 2 * 128 * MiB, f"pool totals seen by the nodes: {df}"


def test_remote_reads_in_any_order(cluster):
    """A file held only by A, read through B in every pattern a reader
    uses: whole, in small sequential pieces, backwards, at random offsets,
    twice over the same range, and with two handles interleaved. Remote
    reads stream ahead for sequential readers and fall back to fetching the
    object for the others: every byte must be right either way."""
    c = cluster(2)
    a, b = c.nodes
    rnd = random.Random(7)
    data = bytes(rnd.getrandbits(8) for _ in range(3 * MiB + 4097))
    with open(os.path.join(a.mnt, "blob"), "wb") as f:
        f.write(data)
    path = os.path.join(b.mnt, "blob")
    with open(path, "rb", buffering=0) as f:
        assert f.read() == data
    with open(path, "rb", buffering=0) as f:
        got = bytearray()
        while len(got) < len(data):
            piece = f.read(rnd.choice((4096, 65536, 100000, 1 << 20)))
            assert piece, f"short read at {len(got)}"
            got += piece
        assert bytes(got) == data
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in range(len(data) - 65536, -1, -700000):  # backwards
            assert os.pread(fd, 65536, off) == data[off:off + 65536], off
        for _ in range(60):
            off = rnd.randrange(len(data))
            n = rnd.choice((1, 4096, 12345, 1 << 20))
            assert os.pread(fd, n, off) == data[off:off + n], (off, n)
        assert os.pread(fd, 4096, 8192) == os.pread(fd, 4096, 8192) == data[8192:12288]
    finally:
        os.close(fd)
    # Two handles read alternately, each in sequence.
    f1 = open(path, "rb", buffering=0)
    f2 = open(path, "rb", buffering=0)
    try:
        g1, g2 = bytearray(), bytearray()
        while len(g1) < len(data) or len(g2) < len(data):
            g1 += f1.read(300000)
            g2 += f2.read(500000)
        assert bytes(g1) == data and bytes(g2) == data
    finally:
        f1.close()
        f2.close()


def test_remote_reads_from_two_replicas(cluster):
    """A reader with no replica of its own asks for the first MiB of a
    file in two halves over two connections, one to each replica where
    there are two: the halves must join at the right byte whatever the
    sizes and read sizes, and in any order of the reads."""
    c = cluster(3)
    a = c.nodes[0]
    rnd = random.Random(17)
    os.mkdir(os.path.join(a.mnt, "r2"))
    os.setxattr(os.path.join(a.mnt, "r2"), "user.mcfs.replica_num", b"2")
    want = {}
    for i, size in enumerate((512 * 1024 - 1, 512 * 1024, 600_001, MiB, MiB + 7, 3 * MiB + 5)):
        rel = f"r2/f{i}"
        want[rel] = content(rnd, size)
        write_file(os.path.join(a.mnt, rel), want[rel])
    for rel, data in want.items():
        holders = check_replicas(c, os.path.join(a.mnt, rel), 2)
        reader = next(n for n in c.nodes if n.name not in holders)
        path = os.path.join(reader.mnt, rel)
        with open(path, "rb") as f:
            assert f.read() == data, (reader.name, rel)
        with open(path, "rb", buffering=0) as f:
            got = bytearray()
            while True:
                piece = f.read(rnd.choice((4096, 100_000, 300_000, MiB)))
                if not piece:
                    break
                got += piece
            assert bytes(got) == data, (reader.name, rel)
        fd = os.open(path, os.O_RDONLY)
        try:
            # The second half before the first: a read out of sequence.
            half = len(data) // 2 // 4096 * 4096
            assert os.pread(fd, 8192, half) == data[half:half + 8192], rel
            assert os.pread(fd, 8192, 0) == data[:8192], rel
        finally:
            os.close(fd)
    # More readers at once than the node has streams to lend: the first
    # ones split, later ones stream whole or fetch, all read the same bytes.
    rel = "r2/f4"
    holders = check_replicas(c, os.path.join(a.mnt, rel), 2)
    reader = next(n for n in c.nodes if n.name not in holders)
    handles = [open(os.path.join(reader.mnt, rel), "rb", buffering=0) for _ in range(20)]
    try:
        got = [bytearray() for _ in handles]
        while any(len(g) < len(want[rel]) for g in got):
            for f, g in zip(handles, got):
                g += f.read(100_000)
        assert all(bytes(g) == want[rel] for g in got)
    finally:
        for f in handles:
            f.close()


def test_close_to_open_across_nodes(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    rnd = random.Random(2)
    rel = "key"
    # Each round one node replaces the file (sizes grow and shrink, so a
    # stale cached size or a stale cached page both show); every node,
    # having read the previous version, opens it again at once.
    for i in range(12):
        w = c.nodes[i % 3]
        size = rnd.choice((4096, 5000, 100_000, 1_000_000, 3 * MiB + 1)) + i
        data = content(rnd, size)
        if i % 2:
            write_file(os.path.join(w.mnt, rel), data)
        else:
            write_file(os.path.join(w.mnt, rel + ".tmp"), data)
            os.rename(os.path.join(w.mnt, rel + ".tmp"), os.path.join(w.mnt, rel))
        for r in c.nodes:
            got = read_file(os.path.join(r.mnt, rel))
            assert len(got) == size and got == data, \
                f"round {i}: {r.name} read {len(got)} bytes after {w.name} published {size}"
    # A file written on A, renamed into place on B, read on C.
    data = content(rnd, 200_000)
    write_file(os.path.join(a.mnt, "staged"), data)
    os.rename(os.path.join(b.mnt, "staged"), os.path.join(b.mnt, rel))
    assert read_file(os.path.join(cc.mnt, rel)) == data
    assert read_file(os.path.join(a.mnt, rel)) == data
    assert not os.path.exists(os.path.join(cc.mnt, "staged"))
    # unlink on C: an open elsewhere fails at once.
    os.unlink(os.path.join(cc.mnt, rel))
    for n in (a, b):
        with pytest.raises(FileNotFoundError):
            open(os.path.join(n.mnt, rel), "rb")
    # Negative lookups are never cached: a name that was missing on A
    # opens there as soon as B has published it.
    for i in range(3):
        name = f"late{i}"
        for n in (a, cc):
            assert not os.path.exists(os.path.join(n.mnt, name))
        data = content(rnd, 10_000 + i)
        write_file(os.path.join(b.mnt, name), data)
        for n in (a, cc):
            assert read_file(os.path.join(n.mnt, name)) == data, (n.name, name)
            assert name in os.listdir(n.mnt), (n.name, name)


# -- failures ----------------------------------------------------------------
def test_kill9_every_file_survives(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    total3 = statfs_total(a)
    rnd = random.Random(3)
    files = Files()
    os.mkdir(os.path.join(a.mnt, "r2"))
    os.setxattr(os.path.join(a.mnt, "r2"), "user.mcfs.replica_num", b"2")
    for i, size in enumerate(sizes(rnd, 100)):
        # Written through every node: the directory's replica_num applies
        # to files created below it from anywhere.
        files.write(c.nodes[i % 3], f"r2/f{i:03d}", content(rnd, size))
    on_b = []
    for rel in files.want:
        names = check_replicas(c, os.path.join(cc.mnt, rel), 2)
        if "node-b" in names:
            on_b.append(rel)
    assert on_b, "no file has a replica on node-b: nothing to test"
    # Objects whose only replica is on node-b leave the namespace with it.
    os.mkdir(os.path.join(b.mnt, "r1"))
    sole = Files()
    for i in range(3):
        sole.write(b, f"r1/s{i}", content(rnd, 50_000))
        assert check_replicas(c, os.path.join(b.mnt, f"r1/s{i}"), 1) == ["node-b"]

    b.kill()
    # At once, before the master notices: a dead peer refuses connections
    # and readers go on to the next replica.
    files.check([a, cc])

    # The master drops node-b after --node-ttl.
    wait_for(lambda: statfs_total(a) < total3, DROP_DEADLINE, "node-b's segment to leave the pool")
    wait_for(lambda: all("node-b" not in rep_nodes(os.path.join(a.mnt, r)) for r in on_b),
             DROP_DEADLINE, "node-b to leave every replica list")
    files.check([a, cc])
    for rel in files.want:
        assert rep_nodes(os.path.join(cc.mnt, rel)), f"{rel} has no replica left"
    for n in (a, cc):
        wait_for(lambda n=n: os.listdir(os.path.join(n.mnt, "r1")) == [], DROP_DEADLINE,
                 f"the objects only node-b held to leave the namespace on {n.name}")
        with pytest.raises(FileNotFoundError):
            open(os.path.join(n.mnt, "r1/s0"), "rb")

    # The survivors take new writes; replica_num 2 still means two nodes.
    more = Files()
    for i in range(6):
        more.write(c.nodes[(i % 2) * 2], f"r2/after{i}", content(rnd, 300_000 + i))
        assert sorted(check_replicas(c, os.path.join(a.mnt, f"r2/after{i}"), 2)) == ["node-a", "node-c"]
    more.check([a, cc])

    # node-b, started again with the same name, rejoins and serves.
    b.start()
    wait_for(lambda: statfs_total(a) == total3, DROP_DEADLINE, "node-b's segment back in the pool")
    files.check([b])
    more.check([b])
    back = Files()
    for i in range(4):
        back.write(b, f"r1/back{i}", content(rnd, 400_000 + i))
        assert check_replicas(c, os.path.join(a.mnt, f"r1/back{i}"), 1) == ["node-b"]
    back.check([a, cc, b])


def test_puts_go_on_when_a_replica_node_dies(cluster):
    """replica_num 2 on two nodes, and one dies: the writer's puts succeed
    with the copy they could write, at once (the dead peer refuses the
    transfer), while the master has not heard from it for a while (it is
    passed over), and after it is dropped. None fails with EIO."""
    c = cluster(2, replicas=2, node_ttl="6s")
    a, b = c.nodes
    total2 = statfs_total(a)
    rnd = random.Random(11)
    files = Files()
    files.write(a, "before", content(rnd, 200_000))
    assert sorted(check_replicas(c, os.path.join(a.mnt, "before"), 2)) == ["node-a", "node-b"]
    b.kill()
    i = 0
    # Before the master drops node-b, and until it has.
    while True:
        dropped = statfs_total(a) < total2
        rel = f"after{i}"
        files.write(a, rel, content(rnd, 100_000 + i))
        assert check_replicas(c, os.path.join(a.mnt, rel), 1) == ["node-a"]
        i += 1
        if dropped:
            break
        assert i < 200, "node-b was never dropped"
        time.sleep(0.1)
    files.check([a])


def test_lost_copies_are_made_again(cluster):
    """replica_num 2 on three nodes; one dies. Once the master drops it, the
    files that had a copy there get a new one on the third node (the node
    holding their first replica copies it), so every file is back to two
    replicas on live nodes, readable everywhere."""
    c = cluster(3, replicas=2)
    a, b, cc = c.nodes
    total3 = statfs_total(a)
    rnd = random.Random(12)
    files = Files()
    for i in range(24):
        files.write(c.nodes[i % 3], f"f{i:02d}", content(rnd, rnd.randrange(1, 600_000)))
    on_b = [rel for rel in files.want
            if "node-b" in check_replicas(c, os.path.join(a.mnt, rel), 2)]
    assert on_b, "no file has a replica on node-b: nothing to test"
    b.kill()
    wait_for(lambda: statfs_total(a) < total3, DROP_DEADLINE, "node-b's segment to leave the pool")

    def repaired():
        return all(sorted(rep_nodes(os.path.join(a.mnt, rel))) == ["node-a", "node-c"]
                   for rel in on_b)

    wait_for(repaired, DROP_DEADLINE, "the copies lost with node-b to be made again on node-c")
    for rel in files.want:
        check_replicas(c, os.path.join(cc.mnt, rel), 2)
    files.check([a, cc])


def test_replicas_option_is_the_default(cluster):
    c = cluster(2, replicas=2)  # mcfs --replicas 2 on every node
    a, b = c.nodes
    rnd = random.Random(9)
    files = Files()
    os.mkdir(os.path.join(a.mnt, "sub"))
    for i, rel in enumerate(("top", "sub/below")):
        files.write(c.nodes[i], rel, content(rnd, 100_000 + i))
        assert sorted(check_replicas(c, os.path.join(a.mnt, rel), 2)) == ["node-a", "node-b"], rel
        assert os.getxattr(os.path.join(b.mnt, rel), "user.mcfs.replica_num") == b"2", rel
    files.check(c.nodes)


def test_sigstop_reads_through_others_finish(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    rnd = random.Random(4)
    files = Files()
    os.mkdir(os.path.join(a.mnt, "r2"))
    os.setxattr(os.path.join(a.mnt, "r2"), "user.mcfs.replica_num", b"2")
    for i in range(24):
        files.write((b, cc)[i % 2], f"r2/s{i:02d}", content(rnd, rnd.randrange(4096, 2 * MiB)))
    # For each reader, the files it must fetch from a remote node, one of
    # whose replicas is on the stopped node-b.
    plan = {}
    for rel in files.want:
        names = check_replicas(c, os.path.join(a.mnt, rel), 2)
        for r in (a, cc):
            if "node-b" in names and r.name not in names:
                plan.setdefault(r.name, []).append(rel)
    assert plan, "no file has replicas on node-b and another remote node"
    print({k: len(v) for k, v in plan.items()})

    b.stop()
    for r in (a, cc):
        if r.name in plan:
            files.check([r], plan[r.name])
    # Every file, local or not, through both.
    files.check([a, cc])

    b.cont()
    # Continued, node-b reads everything again (after rejoining, if the
    # master dropped it meanwhile).
    wait_for(lambda: not files.bad([b], timeout=READ_DEADLINE), DROP_DEADLINE + READ_DEADLINE,
             "node-b to read every file bit-exact after SIGCONT")
    new = Files()
    new.write(b, "after_cont", content(rnd, 500_000))
    new.check([a, cc, b])


def test_node_dropped_while_cut_off_comes_back_empty(cluster):
    """A node stopped past --node-ttl is dropped; when it comes back it
    joins as a new node with nothing: files unlinked meanwhile do not come
    back from its stale catalog, and a reader it had open on a local
    replica gets EIO rather than bytes the master has handed out again.
    The files that lost a copy with it are copied again."""
    c = cluster(3, replicas=2)
    a, b, cc = c.nodes
    total3 = statfs_total(a)
    rnd = random.Random(13)
    files = Files()
    os.mkdir(os.path.join(a.mnt, "d"))
    for i in range(12):
        files.write(b if i % 2 else a, f"d/f{i:02d}", content(rnd, 300_000 + i))
    on_b = [rel for rel in files.want
            if "node-b" in check_replicas(c, os.path.join(a.mnt, rel), 2)]
    assert len(on_b) >= 2, "too few files with a copy on node-b: nothing to test"
    gone, kept = on_b[: len(on_b) // 2], on_b[len(on_b) // 2:]
    # A reader on node-b, of a file whose copy there it reads (O_DIRECT:
    # every read asks the daemon, none is served from the page cache).
    held = os.open(os.path.join(b.mnt, kept[0]), os.O_RDONLY | os.O_DIRECT)
    try:
        assert len(os.pread(held, 4096, 0)) == 4096
        b.stop()
        for rel in gone:
            os.unlink(os.path.join(a.mnt, rel))
            del files.want[rel]
        wait_for(lambda: statfs_total(a) < total3, DROP_DEADLINE, "node-b to be dropped")
        b.cont()
        wait_for(lambda: statfs_total(a) == total3, DROP_DEADLINE, "node-b to join again")
        for n in (a, cc, b):
            names = set(os.listdir(os.path.join(n.mnt, "d")))
            for rel in gone:
                assert os.path.basename(rel) not in names, f"{rel} came back on {n.name}"
        with pytest.raises(OSError) as e:
            os.pread(held, 4096, 8192)
        assert e.value.errno == errno.EIO
    finally:
        os.close(held)
    wait_for(lambda: all(len(rep_nodes(os.path.join(a.mnt, rel))) == 2 for rel in files.want),
             DROP_DEADLINE, "every file to be back at two replicas")
    files.check([a, cc, b])


def test_killed_node_restarts_and_serves(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    total3 = statfs_total(a)
    rnd = random.Random(5)
    files = Files()
    os.mkdir(os.path.join(a.mnt, "r2"))
    os.setxattr(os.path.join(a.mnt, "r2"), "user.mcfs.replica_num", b"2")
    for i in range(30):
        files.write((b, b, a)[i % 3], f"r2/f{i:02d}", content(rnd, rnd.randrange(1, 2 * MiB)))
    # Restarted at once, before the master has dropped the old process:
    # whatever the old node-b held is gone from the new one's memory, and
    # no reader may be served that memory as if it were the object.
    b.kill()
    b.start()
    files.check([a, b, cc])
    wait_for(lambda: statfs_total(a) == total3, DROP_DEADLINE,
             "the pool to count node-b's segment once (the old process dropped)")
    files.check([a, b, cc])
    # The new node-b holds and serves new objects.
    new = Files()
    os.mkdir(os.path.join(b.mnt, "r1"))
    for i in range(5):
        new.write(b, f"r1/n{i}", content(rnd, 700_000 + i))
        assert check_replicas(c, os.path.join(cc.mnt, f"r1/n{i}"), 1) == ["node-b"]
    new.check([a, cc, b])
    # And takes replicas of objects written elsewhere (three replicas on
    # three nodes: one must be on node-b).
    os.mkdir(os.path.join(a.mnt, "r3"))
    os.setxattr(os.path.join(a.mnt, "r3"), "user.mcfs.replica_num", b"3")
    for i in range(4):
        new.write(a, f"r3/g{i}", content(rnd, 100_000 + i))
        check_replicas(c, os.path.join(cc.mnt, f"r3/g{i}"), 3)
    new.check([b, cc])
    a.kill()
    cc.kill()
    new.check([b], [f"r3/g{i}" for i in range(4)])


def test_clean_unmount_moves_sole_replicas(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    rnd = random.Random(6)
    files = Files()
    os.mkdir(os.path.join(b.mnt, "sole"))
    for i, size in enumerate(sizes(rnd, 20)):
        files.write(b, f"sole/f{i:02d}", content(rnd, size))
        assert check_replicas(c, os.path.join(b.mnt, f"sole/f{i:02d}"), 1) == ["node-b"]
    others = Files()
    for i in range(4):
        others.write(a, f"on_a{i}", content(rnd, 123_456 + i))
    rc = b.unmount()
    assert rc == 0, f"mcfs node-b exited {rc} after fusermount3 -u"
    for rel in files.want:
        names = check_replicas(c, os.path.join(a.mnt, rel), 1)
        assert names != ["node-b"], f"{rel} still on the node that left"
    files.check([a, cc])
    others.check([a, cc])


def test_replica_num_raised_and_lowered_on_a_file(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    rnd = random.Random(7)
    files = Files()
    # Lowered: 3 -> 1.
    os.mkdir(os.path.join(a.mnt, "r3"))
    os.setxattr(os.path.join(a.mnt, "r3"), "user.mcfs.replica_num", b"3")
    files.write(a, "r3/low", content(rnd, 2 * MiB + 3))
    check_replicas(c, os.path.join(b.mnt, "r3/low"), 3)
    os.setxattr(os.path.join(b.mnt, "r3/low"), "user.mcfs.replica_num", b"1")
    assert os.getxattr(os.path.join(cc.mnt, "r3/low"), "user.mcfs.replica_num") == b"1"
    wait_for(lambda: len(replicas_of(os.path.join(a.mnt, "r3/low"))) == 1, DROP_DEADLINE,
             "replica_num 3 -> 1 to drop two replicas")
    check_replicas(c, os.path.join(a.mnt, "r3/low"), 1)
    # Raised: 1 -> 2, set through another node than the writer's.
    files.write(a, "up", content(rnd, 3 * MiB + 11))
    assert check_replicas(c, os.path.join(a.mnt, "up"), 1) == ["node-a"]
    os.setxattr(os.path.join(cc.mnt, "up"), "user.mcfs.replica_num", b"2")
    assert os.getxattr(os.path.join(b.mnt, "up"), "user.mcfs.replica_num") == b"2"

    def two_complete():
        reps = replicas_of(os.path.join(b.mnt, "up"))
        return len(reps) == 2 and all(r[3] == "complete" for r in reps)

    wait_for(two_complete, DROP_DEADLINE, "replica_num 1 -> 2 to add a complete replica")
    assert "node-a" in check_replicas(c, os.path.join(b.mnt, "up"), 2)
    files.check([a, b, cc])
    # The added replica holds the real bytes: with node-a gone it is all
    # that is left.
    a.kill()
    files.check([b, cc], ["up"])


# -- concurrent writers -------------------------------------------------------
class Failures:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def run(self, fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: B902 - report everything from threads
            with self.lock:
                self.items.append(f"{fn.__name__}{args[:1]}: {type(e).__name__}: {e}")


def test_concurrent_writers_different_keys(cluster):
    c = cluster(3)
    os.mkdir(os.path.join(c.nodes[0].mnt, "batch"))
    files = Files()
    lock = threading.Lock()
    fails = Failures()

    def writer(k):
        n = c.nodes[k]
        rnd = random.Random(100 + k)
        for j in range(25):
            rel = f"batch/{n.name}_{j:02d}"
            data = content(rnd, rnd.randrange(0, 1536 << 10))
            path = os.path.join(n.mnt, rel)
            if j % 2:
                write_file(path + ".tmp", data)
                os.rename(path + ".tmp", path)
            else:
                write_file(path, data)
            with lock:
                files.want[rel] = (sha(data), len(data))

    threads = [threading.Thread(target=fails.run, args=(writer, k)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fails.items == []
    want = sorted(r.split("/")[1] for r in files.want)
    for n in c.nodes:
        assert sorted(os.listdir(os.path.join(n.mnt, "batch"))) == want, n.name
    files.check(c.nodes)


def versioned(writer, seq, size):
    """Content that names its writer and round, different for each."""
    seed = hashlib.sha256(f"{writer}/{seq}".encode()).digest()
    block = hashlib.sha256(seed).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


@pytest.mark.parametrize("how", ["rewrite", "rename"])
def test_concurrent_writers_same_key(cluster, how):
    """Three nodes replace one key at once, by O_TRUNC rewrite (the same
    inode, published at close) or by rename of a closed temp file over it,
    while every node reads it in a loop: each read is one whole version,
    every node ends with the same content, and that is the version whose
    close (or rename) came last."""
    c = cluster(3)
    rel = "hot"
    initial = versioned("initial", 0, 1 << 20)
    write_file(os.path.join(c.nodes[0].mnt, rel), initial)
    rounds = 6
    versions = {(n.name, r): versioned(n.name, r, (1 << 20) + 4096 * (3 * r + k) + k)
                for k, n in enumerate(c.nodes) for r in range(rounds)}
    whole = {sha(v): key for key, v in versions.items()}
    whole[sha(initial)] = ("initial", 0)
    published = {}  # (writer, round) -> (start, end) of its close or rename, monotonic
    fails = Failures()
    done = threading.Event()
    reads = {n.name: 0 for n in c.nodes}

    def writer(k):
        n = c.nodes[k]
        path = os.path.join(n.mnt, rel)
        for r in range(rounds):
            data = versions[(n.name, r)]
            if how == "rewrite":
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, data)
                finally:
                    t0 = time.monotonic()
                    os.close(fd)
                    t1 = time.monotonic()
            else:
                tmp = f"{path}.{n.name}.{r}"
                write_file(tmp, data)
                t0 = time.monotonic()
                os.rename(tmp, path)
                t1 = time.monotonic()
            published[(n.name, r)] = (t0, t1)

    def reader(k):
        n = c.nodes[k]
        while not done.is_set():
            got = read_file(os.path.join(n.mnt, rel))
            if sha(got) not in whole:
                raise AssertionError(f"{n.name} read {len(got)} bytes that no writer wrote whole")
            reads[n.name] += 1

    writers = [threading.Thread(target=fails.run, args=(writer, k)) for k in range(3)]
    readers = [threading.Thread(target=fails.run, args=(reader, k)) for k in range(3)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert fails.items == []
    finals = {n.name: whole.get(sha(read_file(os.path.join(n.mnt, rel)))) for n in c.nodes}
    assert len(set(finals.values())) == 1, f"nodes disagree on the final content: {finals}"
    winner = finals["node-a"]
    assert winner is not None and winner[0] != "initial", f"final content is {winner}"
    # The last close wins: the winner is a writer's last round, and no other
    # publish started after the winner's had returned.
    assert winner[1] == rounds - 1, f"final content is {winner}, not a writer's last version"
    later = [k for k, (t0, _) in published.items() if k != winner and t0 > published[winner][1]]
    assert not later, f"{winner} is the final content, but {later} published after it returned"
    for n in c.nodes:
        assert sorted(os.listdir(n.mnt)) == [rel], n.name


def test_last_close_wins(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    rel = "k"
    v0, va, vb, vc = (versioned(t, 0, (1 << 20) + i * 777) for i, t in enumerate("0abc"))
    write_file(os.path.join(a.mnt, rel), v0)
    with contextlib.ExitStack() as opened:  # closed even when a check fails
        fa = opened.enter_context(open(os.path.join(a.mnt, rel), "wb"))
        fa.write(va)
        fb = opened.enter_context(open(os.path.join(b.mnt, rel), "wb"))
        fb.write(vb)
        # Nothing is published before a close.
        assert read_file(os.path.join(cc.mnt, rel)) == v0
        fb.close()
        for n in (b, cc):
            assert read_file(os.path.join(n.mnt, rel)) == vb, n.name
        # A reader that opened vb keeps reading vb while others publish.
        held = opened.enter_context(open(os.path.join(cc.mnt, rel), "rb"))
        first = held.read(4096)
        fc = opened.enter_context(open(os.path.join(cc.mnt, rel), "wb"))
        fc.write(vc)
        fa.close()  # opened first, closed later: wins over vb
        for n in (a, b):
            assert read_file(os.path.join(n.mnt, rel)) == va, n.name
        fc.close()
        for n in c.nodes:
            assert read_file(os.path.join(n.mnt, rel)) == vc, n.name
        rest = held.read()
    assert first + rest == vb, "an open reader's version changed under it"


@pytest.mark.parametrize("gone", ["unlinked", "replaced"])
def test_file_gone_before_close_with_two_replicas(cluster, gone):
    """A file unlinked or renamed over on another node while being written
    closes without an error, as on any POSIX file system (its second replica
    has nowhere to go), and its bytes are published nowhere."""
    c = cluster(2, replicas=2)
    a, b = c.nodes
    data, other = versioned("w", 0, 300_000), versioned("o", 0, 5000)
    write_file(os.path.join(a.mnt, "k"), versioned("v0", 0, 1000))
    with open(os.path.join(a.mnt, "k"), "wb") as f:
        f.write(data)
        f.flush()  # every byte staged before the file goes
        if gone == "unlinked":
            os.unlink(os.path.join(b.mnt, "k"))
        else:
            write_file(os.path.join(b.mnt, "tmp"), other)
            os.rename(os.path.join(b.mnt, "tmp"), os.path.join(b.mnt, "k"))
    for n in c.nodes:  # close-to-open: an open() after the unlink or rename sees it
        p = os.path.join(n.mnt, "k")
        if gone == "unlinked":
            with pytest.raises(FileNotFoundError):
                read_file(p)
        else:
            assert read_file(p) == other, n.name


@pytest.mark.parametrize("shrunk", [True, False])
def test_append_after_another_node_rewrote(cluster, shrunk):
    """O_APPEND through node A appends to the version A opens, not at the
    size A's kernel cached before node B rewrote the file (shorter: no zeros
    in between; longer: nothing of B's overwritten)."""
    c = cluster(2)
    a, b = c.nodes
    pa, pb = os.path.join(a.mnt, "log"), os.path.join(b.mnt, "log")
    write_file(pa, b"a" * 5000)
    assert read_file(pa) == b"a" * 5000
    assert os.stat(pa).st_size == 5000  # A's kernel caches the size
    newer = b"b" * (10 if shrunk else 9000)
    write_file(pb, newer)
    with open(pa, "ab") as f:
        f.write(b"xyz")
        f.flush()
        f.write(b"123")
    for p in (pa, pb):
        assert read_file(p) == newer + b"xyz123", p
        assert os.stat(p).st_size == len(newer) + 6, p


@pytest.mark.parametrize("how", ["unlinked", "replaced"])
def test_put_after_the_name_went_elsewhere(cluster, how):
    """Close-to-open for writers: node A looked a name up; node B then
    unlinks it, or renames another file over it; a put through A afterwards
    (open O_CREAT|O_TRUNC, write, close: all succeed) lands under that name
    for every node to read, not in the inode A's kernel remembered."""
    c = cluster(2)
    a, b = c.nodes
    for t in range(3):
        rel = f"k{t}"
        write_file(os.path.join(a.mnt, rel), b"old" * 100)
        assert read_file(os.path.join(a.mnt, rel)) == b"old" * 100  # A's kernel caches it
        if how == "unlinked":
            os.unlink(os.path.join(b.mnt, rel))
        else:
            write_file(os.path.join(b.mnt, "tmp"), b"other")
            os.rename(os.path.join(b.mnt, "tmp"), os.path.join(b.mnt, rel))
        new = versioned("new", t, 5000 + t)
        write_file(os.path.join(a.mnt, rel), new)
        for n in c.nodes:
            assert read_file(os.path.join(n.mnt, rel)) == new, (t, n.name)


def test_open_after_remote_rename_sees_it(cluster):
    """Close-to-open across a rename: node A looked name a up; node B renames
    a to b and writes a new a; A's next open of a reads the new file, and of
    b the old one (A's kernel still had a leading to the old file)."""
    c = cluster(2)
    a, b = c.nodes
    for t in range(3):
        old, new = versioned("old", t, 3000), versioned("new", t, 4000)
        write_file(os.path.join(b.mnt, f"a{t}"), old)
        assert read_file(os.path.join(a.mnt, f"a{t}")) == old
        os.rename(os.path.join(b.mnt, f"a{t}"), os.path.join(b.mnt, f"b{t}"))
        write_file(os.path.join(b.mnt, f"a{t}"), new)
        assert read_file(os.path.join(a.mnt, f"a{t}")) == new, t
        assert read_file(os.path.join(a.mnt, f"b{t}")) == old, t


def test_open_after_local_and_remote_renames(cluster):
    """A renames a to b itself, C creates a new a, B renames c over b: A's
    open of b reads c's bytes (the daemon follows its own renames), not the
    new a's or an error."""
    c = cluster(3)
    na, nb, nc = c.nodes
    for t in range(3):
        d = f"t{t}"
        os.mkdir(os.path.join(nb.mnt, d))
        write_file(os.path.join(nb.mnt, d, "a"), b"AAAA")
        write_file(os.path.join(nb.mnt, d, "c"), b"CCCC")
        assert read_file(os.path.join(na.mnt, d, "a")) == b"AAAA"
        os.rename(os.path.join(na.mnt, d, "a"), os.path.join(na.mnt, d, "b"))
        write_file(os.path.join(nc.mnt, d, "a"), b"NEWA")
        os.rename(os.path.join(nb.mnt, d, "c"), os.path.join(nb.mnt, d, "b"))
        for n in c.nodes:
            assert read_file(os.path.join(n.mnt, d, "b")) == b"CCCC", (t, n.name)
            assert read_file(os.path.join(n.mnt, d, "a")) == b"NEWA", (t, n.name)


@pytest.mark.parametrize("gone", ["unlinked", "replaced"])
def test_fstat_of_new_file_gone_elsewhere(cluster, gone):
    """fstat() on a file this node is creating still answers after another
    node removes or replaces the name (the handle's file lives on, as after
    an unlink on a local file system): never ESTALE."""
    c = cluster(2)
    a, b = c.nodes
    if gone == "replaced":
        write_file(os.path.join(b.mnt, "g"), b"y" * 10)
    fd = os.open(os.path.join(a.mnt, "k"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, b"abc")
        if gone == "unlinked":
            os.unlink(os.path.join(a.mnt, "k"))
        else:
            os.rename(os.path.join(b.mnt, "g"), os.path.join(b.mnt, "k"))
        assert os.fstat(fd).st_size == 3
    finally:
        os.close(fd)


def test_same_new_key_created_on_two_nodes(cluster):
    """open(O_CREAT) without O_EXCL never fails with EEXIST, even when
    another node has created the same new name and not published it yet."""
    c = cluster(2)
    a, b = c.nodes
    va, vb = versioned("a", 1, 300_000), versioned("b", 1, 400_000)
    with contextlib.ExitStack() as opened:
        fa = opened.enter_context(open(os.path.join(a.mnt, "fresh"), "wb"))
        fa.write(va)
        fb = opened.enter_context(open(os.path.join(b.mnt, "fresh"), "wb"))
        fb.write(vb)
        fa.close()
        fb.close()
    for n in c.nodes:
        assert read_file(os.path.join(n.mnt, "fresh")) == vb, n.name


# -- the segment server under fuzz --------------------------------------------
FRAME_MAGIC = 0x5346434D
FRAME_RESP = 0x01
SEG_READ, SEG_WRITE = 100, 101
SEG_IO_MAX = 8 << 20
GRANT_READ, GRANT_WRITE = 1, 2
MSG_LOOKUP, MSG_GET = 10, 34


def frame(type_, payload, req_id, flags=0, version=1, magic=FRAME_MAGIC, reserved=0, length=None):
    n = len(payload) if length is None else length
    return struct.pack("<IBBHIIQ", magic, version, flags, type_, n, reserved, req_id) + payload


def seg_head(g, off, length, flags=0):
    """The 64-byte head of a segment request (transport/seg.h)."""
    node_id, seg_id, access, g_off, g_len, expiry, mac = g
    return struct.pack("<QIIQQQQQII", node_id, seg_id, access, g_off, g_len, expiry, mac,
                       off, length, flags)


assert len(seg_head((0,) * 7, 0, 0)) == 64


def recv_exact(s, n):
    parts = []
    while n:
        b = s.recv(min(n, 1 << 20))
        if not b:
            raise ConnectionError("closed")
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def read_responses(s, limit):
    """Every response frame the peer sends until it closes (or goes quiet
    for the socket timeout): a list of (header fields, payload)."""
    out = []
    while len(out) < limit:
        try:
            h = recv_exact(s, 24)
        except (ConnectionError, socket.timeout):
            break
        magic, version, flags, type_, length, reserved, req_id = struct.unpack("<IBBHIIQ", h)
        assert magic == FRAME_MAGIC and version == 1 and reserved == 0, f"bad response header {h!r}"
        assert length <= SEG_IO_MAX + 8, f"response of {length} bytes"
        payload = recv_exact(s, length)
        out.append(((flags, type_, req_id, length), payload))
    return out


def master_call(sock, type_, payload, req_id):
    sock.sendall(frame(type_, payload, req_id))
    h = recv_exact(sock, 24)
    _, _, flags, rtype, length, _, rid = struct.unpack("<IBBHIIQ", h)
    body = recv_exact(sock, length)
    assert flags & FRAME_RESP and rtype == type_ and rid == req_id
    status, _epoch = struct.unpack_from("<iQ", body)
    return status, body[12:]


def real_grants(master_port, rel):
    """Look rel up at the master and GET it, as any client may before
    HELLO: the replicas with their signed read grants, or [] when the
    master does not hand them out to an unbound session."""
    with socket.create_connection(("127.0.0.1", master_port), timeout=10) as s:
        ino = 1
        for i, name in enumerate(rel.split("/")):
            nb = name.encode()
            st, body = master_call(s, MSG_LOOKUP, struct.pack("<QI", ino, len(nb)) + nb, 1 + i)
            if st:
                return []
            ino = struct.unpack_from("<Q", body)[0]
        # ino, then the directory and name it was reached by (0 and "": any)
        st, body = master_call(s, MSG_GET, struct.pack("<QQI", ino, 0, 0), 100)
        if st:
            return []
        pos = 72 + 4 + 8
        (n,) = struct.unpack_from("<I", body, pos)
        pos += 4
        reps = []
        for _ in range(n):
            node_id, seg_id, tier, state, access, _z, off, ln, rkey, expiry, mac, alen = \
                struct.unpack_from("<QIBBBBQQQQQI", body, pos)
            pos += struct.calcsize("<QIBBBBQQQQQI")
            addr = body[pos : pos + alen].decode()
            pos += alen
            reps.append({"grant": (node_id, seg_id, access, off, ln, expiry, mac), "addr": addr,
                         "rel": rel})
        return reps


def test_segment_server_fuzz(cluster):
    c = cluster(3)
    a, b, cc = c.nodes
    rnd = random.Random(8)
    files = Files()
    os.mkdir(os.path.join(a.mnt, "r2"))
    os.setxattr(os.path.join(a.mnt, "r2"), "user.mcfs.replica_num", b"2")
    for i, size in enumerate(sizes(rnd, 30)):
        files.write(c.nodes[i % 3], f"r2/f{i:02d}", content(rnd, size))
    files.write(b, "probe", content(rnd, 100_000))

    # Grants as the master signs them, when an unbound client can get one:
    # they aim the forgeries at real stored bytes and let the test check
    # that an honest request goes through (so the refusals are real).
    grants = []
    for rel in ("probe", "r2/f08", "r2/f09", "r2/f10", "r2/f11"):
        grants += real_grants(c.master_port, rel)
    for rep in grants:
        g, size = rep["grant"], files.want[rep["rel"]][1]
        port = int(rep["addr"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(frame(SEG_READ, seg_head(g, g[3], size), 1))
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            (hdr, payload), = read_responses(s, 1)
            assert hdr[:3] == (FRAME_RESP, SEG_READ, 1)
            assert struct.unpack_from("<iI", payload) == (0, 0), f"an honest read was refused: {rep}"
            assert sha(payload[8:]) == files.want[rep["rel"]][0], f"an honest read got other bytes: {rep}"
    print(f"{len(grants)} real grants from the master")
    targets = [r["grant"] for r in grants] or [
        (rnd.randrange(1, 5), rnd.randrange(0, 4), GRANT_READ, 0, 1 << 20, 2**62, 0)]

    def forged():
        """A well-framed request whose grant the master never signed, or
        a real grant stretched past its bounds."""
        g = list(rnd.choice(targets))
        kind = rnd.randrange(8)
        if kind == 0:  # a random MAC
            g[6] = rnd.getrandbits(64)
        elif kind == 1:  # a larger range under the real MAC
            g[4] += rnd.choice((1, 4096, 1 << 20, 2**63))
        elif kind == 2:  # an earlier start under the real MAC
            g[3] = max(0, g[3] - rnd.choice((1, 4096, 1 << 20)))
        elif kind == 3:  # write access under a read grant's MAC
            g[2] = rnd.choice((GRANT_WRITE, GRANT_READ | GRANT_WRITE))
        elif kind == 4:  # another node or segment
            g[0] += rnd.randrange(1, 5)
            g[1] ^= rnd.randrange(1, 4)
        elif kind == 5:  # a later deadline under the real MAC
            g[5] += rnd.randrange(1, 10**9)
        elif kind == 6:  # nothing changed but the bytes asked for
            pass
        else:  # everything random
            g = [rnd.getrandbits(64), rnd.getrandbits(32), rnd.randrange(4), rnd.getrandbits(64),
                 rnd.getrandbits(64), rnd.getrandbits(64), rnd.getrandbits(64)]
        # The bytes asked for: inside the real grant only when the grant
        # itself was forged; outside it (before, across the end, far away,
        # wrapping past 2^64) when the grant is the real one.
        go, gl = g[3], g[4]
        if kind == 6:
            off, ln = rnd.choice(((go - 1, 2), (go + gl, 1), (go + gl - 1, 2), (go, gl + 1),
                                  (2**64 - 1, 2), (2**64 - 4096, 8192), (rnd.getrandbits(64), 4096)))
            off %= 2**64
        else:
            off = (go + rnd.randrange(0, max(1, min(gl, 1 << 20)))) % 2**64
            ln = rnd.choice((1, 512, 4096, 65536))
        if rnd.randrange(2):
            return SEG_READ, seg_head(g, off, ln), None
        data = rnd.randbytes(ln)
        return SEG_WRITE, seg_head(g, off, ln) + data, data

    deadline = time.monotonic() + 60
    sent = answered = 0
    for batch in range(60):
        if time.monotonic() > deadline:
            break
        node = c.nodes[batch % 3]
        reqs = []
        for _ in range(40):
            t, payload, _ = forged()
            reqs.append((t, payload))
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            s.settimeout(10)
            s.sendall(b"".join(frame(t, p, 1000 * batch + i) for i, (t, p) in enumerate(reqs)))
            s.shutdown(socket.SHUT_WR)
            resps = read_responses(s, len(reqs) + 1)
        sent += len(reqs)
        answered += len(resps)
        assert len(resps) == len(reqs), \
            f"{node.name}: {len(resps)} responses to {len(reqs)} well-framed requests"
        for i, ((flags, type_, req_id, length), payload) in enumerate(resps):
            assert (flags, type_, req_id) == (FRAME_RESP, reqs[i][0], 1000 * batch + i), \
                f"{node.name}: response {i} out of order or mistyped"
            assert length == 8, f"{node.name}: a refused request got {length - 8} data bytes"
            status, reserved = struct.unpack("<iI", payload)
            assert status in (-errno.EACCES, -errno.ETIMEDOUT, -errno.ERANGE, -errno.EINVAL), \
                f"{node.name}: status {status} for a forged or out-of-bounds request"

    # Malformed: heads that lie about their length, stray bits, wrong
    # types, bad frame headers, garbage. Each on its own connection: the
    # server may answer with an error or close; it must never send data.
    g0 = targets[0]
    malformed = [
        frame(SEG_READ, seg_head(g0, g0[3], 4096)[:40], 1),  # short head
        frame(SEG_READ, seg_head(g0, g0[3], 4096) + b"x" * 16, 2),  # READ with a body
        frame(SEG_WRITE, seg_head(g0, g0[3], 4096) + b"x" * 100, 3),  # body shorter than len
        frame(SEG_WRITE, seg_head(g0, g0[3], 10) + b"x" * 4096, 4),  # body longer than len
        frame(SEG_READ, seg_head(g0, g0[3], SEG_IO_MAX + 1), 5),  # over the I/O limit
        frame(SEG_READ, seg_head(g0, g0[3], 4096, flags=1), 6),  # flags
        frame(SEG_READ, seg_head(tuple(g0[:2]) + (0x1FF,) + tuple(g0[3:]), g0[3], 4096), 7),
        frame(SEG_READ, seg_head(g0, g0[3], 4096), 8, flags=FRAME_RESP),  # a response
        frame(SEG_WRITE, seg_head(g0, g0[3], 4096), 9, length=64 + 4096),  # body never sent
        frame(SEG_READ, seg_head(g0, g0[3], 4096), 10, version=2),
        frame(SEG_READ, seg_head(g0, g0[3], 4096), 11, magic=0xDEADBEEF),
        frame(SEG_READ, seg_head(g0, g0[3], 4096), 12, reserved=1),
        frame(SEG_READ, b"", 13, length=0xFFFFFFFF),
        frame(7, b"\0" * 64, 14),  # a metadata type at a segment server
        frame(0xFFFF, b"\0" * 100, 15),
        rnd.randbytes(5000),
        frame(SEG_READ, seg_head(g0, g0[3], 4096), 16)[:30],  # cut mid-head
    ]
    for _ in range(150):
        t = rnd.choice((SEG_READ, SEG_WRITE, rnd.randrange(65536)))
        malformed.append(frame(t, rnd.randbytes(rnd.randrange(0, 200)), rnd.getrandbits(64)))
    for i, m in enumerate(malformed):
        if time.monotonic() > deadline + 60:
            break
        node = c.nodes[i % 3]
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            s.settimeout(3)
            try:
                s.sendall(m)
                s.shutdown(socket.SHUT_WR)
            except OSError:  # the server closed first: fine
                pass
            try:
                resps = read_responses(s, 4)
            except OSError:
                resps = []
        sent += 1
        for (flags, type_, req_id, length), payload in resps:
            assert length == 8, f"{node.name}: malformed request {i} got {length - 8} data bytes"
            assert struct.unpack_from("<i", payload)[0] < 0, \
                f"{node.name}: malformed request {i} was answered with success"
        for n in c.nodes:
            assert n.alive(), f"{n.name} died after malformed request {i}"
    assert sent >= 1000, f"only {sent} requests sent"

    # Nothing crashed, no stored byte changed, and everyone still serves.
    for n in c.nodes:
        assert n.alive(), f"{n.name} died during the fuzz"
    assert c.master.alive()
    files.check(c.nodes)
    after = Files()
    for i, n in enumerate(c.nodes):
        after.write(n, f"r2/after_{n.name}", content(rnd, 1 << 20))
    after.check(c.nodes)
