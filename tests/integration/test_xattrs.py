# SPDX-License-Identifier: Apache-2.0
"""The user.mcfs.* extended attributes (INTERFACE.md, docs/xattrs.md): names
listed, value formats, defaults, inheritance from a directory, and the
errno rules: ENODATA for an unknown mcfs name, EPERM for writing a
read-only one, EINVAL for a bad value, 64 KiB per file for other user.*
attributes."""

import errno
import os
import re
import socket
import subprocess

import pytest

from helpers import crc32c, write_file

FILE_ATTRS = {
    "user.mcfs.replicas",
    "user.mcfs.replica_num",
    "user.mcfs.soft_pin",
    "user.mcfs.soft_pin_ms",
    "user.mcfs.hard_pin",
    "user.mcfs.lease_ms",
    "user.mcfs.tier",
    "user.mcfs.checksum",
}
DIR_ATTRS = {
    "user.mcfs.replica_num",
    "user.mcfs.soft_pin",
    "user.mcfs.hard_pin",
    "user.mcfs.locations",
}
READ_ONLY_FILE = ["user.mcfs.replicas", "user.mcfs.soft_pin_ms", "user.mcfs.lease_ms",
                  "user.mcfs.tier", "user.mcfs.checksum"]
DAY_MS = 24 * 3600 * 1000


