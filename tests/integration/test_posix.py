# SPDX-License-Identifier: Apache-2.0
"""The POSIX surface INTERFACE.md promises: statfs of the pool, mmap
(shared and private, read and write), attributes (chmod, chown, utimens,
truncate), symlinks, hard links refused, fallocate mode 0 only, O_DIRECT,
fsync as a publication point, name length limits, unlink of an open file."""

import ctypes
import ctypes.util
import errno
import mmap
import os
import stat
import subprocess
import time

import pytest

from helpers import MiB, crc32c, read_file, write_file

SEGMENT = 256 * MiB
PAGE = mmap.PAGESIZE

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd, mode, offset, length):
    """fallocate(2) itself: os.posix_fallocate would fall back to writing zeros."""
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def errno_of(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


def test_statfs(mnt):
    st = os.statvfs(mnt)
    total = st.f_blocks * st.f_frsize
    assert abs(total - SEGMENT) < 4096, f"pool reported as {total} bytes, segment is {SEGMENT}"
    free_before = st.f_bfree * st.f_frsize
    assert 0 < free_before <= total
    assert st.f_bavail <= st.f_bfree
    write_file(os.path.join(mnt, "sixteen"), os.urandom(16 * MiB))
    st2 = os.statvfs(mnt)
    assert st2.f_blocks * st2.f_frsize == total
    free_after = st2.f_bfree * st2.f_frsize
    assert free_after < free_before
    assert free_before - free_after >= 15 * MiB, (free_before, free_after)
    # stat -f agrees.
    out = subprocess.run(["stat", "-f", "-c", "%b %S", mnt], capture_output=True, text=True, check=True)
    blocks, bsize = map(int, out.stdout.split())
    assert abs(blocks * bsize - SEGMENT) < 4096


def test_mmap_read(mnt):
    path = os.path.join(mnt, "m")
    data = os.urandom(3 * MiB + 777)
    write_file(path, data)
    with open(path, "rb") as f:
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) as m:
            assert m[:] == data
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as m:
            assert m[:] == data
            assert m[MiB : MiB + 10] == data[MiB : MiB + 10]


def test_mmap_shared_write(mnt):
    path = os.path.join(mnt, "ms")
    data = bytearray(os.urandom(2 * MiB))
    write_file(path, bytes(data))
    with open(path, "r+b") as f:
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED,
                       prot=mmap.PROT_READ | mmap.PROT_WRITE) as m:
            m[0:5] = b"HELLO"
            m[MiB + 3 : MiB + 8] = b"WORLD"
            m[-4:] = b"TAIL"
            m.flush()
    data[0:5] = b"HELLO"
    data[MiB + 3 : MiB + 8] = b"WORLD"
    data[-4:] = b"TAIL"
    got = read_file(path)
    assert len(got) == len(data)
    assert got[0:5] == b"HELLO"
    assert got[MiB + 3 : MiB + 8] == b"WORLD"
    assert got[-4:] == b"TAIL"
    assert got == bytes(data)
    assert os.getxattr(path, "user.mcfs.checksum").lower() == f"crc32c:{crc32c(bytes(data)):08x}".encode()


def test_mmap_private_write(mnt):
    path = os.path.join(mnt, "mp")
    data = os.urandom(MiB)
    write_file(path, data)
    with open(path, "r+b") as f:
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE,
                       prot=mmap.PROT_READ | mmap.PROT_WRITE) as m:
            m[0:7] = b"PRIVATE"
            assert m[0:7] == b"PRIVATE"
            m.flush()
    assert read_file(path) == data


