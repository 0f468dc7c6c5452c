# SPDX-License-Identifier: Apache-2.0
"""The cache under memory pressure (docs/eviction.md): a 64 MiB node, or a
cluster of three, filled with 1 MiB files far past its capacity.

- writes keep succeeding: the master evicts (oldest access first, a read
  counts as an access) and pool usage comes back under --high-watermark;
  recently read files stay, the oldest unread ones go;
- soft-pinned files go only when nothing unpinned is left, hard-pinned
  ones never; soft_pin_ms counts down --soft-pin-ttl, capped by
  --max-soft-pin-ttl;
- a file held open (for reading, or for a rewrite) is never evicted and
  reads back bit-exact; an unlinked open file reads to the end and its
  space comes back only after the last lease ends;
- with nothing evictable (all hard-pinned, or all held open), ENOSPC and
  nothing half-visible; the writes succeed again once something is
  evictable;
- statfs gives the pool's capacity and free space;
- zombie puts: a writer killed mid-write publishes nothing (and a process
  sharing its open file gets an error, not an EINTR it would retry
  forever), a put whose writer never ends it (driven here straight over
  the master's RPC) is revoked after --put-timeout, and a writer node
  killed mid-put takes its put with it.

Every master runs with --lease-ttl 2s, so that what waits for a lease to
end is observable quickly. No assertion depends on timing: waits poll with
deadlines many times longer than needed."""

import errno
import hashlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

import helpers
from helpers import MiB, read_file, wait_for, write_file

MODES = ("embedded", "external")
SEGMENT = 64 * MiB
LEASE_TTL = "2s"
LEASE_S = 2.0
# Deadline for anything the master does in the background (a lease
# ending, a round of eviction, a put timing out): generous.
DEADLINE = 60
# Files evicted in LRU order may come out of order by this many places:
# the LRU clock ticks every 64 ms, several 1 MiB writes share a tick.
LRU_SLACK = 12


def sha(data):
    return hashlib.sha256(data).hexdigest()


def pressure_node(start_node, mode, opts=(), segment=SEGMENT):
    """A node with a segment of `segment` bytes whose master (embedded or
    external) runs with --lease-ttl 2s and opts."""
    opts = ["--lease-ttl", LEASE_TTL] + list(opts)
    size = f"{segment // MiB}M"
    if mode == "embedded":
        return start_node(mode, segment_size=size, extra=opts)
    return start_node(mode, segment_size=size, master_extra=opts)


class Files:
    """What a test wrote: path -> sha256 and size, written with
    reproducible content, and the checks of what is left."""

    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.want = {}
        self.failed = []  # (path, errno) of writes that failed

    def write(self, path, size=MiB):
        """Write a new file; a failure is recorded, not raised."""
        data = self.rnd.randbytes(size)
        try:
            write_file(path, data)
        except OSError as e:
            self.failed.append((path, errno.errorcode.get(e.errno, e.errno)))
            return False
        self.want[path] = (sha(data), len(data))
        return True

    def check(self, path):
        """path reads back bit-exact."""
        got = read_file(path)
        assert (sha(got), len(got)) == self.want[path], \
            f"{path}: read {len(got)} bytes that are not what was written ({self.want[path][1]})"

    def present(self, paths):
        return [p for p in paths if os.path.exists(p)]


def names(d):
    return set(os.listdir(d))


def statfs(mnt):
    """(total, free, available) bytes."""
    st = os.statvfs(mnt)
    return st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize


def used(mnt):
    total, free, _ = statfs(mnt)
    return total - free


def under_watermark(mnt, ratio=0.90):
    total, free, _ = statfs(mnt)
    return total - free <= ratio * total


def settle(mnt, dirs=("",), quiet=2.0):
    """Wait until eviction has stopped: the pool usage and the names in
    dirs (below mnt) unchanged for `quiet` seconds. A round of eviction
    goes on for a few ticks after the write that started it returned."""
    def snap():
        return used(mnt), tuple(tuple(sorted(os.listdir(os.path.join(mnt, d)))) for d in dirs)

    last, since = snap(), time.monotonic()
    deadline = since + DEADLINE
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"eviction still going on after {DEADLINE}s")
        time.sleep(0.25)
        now = snap()
        if now != last:
            last, since = now, time.monotonic()