def getfattr_names(path):
    r = subprocess.run(["getfattr", "--absolute-names", "-d", "-m", "-", path],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {line.split("=", 1)[0] for line in r.stdout.splitlines()
            if line and not line.startswith("#")}


def getfattr_value(path, name):
    r = subprocess.run(["getfattr", "--absolute-names", "--only-values", "-n", name, path],
                       capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def setfattr(path, name, value):
    return subprocess.run(["setfattr", "-n", name, "-v", value, path], capture_output=True, text=True)


def get(path, name):
    return os.getxattr(path, name)


def errno_of(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


def as_ms(value):
    assert re.fullmatch(rb"[0-9]+", value), value
    return int(value)


@pytest.fixture
def f(mnt):
    path = os.path.join(mnt, "obj")
    write_file(path, b"mcfs xattr test object\n" * 1000)
    return path


def test_names_listed(f, mnt):
    assert FILE_ATTRS <= getfattr_names(f)
    assert FILE_ATTRS <= set(os.listxattr(f))
    d = os.path.join(mnt, "batch")
    os.mkdir(d)
    assert DIR_ATTRS <= getfattr_names(d)
    assert DIR_ATTRS <= set(os.listxattr(d))


def test_checksum(mnt):
    for size in (0, 1, 4096, 100_000):
        data = os.urandom(size)
        path = os.path.join(mnt, f"c{size}")
        write_file(path, data)
        want = f"crc32c:{crc32c(data):08x}".encode()
        assert get(path, "user.mcfs.checksum").lower() == want
        assert getfattr_value(path, "user.mcfs.checksum").lower() == want
    # A rewrite changes it.
    data = b"second version"
    write_file(path, data)
    assert get(path, "user.mcfs.checksum").lower() == f"crc32c:{crc32c(data):08x}".encode()


def test_replicas_and_tier(node, f):
    lines = get(f, "user.mcfs.replicas").decode().rstrip("\n").split("\n")
    assert len(lines) == 1, lines
    if node.mode == "external":
        # The segment server address peers read this replica from.
        assert lines[0] == f"{socket.gethostname()} 127.0.0.1:{node.listen_port} dram complete"
    else:
        # An embedded master serves nothing to the network: HOST:PORT is "-".
        assert re.fullmatch(r"(\S+) (\S+:[0-9]+|-) dram complete", lines[0]), lines[0]
        assert lines[0].split()[0] == socket.gethostname()
    assert get(f, "user.mcfs.tier") == b"dram"


def test_replica_num(f):
    assert get(f, "user.mcfs.replica_num") == b"1"
    assert setfattr(f, "user.mcfs.replica_num", "1").returncode == 0
    assert getfattr_value(f, "user.mcfs.replica_num") == b"1"
    os.setxattr(f, "user.mcfs.replica_num", b"8")  # the largest accepted
    assert get(f, "user.mcfs.replica_num") == b"8"
    os.setxattr(f, "user.mcfs.replica_num", b"1")
    for bad in (b"abc", b"0", b"9", b"99", b"-1", b"", b"1x"):
        assert errno_of(os.setxattr, f, "user.mcfs.replica_num", bad) == errno.EINVAL, bad
    assert get(f, "user.mcfs.replica_num") == b"1"


def test_dir_replica_num_inherited(mnt):
    d = os.path.join(mnt, "two")
    os.mkdir(d)
    assert get(d, "user.mcfs.replica_num") == b"1"
    os.setxattr(d, "user.mcfs.replica_num", b"2")
    assert get(d, "user.mcfs.replica_num") == b"2"
    path = os.path.join(d, "child")
    write_file(path, b"x" * 5000)
    assert get(path, "user.mcfs.replica_num") == b"2"
    # One node can hold one replica; the object is still complete and readable.
    with open(path, "rb") as fh:
        assert fh.read() == b"x" * 5000
    assert len(get(path, "user.mcfs.replicas").decode().rstrip("\n").split("\n")) >= 1
    # "Below" includes subdirectories.
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    deeper = os.path.join(sub, "grandchild")
    write_file(deeper, b"y")
    assert get(deeper, "user.mcfs.replica_num") == b"2"


def test_soft_pin(f, mnt):
    assert get(f, "user.mcfs.soft_pin") == b"0"
    assert as_ms(get(f, "user.mcfs.soft_pin_ms")) == 0
    assert setfattr(f, "user.mcfs.soft_pin", "1").returncode == 0
    assert get(f, "user.mcfs.soft_pin") == b"1"
    ms = as_ms(get(f, "user.mcfs.soft_pin_ms"))
    assert 0 < ms <= DAY_MS
    os.setxattr(f, "user.mcfs.soft_pin", b"0")
    assert get(f, "user.mcfs.soft_pin") == b"0"
    assert as_ms(get(f, "user.mcfs.soft_pin_ms")) == 0
    for bad in (b"2", b"yes", b"", b"-1"):
        assert errno_of(os.setxattr, f, "user.mcfs.soft_pin", bad) == errno.EINVAL, bad

    d = os.path.join(mnt, "pinned")
    os.mkdir(d)
    assert get(d, "user.mcfs.soft_pin") == b"0"
    os.setxattr(d, "user.mcfs.soft_pin", b"1")
    assert get(d, "user.mcfs.soft_pin") == b"1"
    child = os.path.join(d, "child")
    write_file(child, b"pinned by default")
    assert get(child, "user.mcfs.soft_pin") == b"1"
    assert 0 < as_ms(get(child, "user.mcfs.soft_pin_ms")) <= DAY_MS


def test_hard_pin(f, mnt):
    assert get(f, "user.mcfs.hard_pin") == b"0"
    os.setxattr(f, "user.mcfs.hard_pin", b"1")
    assert get(f, "user.mcfs.hard_pin") == b"1"
    os.setxattr(f, "user.mcfs.hard_pin", b"0")
    assert get(f, "user.mcfs.hard_pin") == b"0"
    assert errno_of(os.setxattr, f, "user.mcfs.hard_pin", b"2") == errno.EINVAL
    d = os.path.join(mnt, "hard")
    os.mkdir(d)
    os.setxattr(d, "user.mcfs.hard_pin", b"1")
    child = os.path.join(d, "child")
    write_file(child, b"hard pinned by default")
    assert get(child, "user.mcfs.hard_pin") == b"1"
    # Removal still works for a hard-pinned file.
    os.unlink(child)
    assert not os.path.exists(child)


def test_lease_after_read(f):
    with open(f, "rb") as fh:
        assert fh.read(10)
        ms = as_ms(get(f, "user.mcfs.lease_ms"))
        assert ms > 0


def test_locations(mnt):
    d = os.path.join(mnt, "batch")
    os.makedirs(os.path.join(d, "sub"))
    sizes = {"a": 1000, "b": 2000, "c": 4096, "sub/d": 12345}
    for name, size in sizes.items():
        write_file(os.path.join(d, name), os.urandom(size))
    lines = get(d, "user.mcfs.locations").decode().rstrip("\n").split("\n")
    assert lines == [f"{socket.gethostname()} {len(sizes)} {sum(sizes.values())}"]
    empty = os.path.join(mnt, "empty")
    os.mkdir(empty)
    assert get(empty, "user.mcfs.locations") == b""
    sub = get(os.path.join(d, "sub"), "user.mcfs.locations").decode().rstrip("\n").split("\n")
    assert sub == [f"{socket.gethostname()} 1 12345"]


def test_errnos(f, mnt):
    assert errno_of(os.getxattr, f, "user.mcfs.bogus") == errno.ENODATA
    d = os.path.join(mnt, "dir")
    os.mkdir(d)
    assert errno_of(os.getxattr, d, "user.mcfs.bogus") == errno.ENODATA
    for name in READ_ONLY_FILE:
        assert errno_of(os.setxattr, f, name, b"1") == errno.EPERM, name
    assert errno_of(os.setxattr, d, "user.mcfs.locations", b"x") == errno.EPERM
    # mcfs names cannot be removed, only set.
    for name in ("user.mcfs.checksum", "user.mcfs.soft_pin"):
        assert errno_of(os.removexattr, f, name) == errno.EPERM, name
    # Outside user.* nothing is stored.
    assert errno_of(os.setxattr, f, "trusted.mcfs_test", b"x") == errno.EOPNOTSUPP
    assert errno_of(os.getxattr, f, "trusted.mcfs_test") == errno.ENODATA
    r = setfattr(f, "user.mcfs.checksum", "crc32c:00000000")
    assert r.returncode != 0 and "not permitted" in r.stderr.lower(), r.stderr
    # The checksum was not changed by the refused write.
    assert get(f, "user.mcfs.checksum").lower() == f"crc32c:{crc32c(open(f, 'rb').read()):08x}".encode()


def test_user_attrs(f):
    os.setxattr(f, "user.foo", b"bar\x00baz")
    assert get(f, "user.foo") == b"bar\x00baz"
    assert "user.foo" in os.listxattr(f)
    assert "user.foo" in getfattr_names(f)
    assert setfattr(f, "user.other", "value").returncode == 0
    assert getfattr_value(f, "user.other") == b"value"
    os.removexattr(f, "user.foo")
    assert errno_of(os.getxattr, f, "user.foo") == errno.ENODATA
    assert "user.foo" not in os.listxattr(f)
    assert errno_of(os.removexattr, f, "user.never_set") == errno.ENODATA
    # XATTR_CREATE / XATTR_REPLACE semantics.
    assert errno_of(os.setxattr, f, "user.other", b"v2", os.XATTR_CREATE) == errno.EEXIST
    assert errno_of(os.setxattr, f, "user.absent", b"v", os.XATTR_REPLACE) == errno.ENODATA
    # Reading the file does not disturb them.
    with open(f, "rb") as fh:
        fh.read()
    assert get(f, "user.other") == b"value"


def test_user_attr_size_limit(f):
    # One value over 64 KiB.
    assert errno_of(os.setxattr, f, "user.big", b"v" * 70_000) in (errno.E2BIG, errno.ENOSPC)
    # 64 KiB per file in total: two 40 KB values do not both fit.
    os.setxattr(f, "user.a", b"a" * 40_000)
    assert errno_of(os.setxattr, f, "user.b", b"b" * 40_000) in (errno.E2BIG, errno.ENOSPC)
    assert get(f, "user.a") == b"a" * 40_000
    assert errno_of(os.getxattr, f, "user.b") == errno.ENODATA
    # Freeing space makes room again.
    os.removexattr(f, "user.a")
    os.setxattr(f, "user.b", b"b" * 40_000)
    assert get(f, "user.b") == b"b" * 40_000