def test_chmod_chown_utime(mnt):
    path = os.path.join(mnt, "attrs")
    write_file(path, b"attrs")
    os.chmod(path, 0o640)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_ISREG(os.stat(path).st_mode)
    os.chown(path, 1234, 5678)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.utime(path, (1_000_000_000, 1_100_000_000))
    st = os.stat(path)
    assert (int(st.st_atime), int(st.st_mtime)) == (1_000_000_000, 1_100_000_000)
    os.utime(path, ns=(1_200_000_000_123_456_789, 1_300_000_000_987_654_321))
    assert os.stat(path).st_mtime_ns == 1_300_000_000_987_654_321
    d = os.path.join(mnt, "d")
    os.mkdir(d, 0o755)
    os.chmod(d, 0o700)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_ISDIR(os.stat(d).st_mode)
    # Attributes survive a reread of the content.
    assert read_file(path) == b"attrs"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_truncate(mnt):
    path = os.path.join(mnt, "t")
    data = os.urandom(10_000)
    write_file(path, data)
    os.truncate(path, 5000)
    assert os.stat(path).st_size == 5000
    assert read_file(path) == data[:5000]
    os.truncate(path, 20_000)
    assert os.stat(path).st_size == 20_000
    assert read_file(path) == data[:5000] + bytes(15_000)
    os.truncate(path, 0)
    assert read_file(path) == b""
    # ftruncate on an open descriptor, then write past the end.
    write_file(path, data)
    with open(path, "r+b") as f:
        f.truncate(3 * MiB)
        f.seek(3 * MiB + 10)
        f.write(b"end")
    got = read_file(path)
    assert len(got) == 3 * MiB + 13
    assert got[:10_000] == data and got[10_000 : 3 * MiB + 10] == bytes(3 * MiB + 10 - 10_000)
    assert got[-3:] == b"end"


def test_stat_right_after_close(mnt):
    """Whatever changed a file, a stat right after the close shows the new
    version's size and times (the daemon leaves the kernel's own dropping of
    them after a write() alone, and drops them itself after anything else)."""
    path = os.path.join(mnt, "fresh")
    write_file(path, b"a" * 10_000)
    st1 = os.stat(path)
    assert st1.st_size == 10_000
    time.sleep(0.01)
    write_file(path, b"b" * 3000)  # O_TRUNC, then write(): shorter
    st2 = os.stat(path)
    assert st2.st_size == 3000 and st2.st_mtime_ns > st1.st_mtime_ns
    with open(path, "r+b") as f:  # ftruncate only
        f.truncate(7000)
    assert os.stat(path).st_size == 7000
    os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))  # truncated, nothing written
    assert os.stat(path).st_size == 0
    with open(path, "wb") as f:  # cp -p: times set before the close
        f.write(b"c" * 5000)
        f.flush()
        os.utime(f.fileno(), ns=(10**18, 10**18))
    st = os.stat(path)
    assert (st.st_size, st.st_mtime_ns) == (5000, 10**18)
    assert read_file(path) == b"c" * 5000
    # A stat between the last write and the close caches what the file
    # showed then; the close must not leave that behind.
    with open(path, "wb") as f:
        f.write(b"d" * 6000)
        f.flush()
        during = os.stat(path)
        time.sleep(0.05)
    after = os.stat(path)
    assert after.st_size == 6000 and after.st_mtime_ns > during.st_mtime_ns


@pytest.mark.parametrize("mode", ("embedded", "external"))
def test_times_set_before_close_stick(start_node, mode):
    """cp -p sets the copy's times with futimens before it closes it, and the
    kernel passes that SETATTR without the file: the times still outlive the
    publish at the close, in the master, not only in the kernel's cache
    (--attr-timeout=0: every stat asks)."""
    node = start_node(mode, extra=("--attr-timeout=0",))
    src = os.path.join(node.tmp, "src")
    write_file(src, b"payload" * 100)
    os.utime(src, ns=(978307200_000000000, 978307200_000000000))
    dst = os.path.join(node.mnt, "copy")
    subprocess.run(["cp", "-p", src, dst], check=True)
    st = os.stat(dst)
    assert (st.st_mtime_ns, st.st_atime_ns) == (978307200_000000000, 978307200_000000000)
    assert read_file(dst) == b"payload" * 100
    # An open file rewritten in place, its times set after the write.
    with open(dst, "r+b") as f:
        f.write(b"P")
        f.flush()
        os.utime(f.fileno(), ns=(10**18, 10**18))
    assert os.stat(dst).st_mtime_ns == 10**18
    assert read_file(dst)[:2] == b"Pa"
    # A write after the times were set makes the file newer than them.
    before = time.time_ns()
    with open(dst, "r+b") as f:
        f.write(b"Q")
        f.flush()
        os.utime(f.fileno(), ns=(10**18, 10**18))
        f.write(b"R")
        f.flush()
    st = os.stat(dst)
    assert st.st_atime_ns == 10**18 and st.st_mtime_ns >= before
    assert read_file(dst)[:3] == b"QRy"


