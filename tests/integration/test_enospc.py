# SPDX-License-Identifier: Apache-2.0
"""A full pool: writing more than the pool holds fails with ENOSPC at
write() or close(), publishes nothing (a new file does not appear, an old
file keeps its content), and leaves the node usable."""

import errno
import os

import pytest

from helpers import MiB, read_file, write_file

MODES = ("embedded", "external")


def write_expecting_enospc(path, total, chunk=MiB):
    """Write total bytes to path; returns the errnos seen at write/close."""
    seen = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    block = os.urandom(chunk)
    try:
        written = 0
        while written < total:
            try:
                n = os.write(fd, block)
            except OSError as e:
                seen.append(("write", e.errno))
                break
            assert n > 0
            written += n
    finally:
        try:
            os.close(fd)
        except OSError as e:
            seen.append(("close", e.errno))
    return seen


@pytest.mark.parametrize("mode", MODES)
def test_enospc_new_file(start_node, mode):
    node = start_node(mode, segment_size="32M")
    path = os.path.join(node.mnt, "huge")
    seen = write_expecting_enospc(path, 64 * MiB)
    assert seen, "writing 64 MiB into a 32 MiB pool succeeded"
    assert all(e == errno.ENOSPC for _, e in seen), seen
    # Nothing was published.
    assert not os.path.exists(path)
    assert "huge" not in os.listdir(node.mnt)
    # The node still works, and the space of the failed write is free.
    small = os.path.join(node.mnt, "small")
    write_file(small, b"still fine" * 100)
    assert read_file(small) == b"still fine" * 100
    write_file(os.path.join(node.mnt, "big_but_fits"), os.urandom(16 * MiB))


@pytest.mark.parametrize("mode", MODES)
def test_enospc_keeps_old_content(start_node, mode):
    node = start_node(mode, segment_size="32M")
    path = os.path.join(node.mnt, "entry")
    old = os.urandom(100_000)
    write_file(path, old)
    seen = write_expecting_enospc(path, 64 * MiB)
    assert seen, "writing 64 MiB into a 32 MiB pool succeeded"
    assert all(e == errno.ENOSPC for _, e in seen), seen
    # The old version may have been evicted while the master looked for
    # room; what must never show is any of the new bytes.
    if os.path.exists(path):
        assert read_file(path) == old
        assert os.stat(path).st_size == len(old)
    small = os.path.join(node.mnt, "small")
    write_file(small, b"ok")
    assert read_file(small) == b"ok"