def write_until_enospc(path, total, chunk=MiB):
    """Write total bytes to a new file; returns (step, errno) of the first
    failure ("write" or "close"), or None when it all went through."""
    block = os.urandom(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    failure = None
    try:
        written = 0
        while written < total:
            try:
                written += os.write(fd, block[: min(chunk, total - written)])
            except OSError as e:
                failure = ("write", e.errno)
                break
    finally:
        try:
            os.close(fd)
        except OSError as e:
            failure = failure or ("close", e.errno)
    return failure


def describe(paths):
    """path: its cache state, for a failure message."""
    out = {}
    for p in paths[:8]:
        try:
            out[os.path.basename(p)] = {a: os.getxattr(p, f"user.mcfs.{a}").decode() for a in
                                        ("lease_ms", "soft_pin_ms", "hard_pin", "replicas")}
        except OSError as e:
            out[os.path.basename(p)] = errno.errorcode.get(e.errno, e.errno)
    return out


def lru_check(evicted, survivors, first, what):
    """The evicted indices are the oldest ones, up to LRU_SLACK places:
    with k evicted, none is younger than first + k + LRU_SLACK, and at
    least one of the k oldest went."""
    k = len(evicted)
    if not k:
        return
    assert max(evicted) < first + k + LRU_SLACK, \
        f"{what}: evicted {sorted(evicted)} but kept {sorted(survivors)[:20]}...: not oldest first"
    assert min(evicted) < first + k, f"{what}: evicted {sorted(evicted)}, none of the oldest"


# -- eviction order -------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_recently_read_stay_oldest_unread_go(start_node, mode):
    node = pressure_node(start_node, mode)
    d = os.path.join(node.mnt, "lru")
    os.mkdir(d)
    files = Files(1)
    path = [os.path.join(d, f"f{i:03d}") for i in range(80)]
    # 50 MiB: under the watermark (57.6 MiB), nothing goes yet.
    for p in path[:50]:
        files.write(p)
    assert not files.failed, files.failed
    assert names(d) == {f"f{i:03d}" for i in range(50)}, "evicted before the pool filled"
    # The ten oldest are read: now they are the most recently accessed of
    # the first fifty. Their leases end before the pressure starts, so they
    # stay by LRU order, not by lease. The master's LRU clock ticks every
    # 64 ms: the reads come a few ticks after the writes, or a fast machine
    # does both in one tick and the read files tie with the unread ones.
    time.sleep(0.3)
    for p in path[:10]:
        files.check(p)
    time.sleep(LEASE_S + 1)
    # 30 MiB more: 80 MiB into 64.
    for p in path[50:]:
        files.write(p)
    assert not files.failed, f"writes failed under pressure: {files.failed[:5]}"
    wait_for(lambda: under_watermark(node.mnt), DEADLINE, "pool usage back under the watermark")
    settle(node.mnt, ["lru"])
    kept = names(d)
    gone = sorted(i for i in range(80) if f"f{i:03d}" not in kept)
    print(f"evicted: {gone}")
    assert len(gone) >= 80 - 64, f"only {len(gone)} of 80 MiB evicted from a 64 MiB pool"
    missing_read = [i for i in range(10) if i in gone]
    assert not missing_read, f"recently read files were evicted: {missing_read}"
    assert not [i for i in range(70, 80) if i in gone], f"the newest files were evicted: {gone}"
    lru_check(gone, [i for i in range(10, 80) if i not in gone], 10, "unread files")
    for i in range(80):
        if i not in gone:
            files.check(path[i])
    # Evicted means gone from the namespace, not an empty or broken file.
    for i in gone[:5]:
        with pytest.raises(FileNotFoundError):
            open(path[i], "rb")


@pytest.mark.parametrize("mode", MODES)
def test_fill_far_past_capacity(start_node, mode):
    node = pressure_node(start_node, mode)
    total, free0, _ = statfs(node.mnt)
    assert total == SEGMENT, f"statfs total {total}, the node contributes {SEGMENT}"
    for d in ("hot", "cold"):
        os.mkdir(os.path.join(node.mnt, d))
    files = Files(2)
    hot = [os.path.join(node.mnt, "hot", f"h{i}") for i in range(4)]
    cold = [os.path.join(node.mnt, "cold", f"c{i:03d}") for i in range(192)]
    for p in hot:
        files.write(p)
    # Three times the pool; the hot files are read every 16 writes.
    for i, p in enumerate(cold):
        files.write(p)
        if i % 16 == 15:
            for h in hot:
                files.check(h)
        t, f, a = statfs(node.mnt)
        assert t == total and 0 <= a <= f <= t, f"statfs after {i + 1} writes: {t} {f} {a}"
    assert not files.failed, f"{len(files.failed)} writes failed under pressure: {files.failed[:5]}"
    wait_for(lambda: under_watermark(node.mnt), DEADLINE, "pool usage back under the watermark")
    settle(node.mnt, ["hot", "cold"])
    for h in hot:
        assert os.path.exists(h), f"{h} was read every 16 writes and still evicted"
        files.check(h)
    kept = names(os.path.join(node.mnt, "cold"))
    gone = [i for i in range(192) if f"c{i:03d}" not in kept]
    print(f"kept: {sorted(set(range(192)) - set(gone))}")
    assert len(kept) <= 64, f"{len(kept)} MiB of files in a 64 MiB pool"
    assert not [i for i in range(176, 192) if i in gone], "the newest 16 files were evicted"
    stayed = sorted(set(range(32)) - set(gone))
    assert not stayed, f"old unread files stayed: {describe([cold[i] for i in stayed])}"
    lru_check(gone, [i for i in range(192) if i not in gone], 0, "cold files")
    for i in range(192):
        if i not in gone:
            files.check(cold[i])
    # Usage is what the survivors take, give or take a file being staged.
    u = used(node.mnt)
    assert u >= (len(kept) + len(hot)) * MiB, f"statfs says {u} used, files hold more"


# -- pins -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_pinned_stay_unpinned_go(start_node, mode):
    node = pressure_node(start_node, mode)
    m = node.mnt
    for d in ("soft", "hard", "plain"):
        os.mkdir(os.path.join(m, d))
    os.setxattr(os.path.join(m, "soft"), "user.mcfs.soft_pin", b"1")
    os.setxattr(os.path.join(m, "hard"), "user.mcfs.hard_pin", b"1")
    files = Files(3)
    soft = [os.path.join(m, "soft", f"s{i:02d}") for i in range(12)]
    hard = [os.path.join(m, "hard", f"h{i:02d}") for i in range(12)]
    plain = [os.path.join(m, "plain", f"p{i:03d}") for i in range(120)]
    # The pinned files are the oldest in the pool, and one more is pinned
    # on the file itself.
    for s, h in zip(soft, hard):
        files.write(s)
        files.write(h)
    solo = os.path.join(m, "solo")
    files.write(solo)
    os.setxattr(solo, "user.mcfs.soft_pin", b"1")
    assert not files.failed, files.failed
    for p in soft + [solo]:
        assert os.getxattr(p, "user.mcfs.soft_pin") == b"1", p
        left = int(os.getxattr(p, "user.mcfs.soft_pin_ms"))
        assert 0 < left <= 30 * 60 * 1000, f"{p}: soft_pin_ms {left} with the default 30 min pin"
    for p in hard:
        assert os.getxattr(p, "user.mcfs.hard_pin") == b"1", p
        assert os.getxattr(p, "user.mcfs.soft_pin_ms") == b"0", p
    for p in plain:
        files.write(p)
    assert not files.failed, f"writes failed under pressure: {files.failed[:5]}"
    wait_for(lambda: under_watermark(m), DEADLINE, "pool usage back under the watermark")
    settle(m, ["soft", "hard", "plain", ""])
    lost = [p for p in soft + hard + [solo] if not os.path.exists(p)]
    assert not lost, f"pinned files evicted while unpinned ones were left: {lost}"
    for p in soft + hard + [solo]:
        files.check(p)
    kept = names(os.path.join(m, "plain"))
    gone = [i for i in range(120) if f"p{i:03d}" not in kept]
    assert len(gone) >= 120 - (64 - 25), f"only {len(gone)} unpinned files evicted"
    lru_check(gone, [i for i in range(120) if i not in gone], 0, "unpinned files")


@pytest.mark.parametrize("mode", MODES)
def test_soft_pins_go_second_hard_never(start_node, mode):
    # A watermark of 0.99 keeps the background rounds out of it: only the
    # allocation of the big file evicts.
    node = pressure_node(start_node, mode, ["--high-watermark", "0.99"])
    m = node.mnt
    for d in ("soft", "hard"):
        os.mkdir(os.path.join(m, d))
    os.setxattr(os.path.join(m, "soft"), "user.mcfs.soft_pin", b"1")
    os.setxattr(os.path.join(m, "hard"), "user.mcfs.hard_pin", b"1")
    files = Files(4)
    soft = [os.path.join(m, "soft", f"s{i:02d}") for i in range(40)]
    hard = [os.path.join(m, "hard", f"h{i:02d}") for i in range(16)]
    for p in soft + hard:
        files.write(p)
    assert not files.failed, files.failed
    assert len(names(os.path.join(m, "soft"))) == 40, "soft-pinned files evicted with room left"
    # 56 MiB pinned, no unpinned object at all: a 12 MiB file makes room by
    # evicting soft-pinned ones, the oldest first. (It may go itself right
    # after: the round its allocation started takes unpinned objects first,
    # and it is the only one.)
    big = os.path.join(m, "big")
    assert files.write(big, 12 * MiB), f"12 MiB with 40 soft-pinned MiB evictable: {files.failed}"
    settle(m, ["soft", "hard", ""])
    lost = [p for p in hard if not os.path.exists(p)]
    assert not lost, f"hard-pinned files evicted: {lost}"
    kept = names(os.path.join(m, "soft"))
    gone = [i for i in range(40) if f"s{i:02d}" not in kept]
    print(f"soft-pinned evicted: {gone}, big kept: {os.path.exists(big)}")
    assert len(gone) >= 4, f"only {len(gone)} soft-pinned files evicted to make 12 MiB of room"
    lru_check(gone, [i for i in range(40) if i not in gone], 0, "soft-pinned files")
    for p in hard + [s for s in soft if os.path.exists(s)] + [big] * os.path.exists(big):
        files.check(p)


def test_soft_pin_runs_out(start_node):
    node = pressure_node(start_node, "embedded", ["--soft-pin-ttl", "3s"])
    p = os.path.join(node.mnt, "short")
    write_file(p, b"x" * 4096)
    os.setxattr(p, "user.mcfs.soft_pin", b"1")
    left = int(os.getxattr(p, "user.mcfs.soft_pin_ms"))
    assert 0 < left <= 3000, f"soft_pin_ms {left} with --soft-pin-ttl 3s"
    wait_for(lambda: os.getxattr(p, "user.mcfs.soft_pin_ms") == b"0", DEADLINE,
             "a 3 s soft pin to run out")


@pytest.mark.parametrize("mode", MODES)
def test_soft_pin_capped_by_max(start_node, mode):
    # Only the cap is lowered: the default pin (30 min) is cut to it.
    node = pressure_node(start_node, mode, ["--max-soft-pin-ttl", "10m"])
    d = os.path.join(node.mnt, "pinned")
    os.mkdir(d)
    os.setxattr(d, "user.mcfs.soft_pin", b"1")
    p = os.path.join(d, "capped")
    write_file(p, b"y" * 4096)
    assert os.getxattr(p, "user.mcfs.soft_pin") == b"1"
    left = int(os.getxattr(p, "user.mcfs.soft_pin_ms"))
    assert 9 * 60 * 1000 < left <= 10 * 60 * 1000, f"soft_pin_ms {left} with --max-soft-pin-ttl 10m"


# -- leases -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_open_file_survives_pressure(start_node, mode):
    node = pressure_node(start_node, mode)
    m = node.mnt
    files = Files(5)
    held = os.path.join(m, "held")
    files.write(held, 8 * MiB + 123)
    want = files.want[held]
    os.mkdir(os.path.join(m, "fill"))
    with open(held, "rb", buffering=0) as f:
        head = f.read(MiB)
        lease = int(os.getxattr(held, "user.mcfs.lease_ms"))
        assert 0 < lease <= 2000, f"lease_ms {lease} on an open file with --lease-ttl 2s"
        # Three pools' worth of writes while it stays open, past several
        # lease TTLs: the daemon renews the lease.
        for i in range(192):
            files.write(os.path.join(m, "fill", f"f{i:03d}"))
        assert not files.failed, f"writes failed under pressure: {files.failed[:5]}"
        assert os.path.exists(held), "a file held open was evicted"
        assert int(os.getxattr(held, "user.mcfs.lease_ms")) > 0, "the open file's lease ran out"
        rest = f.read()
    assert (sha(head + rest), len(head) + len(rest)) == want, "the open file did not read back bit-exact"
    files.check(held)


@pytest.mark.parametrize("mode", MODES)
def test_file_being_rewritten_survives(start_node, mode):
    # The oldest file in the pool is being rewritten, slower than a lease
    # lasts, while the pool is filled past capacity: its writer has it
    # open, so neither it nor the new version is lost.
    node = pressure_node(start_node, mode)
    m = node.mnt
    files = Files(11)
    r = os.path.join(m, "rewritten")
    files.write(r)
    os.mkdir(os.path.join(m, "fill"))
    for i in range(40):
        files.write(os.path.join(m, "fill", f"a{i:02d}"))
    new = files.rnd.randbytes(MiB)
    fd = os.open(r, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, new[: MiB // 2])
        time.sleep(LEASE_S + 1)
        for i in range(60):
            files.write(os.path.join(m, "fill", f"b{i:02d}"))
        assert not files.failed, f"writes failed under pressure: {files.failed[:5]}"
        os.write(fd, new[MiB // 2 :])
    finally:
        os.close(fd)
    assert read_file(r) == new, "a file rewritten under pressure did not read back as written"


@pytest.mark.parametrize("mode", MODES)
def test_unlink_open_file(start_node, mode):
    node = pressure_node(start_node, mode)
    m = node.mnt
    files = Files(6)
    victim = os.path.join(m, "victim")
    files.write(victim, 16 * MiB)
    data_sha, size = files.want[victim]
    f = open(victim, "rb", buffering=0)
    try:
        head = f.read(MiB)
        _, free0, _ = statfs(m)
        os.unlink(victim)  # succeeds at once, open or not
        assert not os.path.exists(victim)
        assert "victim" not in os.listdir(m)
        with pytest.raises(FileNotFoundError):
            open(victim, "rb")
        # Its space stays taken while it is open, past several lease TTLs.
        time.sleep(2 * LEASE_S + 1)
        _, free1, _ = statfs(m)
        assert free1 < free0 + 8 * MiB, \
            f"the space of an unlinked open file was freed ({free0} -> {free1} bytes free)"
        # Pressure: the pool fills and is evicted from; the unlinked file's
        # range must not be reused under its reader.
        fill = os.path.join(m, "fill")
        os.mkdir(fill)
        for i in range(100):
            files.write(os.path.join(fill, f"f{i:03d}"))
        assert not files.failed, f"writes failed under pressure: {files.failed[:5]}"
        settle(m, ["fill"])
        n = len(os.listdir(fill))
        assert used(m) >= (n + 16) * MiB, \
            f"{used(m)} bytes used by {n} MiB of files and a 16 MiB unlinked open one"
        rest = f.read()
        assert (sha(head + rest), len(head) + len(rest)) == (data_sha, size), \
            "an unlinked open file did not read to the end bit-exact"
    finally:
        f.close()
    # Closed: once its lease ends, its 16 MiB come back; what is used is
    # the files that are left.
    wait_for(lambda: used(m) <= len(os.listdir(fill)) * MiB + MiB // 2, DEADLINE,
             "the 16 MiB of the unlinked file to come back after its lease")


@pytest.mark.parametrize("mode", MODES)
def test_enospc_when_all_held_open(start_node, mode):
    node = pressure_node(start_node, mode)
    m = node.mnt
    files = Files(7)
    d = os.path.join(m, "open")
    os.mkdir(d)
    paths = [os.path.join(d, f"f{i:02d}") for i in range(56)]
    for p in paths:
        files.write(p)
    assert not files.failed, files.failed
    held = [open(p, "rb", buffering=0) for p in paths]
    try:
        # Everything is leased: a 16 MiB write cannot make room.
        new = os.path.join(m, "new")
        failure = write_until_enospc(new, 16 * MiB)
        assert failure is not None and failure[1] == errno.ENOSPC, \
            f"16 MiB into a pool of leased files: {failure} (want ENOSPC)"
        assert not os.path.exists(new) and "new" not in os.listdir(m), "a failed write is visible"
        gone = [p for p in paths if not os.path.exists(p)]
        assert not gone, f"files held open were evicted: {gone}"
        for p, f in zip(paths, held):
            got = f.read()
            assert (sha(got), len(got)) == files.want[p], f"{p} read wrong while held open"
    finally:
        for f in held:
            f.close()
    # Closed, their leases end and they become evictable again.
    def fits():
        return write_until_enospc(os.path.join(m, "new"), 16 * MiB) is None

    wait_for(fits, DEADLINE, "a 16 MiB write to succeed once the leases ended", interval=0.5)


@pytest.mark.parametrize("mode", MODES)
def test_enospc_when_all_hard_pinned(start_node, mode):
    node = pressure_node(start_node, mode)
    m = node.mnt
    d = os.path.join(m, "pinned")
    os.mkdir(d)
    os.setxattr(d, "user.mcfs.hard_pin", b"1")
    files = Files(8)
    written = []
    failure = None
    for i in range(80):
        p = os.path.join(d, f"f{i:02d}")
        data = files.rnd.randbytes(MiB)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        except OSError as e:
            failure = ("write", e.errno, p)
        finally:
            try:
                os.close(fd)
            except OSError as e:
                failure = failure or ("close", e.errno, p)
        if failure:
            break
        files.want[p] = (sha(data), len(data))
        written.append(p)
    assert failure is not None, "80 hard-pinned MiB fit in a 64 MiB pool"
    assert failure[1] == errno.ENOSPC, f"{failure}: want ENOSPC"
    assert len(written) >= 56, f"ENOSPC after only {len(written)} MiB of a 64 MiB pool"
    # Nothing half-visible: the failed file is not there, the others are whole.
    assert not os.path.exists(failure[2]), f"{failure[2]} is visible after ENOSPC"
    assert names(d) == {os.path.basename(p) for p in written}
    for p in written:
        files.check(p)
    # An unpinned write cannot evict them either.
    other = os.path.join(m, "other")
    f2 = write_until_enospc(other, 8 * MiB)
    assert f2 is not None and f2[1] == errno.ENOSPC, f"unpinned 8 MiB into a hard-pinned pool: {f2}"
    assert not os.path.exists(other)
    assert names(d) == {os.path.basename(p) for p in written}, "hard-pinned files were evicted"
    # Unpin eight: they become evictable (once the leases of the reads
    # above end) and the write goes through.
    for p in written[:8]:
        os.setxattr(p, "user.mcfs.hard_pin", b"0")
    wait_for(lambda: write_until_enospc(other, 8 * MiB) is None, DEADLINE,
             "an 8 MiB write to succeed once 8 MiB were unpinned", interval=0.5)
    assert all(os.path.exists(p) for p in written[8:]), "files still hard-pinned were evicted"


# -- statfs -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_statfs_sizes_the_cache(start_node, mode):
    node = pressure_node(start_node, mode)
    m = node.mnt
    st = os.statvfs(m)
    total, free, avail = statfs(m)
    assert total == SEGMENT, f"capacity {total}, the node contributes {SEGMENT}"
    assert st.f_bsize > 0 and st.f_frsize > 0 and st.f_namemax >= 255
    assert free == avail and total - free < MiB, f"fresh pool: total {total}, free {free}, avail {avail}"
    files = Files(9)
    paths = [os.path.join(m, f"f{i}") for i in range(10)]
    for p in paths:
        files.write(p)
    _, free1, _ = statfs(m)
    assert 10 * MiB <= free - free1 <= 11 * MiB, f"10 MiB of files took {free - free1} bytes"
    # Never read, so no lease: unlinking gives the space back.
    for p in paths:
        os.unlink(p)
    wait_for(lambda: statfs(m)[1] >= free - MiB // 2, DEADLINE, "the space of unlinked files back")


# -- zombie puts ------------------------------------------------------------------
_PARTIAL_WRITER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
block = os.urandom(1 << 20)
for _ in range(int(sys.argv[2])):
    os.write(fd, block)
print("written", flush=True)
sys.stdin.read()  # killed before it ever closes
"""


def start_partial_writer(path, mib):
    p = subprocess.Popen([sys.executable, "-c", _PARTIAL_WRITER, path, str(mib)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if line.strip() != "written":
        p.kill()
        p.wait()
        raise AssertionError(f"the writer did not get {mib} MiB written (exit {p.poll()})")
    return p


@pytest.mark.parametrize("mode", MODES)
def test_killed_writer_publishes_nothing(start_node, mode):
    node = pressure_node(start_node, mode)
    m = node.mnt
    _, free0, _ = statfs(m)
    path = os.path.join(m, "partial")
    w = start_partial_writer(path, 16)
    try:
        _, free1, _ = statfs(m)
        assert free1 <= free0 - 16 * MiB, f"16 MiB staged, free went {free0} -> {free1}"
    finally:
        w.send_signal(signal.SIGKILL)
        w.wait()
    # The writer died between put_start and put_end: no half-object. (Its
    # pending file may linger on this node until the daemon revokes the put,
    # but a checksum means the master published it.)
    def gone():
        try:
            crc = os.getxattr(path, "user.mcfs.checksum")
        except OSError:
            return not os.path.exists(path)
        raise AssertionError(f"the 16 MiB a killed writer left were published ({crc.decode()}, "
                             f"{os.stat(path).st_size} bytes)")

    wait_for(gone, DEADLINE, "the file of a writer killed mid-write to go")
    assert "partial" not in os.listdir(m)
    wait_for(lambda: statfs(m)[1] >= free0 - MiB // 2, DEADLINE,
             "the staged space of the killed writer to come back")


_SHARED_WRITER = r"""
import json, os, signal, sys, time
path = sys.argv[1]
out = {}
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"a" * (1 << 20))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(fd, b"b" * (1 << 20))
    os.write(w, b"x")
    time.sleep(600)
    os._exit(0)
os.read(r, 1)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
for step in ("write", "close"):
    try:
        if step == "write":
            os.write(fd, b"c" * (1 << 20))
        else:
            os.close(fd)
        out[step] = "ok"
    except OSError as e:
        out[step] = __import__("errno").errorcode.get(e.errno, str(e.errno))
print(json.dumps(out), flush=True)
"""


@pytest.mark.parametrize("mode", MODES)
def test_killed_writer_sharing_a_file(start_node, mode):
    # A writer forks; the child, writing through the same open file, is
    # killed. The parent's next write and close must answer (an error is
    # fine, EINTR is not: callers retry it forever), and no half-object
    # may show.
    node = pressure_node(start_node, mode)
    path = os.path.join(node.mnt, "shared")
    p = subprocess.Popen([sys.executable, "-c", _SHARED_WRITER, path], stdout=subprocess.PIPE,
                         text=True)
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        out = None
    if out is None:
        p.kill()
        p.communicate()
        pytest.fail("a write after a killed child shared the file never returned "
                    "(the daemon answers EINTR, which callers retry forever?)")
    res = json.loads(out)
    assert "EINTR" not in res.values(), f"write/close after the killed child: {res}"
    if os.path.exists(path):
        got = read_file(path)
        assert got == b"a" * MiB + b"b" * MiB + b"c" * MiB, \
            f"a half-object was published: {len(got)} bytes (write/close: {res})"


class MasterClient:
    """A bare metadata session over TCP (docs/protocol.md): frames built
    by hand, as any client may send them."""

    MAGIC = 0x5346434D
    HELLO, HEARTBEAT, BYE, STATFS, LOOKUP, CREATE = 1, 2, 3, 4, 10, 14
    PUT_START, PUT_END = 30, 32

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.req_id = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        out = b""
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise ConnectionError("the master closed the session")
            out += b
        return out

    def call(self, type_, payload):
        """(status, response fields)"""
        self.req_id += 1
        self.sock.sendall(struct.pack("<IBBHIIQ", self.MAGIC, 1, 0, type_, len(payload), 0,
                                      self.req_id) + payload)
        _, _, flags, rtype, length, _, rid = struct.unpack("<IBBHIIQ", self._recv(24))
        body = self._recv(length)
        assert flags & 1 and rtype == type_ and rid == self.req_id, "response out of step"
        status, _epoch = struct.unpack_from("<iQ", body)
        return status, body[12:]

    @staticmethod
    def s(text):
        b = text.encode()
        return struct.pack("<I", len(b)) + b

    def hello(self, name, addr, size):
        st, body = self.call(self.HELLO, struct.pack("<I", 3) + self.s(name) + self.s(addr)
                             + struct.pack("<QIQ", size, 0, 0))  # size, flags, incarnation
        assert st == 0, f"HELLO: {st}"
        return struct.unpack_from("<Q", body)[0]

    def statfs(self):
        st, body = self.call(self.STATFS, b"")
        assert st == 0, f"STATFS: {st}"
        return struct.unpack_from("<QQI", body)

    def lookup(self, parent, name):
        st, body = self.call(self.LOOKUP, struct.pack("<Q", parent) + self.s(name))
        return st, (struct.unpack_from("<Q", body)[0] if st == 0 else None)

    def create(self, parent, name):
        st, body = self.call(self.CREATE, struct.pack("<Q", parent) + self.s(name)
                             + struct.pack("<IIIII", 0o100644, 0, 0, 0, 0))
        assert st == 0, f"CREATE {name}: {st}"
        return struct.unpack_from("<Q", body)[0]

    def put_start(self, ino, size):
        st, body = self.call(self.PUT_START, struct.pack("<QQ", ino, size))
        return st, (struct.unpack_from("<Q", body)[0] if st == 0 else None)

    def put_end(self, put_id, size, crc):
        return self.call(self.PUT_END, struct.pack("<QQII", put_id, size, crc, 0))[0]

    def bye(self):
        return self.call(self.BYE, struct.pack("<Q", 0))[0]


def _master_has(option):
    r = subprocess.run([helpers.binary("mcfs-master"), "--help"], capture_output=True, text=True)
    return f"--{option} " in r.stdout


def test_abandoned_put_is_revoked(start_node):
    if not _master_has("put-timeout"):
        pytest.fail("mcfs-master has no --put-timeout option (the issue's contract)")
    node = pressure_node(start_node, "external", ["--put-timeout", "3s"])
    mc = MasterClient(node.master_port)
    try:
        # A node of its own (a segment the master allocates in; the address
        # serves nothing), and a put it starts and never ends.
        mc.hello("zombie", f"127.0.0.1:{helpers.free_port()}", 32 * MiB)
        total0, free0, _ = mc.statfs()
        ino = mc.create(1, "zombie-file")
        st, put_id = mc.put_start(ino, 16 * MiB)
        assert st == 0, f"PUT_START: {st}"
        total1, free1, _ = mc.statfs()
        assert free1 <= free0 - 16 * MiB, f"a 16 MiB put left free at {free1} (was {free0})"
        assert "zombie-file" not in os.listdir(node.mnt), "a pending file is visible to another node"
        # It stays silent about the put (STATFS keeps the node alive):
        # after --put-timeout the master revokes it and the space returns.
        wait_for(lambda: mc.statfs()[1] >= free0, DEADLINE,
                 "the space of an abandoned put to come back after --put-timeout")
        assert mc.put_end(put_id, 16 * MiB, 0) == -errno.ENOENT, "a revoked put was published"
        assert mc.lookup(1, "zombie-file")[0] == -errno.ENOENT, \
            "the pending file of a revoked put is still there"
        assert "zombie-file" not in os.listdir(node.mnt)
        assert not os.path.exists(os.path.join(node.mnt, "zombie-file"))
        mc.bye()
    finally:
        mc.close()
    # The node itself went on working throughout.
    write_file(os.path.join(node.mnt, "after"), b"ok" * 1000)
    assert read_file(os.path.join(node.mnt, "after")) == b"ok" * 1000


# -- a cluster ----------------------------------------------------------------------
def test_cluster_under_pressure(cluster):
    c = cluster(3, segment_size="64M", master_extra=["--lease-ttl", LEASE_TTL])
    a, b, cc = c.nodes
    total = statfs(a.mnt)[0]
    assert total == 3 * SEGMENT, f"pool of three 64 MiB nodes is {total}"
    rnd = random.Random(10)
    want = {}  # path below the mount -> (sha256, size)
    lock = threading.Lock()

    def put(n, rel, data):
        write_file(os.path.join(n.mnt, rel), data)
        with lock:
            want[rel] = (sha(data), len(data))

    for n in c.nodes:
        os.mkdir(os.path.join(a.mnt, f"w-{n.name}"))
    os.mkdir(os.path.join(a.mnt, "pin"))
    os.setxattr(os.path.join(a.mnt, "pin"), "user.mcfs.hard_pin", b"1")
    os.mkdir(os.path.join(a.mnt, "hot"))
    pinned = [f"pin/p{i}" for i in range(4)]
    hot = [f"hot/h{i}" for i in range(4)]
    for rel in pinned + hot:
        put(a, rel, rnd.randbytes(MiB))
    put(a, "held", rnd.randbytes(8 * MiB))
    per_node = 150  # 2.3 times each node's segment, all three at once
    errors = []

    def writer(n, seed):
        r = random.Random(seed)
        for i in range(per_node):
            try:
                put(n, f"w-{n.name}/f{i:03d}", r.randbytes(MiB))
            except OSError as e:
                errors.append((n.name, i, errno.errorcode.get(e.errno, e.errno)))
            # node-b keeps the hot files of node-a recently read.
            if n is b and i % 16 == 15:
                for rel in hot:
                    try:
                        got = read_file(os.path.join(b.mnt, rel))
                    except OSError as e:
                        errors.append(("node-b read", rel, errno.errorcode.get(e.errno, e.errno)))
                        continue
                    if (sha(got), len(got)) != want[rel]:
                        errors.append(("node-b read", rel, "not bit-exact"))

    # node-c holds a file of node-a open through the whole run.
    held = open(os.path.join(cc.mnt, "held"), "rb", buffering=0)
    try:
        head = held.read(MiB)
        threads = [threading.Thread(target=writer, args=(n, 100 + k)) for k, n in enumerate(c.nodes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, f"{len(errors)} failures under pressure, e.g. {errors[:5]}"
        assert os.path.exists(os.path.join(cc.mnt, "held")), "a file held open on node-c was evicted"
        rest = held.read()
        assert (sha(head + rest), len(head) + len(rest)) == want["held"], \
            "a file held open on node-c did not read back bit-exact"
    finally:
        held.close()
    wait_for(lambda: under_watermark(a.mnt), DEADLINE, "pool usage back under the watermark")
    settle(a.mnt, [f"w-{n.name}" for n in c.nodes])
    # Every node sees the same namespace: evicted names are gone everywhere.
    for n in c.nodes:
        d = f"w-{n.name}"
        wait_for(lambda d=d: names(os.path.join(a.mnt, d)) == names(os.path.join(b.mnt, d))
                 == names(os.path.join(cc.mnt, d)), DEADLINE, f"the nodes to agree on {d}")
        kept = names(os.path.join(a.mnt, d))
        gone = [i for i in range(per_node) if f"f{i:03d}" not in kept]
        print(f"{d}: kept {sorted(set(range(per_node)) - set(gone))}")
        assert len(kept) <= 64, f"{d}: {len(kept)} MiB on a 64 MiB node"
        assert not [i for i in range(per_node - 8, per_node) if i in gone], \
            f"{d}: the newest files were evicted: {gone}"
        lru_check(gone, [i for i in range(per_node) if i not in gone], 0, d)
        for i in gone[:3]:
            for r in c.nodes:
                with pytest.raises(FileNotFoundError):
                    open(os.path.join(r.mnt, d, f"f{i:03d}"), "rb")
    for rel in pinned + hot:
        assert os.path.exists(os.path.join(b.mnt, rel)), f"{rel} was evicted"
    # Everything left reads bit-exact through the nodes that did not write it.
    rels = [r for r in want if os.path.exists(os.path.join(a.mnt, r))]
    for n in c.nodes:
        paths = {os.path.join(n.mnt, r): r for r in rels if not r.startswith(f"w-{n.name}/")}
        got = helpers.digests(paths, timeout=120)
        bad = [(paths[p], got[p]) for p in paths if got[p] != want[paths[p]]]
        assert not bad, f"{n.name}: {len(bad)} files not bit-exact, e.g. {bad[:5]}"


def test_cluster_writer_node_dies_mid_put(cluster):
    c = cluster(3, segment_size="64M", master_extra=["--lease-ttl", LEASE_TTL])
    a, b, cc = c.nodes
    total3 = statfs(a.mnt)[0]
    path_b = os.path.join(b.mnt, "partial")
    w = start_partial_writer(path_b, 16)
    try:
        for n in (a, cc):
            assert not os.path.exists(os.path.join(n.mnt, "partial")), \
                f"a file being written on node-b is visible on {n.name}"
        # The writer's node dies mid-put: the put dies with it.
        b.kill()
    finally:
        w.kill()
        w.wait()
    wait_for(lambda: statfs(a.mnt)[0] < total3, DEADLINE, "node-b to be dropped from the pool")
    for n in (a, cc):
        assert not os.path.exists(os.path.join(n.mnt, "partial")), \
            f"the put of a dead node became visible on {n.name}"
        assert "partial" not in os.listdir(n.mnt)
    # Back, node-b has no trace of it either, and the pool is whole again.
    b.start()
    wait_for(lambda: statfs(a.mnt)[0] == total3, DEADLINE, "node-b's segment back in the pool")
    assert not os.path.exists(path_b)
    total, free, _ = statfs(a.mnt)
    assert total - free < MiB, f"{total - free} bytes still used in an empty cluster"


# -- read holds ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["embedded", "external"])
def test_replaced_versions_free_when_their_readers_close(start_node, mode):
    """A 4 MiB key rewritten and read 100 times on a 64 MiB node: 400 MiB of
    versions. Each replaced version is freed as soon as its last reader has
    closed it (RELEASE), not when its read lease ends (10 s here, far longer
    than the test), so no write ever finds the pool full. A reader that
    keeps an old version open keeps it, bit-exact, while the key moves on."""
    node = pressure_node(start_node, mode, ["--lease-ttl", "10s"])
    path = os.path.join(node.mnt, "key")
    rnd = random.Random(21)
    first = rnd.randbytes(4 * MiB)
    write_file(path, first)
    keeper = open(path, "rb")  # holds the first version to the end
    try:
        for i in range(100):
            data = rnd.randbytes(4 * MiB)
            write_file(path, data)
            assert read_file(path) == data, f"round {i}"
        assert keeper.read() == first
    finally:
        keeper.close()
    # Everything but the current version (and nothing pinned it) is free again.
    st = os.statvfs(node.mnt)
    deadline = time.monotonic() + DEADLINE
    while st.f_bfree * st.f_frsize < SEGMENT - 8 * MiB and time.monotonic() < deadline:
        time.sleep(0.2)
        st = os.statvfs(node.mnt)
    assert st.f_bfree * st.f_frsize >= SEGMENT - 8 * MiB