def test_symlink(mnt):
    target = os.path.join(mnt, "target")
    write_file(target, b"through the link")
    link = os.path.join(mnt, "link")
    os.symlink("target", link)
    assert os.readlink(link) == "target"
    assert stat.S_ISLNK(os.lstat(link).st_mode)
    assert read_file(link) == b"through the link"
    dangling = os.path.join(mnt, "dangling")
    os.symlink("/nonexistent/" + "x" * 200, dangling)
    assert os.readlink(dangling) == "/nonexistent/" + "x" * 200
    assert not os.path.exists(dangling)
    os.unlink(link)
    assert os.path.exists(target)


def test_hard_link_refused(mnt):
    path = os.path.join(mnt, "h")
    write_file(path, b"h")
    assert errno_of(os.link, path, os.path.join(mnt, "h2")) == errno.EPERM
    assert not os.path.exists(os.path.join(mnt, "h2"))


def test_fallocate(mnt):
    path = os.path.join(mnt, "fa")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fallocate(fd, 0, 0, MiB)
        assert os.fstat(fd).st_size == MiB
        os.pwrite(fd, b"abc", 100)
        assert errno_of(fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == errno.EOPNOTSUPP
    finally:
        os.close(fd)
    got = read_file(path)
    assert len(got) == MiB
    assert got[:100] == bytes(100) and got[100:103] == b"abc" and got[103:] == bytes(MiB - 103)


def test_o_direct(mnt):
    path = os.path.join(mnt, "direct")
    size = MiB
    src = mmap.mmap(-1, size)  # page-aligned buffer
    payload = os.urandom(size)
    src[:] = payload
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    try:
        assert os.write(fd, src) == size
    finally:
        os.close(fd)
    dst = mmap.mmap(-1, size)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        assert os.readv(fd, [dst]) == size
    finally:
        os.close(fd)
    assert dst[:] == payload
    assert read_file(path) == payload


def test_fsync_publishes(mnt):
    path = os.path.join(mnt, "synced")
    data = os.urandom(300_000)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
        # Published while the writer still has it open.
        assert read_file(path) == data
        assert os.getxattr(path, "user.mcfs.checksum").lower() == f"crc32c:{crc32c(data):08x}".encode()
    finally:
        os.close(fd)
    assert read_file(path) == data


def test_name_too_long(mnt):
    ok = "n" * 255
    write_file(os.path.join(mnt, ok), b"255")
    assert read_file(os.path.join(mnt, ok)) == b"255"
    assert ok in os.listdir(mnt)
    long = "n" * 256
    assert errno_of(write_file, os.path.join(mnt, long), b"x") == errno.ENAMETOOLONG
    assert errno_of(os.mkdir, os.path.join(mnt, "d" * 256)) == errno.ENAMETOOLONG
    assert errno_of(os.stat, os.path.join(mnt, long)) == errno.ENAMETOOLONG
    assert errno_of(os.rename, os.path.join(mnt, ok), os.path.join(mnt, long)) == errno.ENAMETOOLONG
    assert os.listdir(mnt) == [ok]


def test_unlink_open_file(mnt):
    path = os.path.join(mnt, "gone")
    data = os.urandom(4 * MiB)
    write_file(path, data)
    fd = os.open(path, os.O_RDONLY)
    try:
        first = os.read(fd, MiB)
        os.unlink(path)
        assert not os.path.exists(path)
        assert errno_of(os.stat, path) == errno.ENOENT
        rest = b""
        while True:
            b = os.read(fd, MiB)
            if not b:
                break
            rest += b
        assert first + rest == data
        assert os.pread(fd, 16, 0) == data[:16]
    finally:
        os.close(fd)
    assert os.listdir(mnt) == []
    # The name can be used again at once.
    write_file(path, b"again")
    assert read_file(path) == b"again"


def test_rmdir_and_rename_dirs(mnt):
    src = os.path.join(mnt, "src")
    os.makedirs(os.path.join(src, "inner"))
    write_file(os.path.join(src, "inner", "f"), b"moved")
    os.rename(src, os.path.join(mnt, "dst"))
    assert read_file(os.path.join(mnt, "dst", "inner", "f")) == b"moved"
    assert not os.path.exists(src)
    # Rename a file across directories, over an existing one.
    write_file(os.path.join(mnt, "top"), b"old")
    os.rename(os.path.join(mnt, "dst", "inner", "f"), os.path.join(mnt, "top"))
    assert read_file(os.path.join(mnt, "top")) == b"moved"
    os.rmdir(os.path.join(mnt, "dst", "inner"))
    os.rmdir(os.path.join(mnt, "dst"))
    assert os.listdir(mnt) == ["top"]
