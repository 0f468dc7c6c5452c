# SPDX-License-Identifier: Apache-2.0
"""Whole-object publication: readers see one complete version or another,
never a mix or a prefix; rename over a file is atomic; a reader that opened
the old version keeps reading it while a writer replaces the file; many
threads writing and reading at once all see complete objects.

Every check is on content, none on timing: a reader loops until a
condition that the writer guarantees, and each read is compared to the set
of complete versions."""

import hashlib
import os
import random
import threading

from helpers import MiB, read_file, write_file


def pattern(tag, size):
    """Deterministic content, different for each tag, cheap to make."""
    seed = hashlib.sha256(tag.encode()).digest()
    block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def read_fd_all(fd, chunk=256 * 1024):
    parts = []
    while True:
        b = os.read(fd, chunk)
        if not b:
            return b"".join(parts)
        parts.append(b)


def read_exact(fd, n):
    parts, left = [], n
    while left:
        b = os.read(fd, min(left, 1 << 20))
        assert b, f"unexpected EOF with {left} bytes left to read"
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


class Failures:
    """Collects failures from threads; the test asserts it is empty."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, msg):
        with self.lock:
            self.items.append(msg)

    def run(self, fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: B902 - report everything from threads
            self.add(f"{fn.__name__}{args[:1]}: {type(e).__name__}: {e}")


def test_rename_over_is_atomic(mnt):
    path = os.path.join(mnt, "entry")
    nversions = 8
    size = 2 * MiB
    versions = [pattern(f"rename-v{i}", size + i * 4097) for i in range(nversions)]
    index = {hashlib.sha256(v).digest(): i for i, v in enumerate(versions)}
    write_file(path, versions[0])

    done = threading.Event()
    fails = Failures()
    seen = []

    def reader():
        last = 0
        while True:
            finished = done.is_set()
            data = read_file(path)
            i = index.get(hashlib.sha256(data).digest())
            if i is None:
                fails.add(f"read {len(data)} bytes that are no complete version")
                return
            if i < last:
                fails.add(f"went back from version {last} to {i}")
                return
            last = i
            seen.append(i)
            if finished:
                return

    def writer():
        for i in range(1, nversions):
            tmp = os.path.join(mnt, f".entry.tmp{i}")
            write_file(tmp, versions[i])
            os.rename(tmp, path)

    threads = [threading.Thread(target=fails.run, args=(reader,)) for _ in range(3)]
    for t in threads:
        t.start()
    fails.run(writer)
    done.set()
    for t in threads:
        t.join()
    assert fails.items == []
    # The read that began after the last rename saw the last version.
    assert seen and seen[-1] == nversions - 1
    assert read_file(path) == versions[-1]
    assert sorted(os.listdir(mnt)) == ["entry"]


def _reader_keeps_old(mnt, replace):
    path = os.path.join(mnt, "kv")
    a = pattern("old-A", 8 * MiB)
    write_file(path, a)
    fd = os.open(path, os.O_RDONLY)
    try:
        half = len(a) // 2
        assert read_exact(fd, half) == a[:half]
        b = replace(path)
        rest = read_fd_all(fd)
        assert len(rest) == len(a) - half, "the old version was cut short"
        assert rest == a[half:], "the reader of the old version saw new bytes"
        # pread of the old version from the start still works too.
        assert os.pread(fd, 4096, 0) == a[:4096]
    finally:
        os.close(fd)
    assert read_file(path) == b
    assert os.stat(path).st_size == len(b)


def test_reader_keeps_old_version_rewrite_same_size(mnt):
    def replace(path):
        b = pattern("new-B", 8 * MiB)
        with open(path, "wb") as f:
            f.write(b)
        return b

    _reader_keeps_old(mnt, replace)


def test_reader_keeps_old_version_rename_other_size(mnt):
    def replace(path):
        b = pattern("new-B-renamed", 3 * MiB + 123)
        tmp = path + ".tmp"
        write_file(tmp, b)
        os.rename(tmp, path)
        return b

    _reader_keeps_old(mnt, replace)


def test_writer_closes_after_path_replaced(mnt):
    """A writer whose file was renamed over (or unlinked) while it wrote
    still closes without error, as on any POSIX filesystem; the path then
    holds one complete version (renamed over) or stays gone (unlinked)."""
    path = os.path.join(mnt, "raced")
    write_file(path, b"v0" * 1000)
    a = pattern("writer-A", MiB)
    b = pattern("writer-B", MiB + 1)
    f = open(path, "wb")
    f.write(a[: len(a) // 2])
    tmp = path + ".tmp"
    write_file(tmp, b)
    os.rename(tmp, path)
    f.write(a[len(a) // 2 :])
    f.close()  # must not raise
    assert read_file(path) in (a, b)

    f = open(path, "wb")
    f.write(a)
    os.unlink(path)
    f.close()  # must not raise
    # unlink removed the name at once; the close does not bring it back.
    assert not os.path.exists(path)
    assert os.listdir(mnt) == []


def test_concurrent_writers_and_readers(mnt):
    nthreads = 8
    files_per_thread = 12
    published = {}  # name -> sha256 of the complete content
    plock = threading.Lock()
    fails = Failures()
    base = os.path.join(mnt, "conc")
    os.mkdir(base)

    def worker(t):
        rnd = random.Random(t)
        for j in range(files_per_thread):
            name = f"t{t}_f{j}"
            data = pattern(name, rnd.randrange(1, 2 * MiB))
            path = os.path.join(base, name)
            if j % 2:
                tmp = os.path.join(base, f".{name}.tmp")
                write_file(tmp, data)
                os.rename(tmp, path)
            else:
                write_file(path, data)
            with plock:
                published[name] = hashlib.sha256(data).digest()
                others = [n for n in published if not n.startswith(f"t{t}_")]
            # Read a few files other threads have published.
            for other in rnd.sample(others, min(3, len(others))):
                got = read_file(os.path.join(base, other))
                if hashlib.sha256(got).digest() != published[other]:
                    raise AssertionError(f"{other}: {len(got)} bytes, not the published content")

    threads = [threading.Thread(target=fails.run, args=(worker, t)) for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fails.items == []
    names = sorted(n for n in os.listdir(base))
    assert names == sorted(published)
    for name, digest in published.items():
        assert hashlib.sha256(read_file(os.path.join(base, name))).digest() == digest, name


def test_many_writers_one_path(mnt):
    path = os.path.join(mnt, "contended")
    nwriters = 4
    rounds = 4
    size = 2 * MiB
    initial = pattern("initial", size)
    contents = {w: pattern(f"writer{w}", size + w * 1000) for w in range(nwriters)}
    complete = {hashlib.sha256(c).digest() for c in contents.values()}
    complete.add(hashlib.sha256(initial).digest())
    write_file(path, initial)
    fails = Failures()
    done = threading.Event()

    def writer(w):
        for r in range(rounds):
            if (w + r) % 2:
                with open(path, "wb") as f:
                    f.write(contents[w])
            else:
                tmp = f"{path}.w{w}.r{r}"
                write_file(tmp, contents[w])
                os.rename(tmp, path)

    def reader():
        while not done.is_set():
            got = read_file(path)
            if hashlib.sha256(got).digest() not in complete:
                raise AssertionError(f"read {len(got)} bytes that no writer wrote whole")

    writers = [threading.Thread(target=fails.run, args=(writer, w)) for w in range(nwriters)]
    readers = [threading.Thread(target=fails.run, args=(reader,)) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert fails.items == []
    final = read_file(path)
    assert final in contents.values(), f"final content ({len(final)} bytes) is no writer's whole content"
    assert os.listdir(mnt) == ["contended"]


def test_file_being_created_reads_empty_until_published(mnt):
    """On the writing node a new file exists from its create, but its bytes
    are no one else's until close: a handle opened before the first close
    reads it empty, even while two writers stage different puts, and a
    reader never sees part of one put or one put's bytes after another's.
    Each close publishes its put whole; the last close wins."""
    path = os.path.join(mnt, "being-written")
    first, second = pattern("first", 8000), pattern("second", 3 * MiB)
    w1 = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    r = w2 = -1
    try:
        assert os.write(w1, first) == len(first)
        assert os.stat(path).st_size == len(first), "the writing node shows its size"
        r = os.open(path, os.O_RDONLY)
        assert os.read(r, 1000) == b"", "a put is not seen before its close"
        w2 = os.open(path, os.O_WRONLY | os.O_TRUNC)
        for off in range(0, len(second) - MiB, 256 * 1024):  # all but the last MiB
            os.write(w2, second[off:off + 256 * 1024])
        assert read_fd_all(r) == b"", "nor a part of another put"
        os.write(w2, second[len(second) - MiB:])
        os.close(w2)
        w2 = -1
        assert read_file(path) == second, "the second writer's close published it whole"
        assert read_fd_all(r) == b"", "a handle keeps the (empty) file it opened"
    finally:
        for fd in (r, w2, w1):
            if fd >= 0:
                os.close(fd)
    assert read_file(path) == first, "the first writer's close published its put last"
