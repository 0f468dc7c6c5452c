# SPDX-License-Identifier: Apache-2.0
"""Files and directories through the mount with ordinary tools: cp and cmp
of sizes around page and chunk boundaries, directory trees with mkdir -p,
find and rm -r, and a large flat directory listed completely."""

import errno
import os
import subprocess

import pytest

from helpers import MiB

SIZES = [0, 1, 4095, 4096, 4097, MiB, MiB + 1, 16 * MiB, 64 * MiB]


def run(*argv, cwd=None):
    r = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}"
    return r.stdout


def test_cp_cmp_sizes(mnt, scratch):
    src = scratch / "src"
    src.mkdir()
    names = []
    for size in SIZES:
        name = f"f_{size}"
        (src / name).write_bytes(os.urandom(size))
        names.append(name)
    dst = os.path.join(mnt, "cp")
    os.mkdir(dst)
    for name in names:
        run("cp", str(src / name), os.path.join(dst, name))
    for name, size in zip(names, SIZES):
        path = os.path.join(dst, name)
        assert os.stat(path).st_size == size, name
        run("cmp", str(src / name), path)
    assert sorted(os.listdir(dst)) == sorted(names)
    # And back out again: a copy from the mount equals the source.
    back = scratch / "back"
    back.mkdir()
    run("cp", "-r", dst + "/.", str(back))
    for name in names:
        run("cmp", str(src / name), str(back / name))


def test_rewrite_shorter_and_longer(mnt):
    """O_TRUNC rewrites (open(path, "wb")) replace the whole content."""
    path = os.path.join(mnt, "rewritten")
    for size in (100_000, 14, 0, 3 * MiB + 5, 4096, 1):
        data = os.urandom(size)
        with open(path, "wb") as f:
            f.write(data)
        assert os.stat(path).st_size == size
        with open(path, "rb") as f:
            assert f.read() == data, f"rewrite to {size} bytes"
    # Writes into an existing file without O_TRUNC keep the rest.
    base = os.urandom(10_000)
    with open(path, "wb") as f:
        f.write(base)
    with open(path, "r+b") as f:
        f.seek(5000)
        f.write(b"MIDDLE")
    with open(path, "rb") as f:
        assert f.read() == base[:5000] + b"MIDDLE" + base[5006:]
    with open(path, "ab") as f:
        f.write(b"APPENDED")
    with open(path, "rb") as f:
        assert f.read() == base[:5000] + b"MIDDLE" + base[5006:] + b"APPENDED"


def test_visible_on_writer_from_create(mnt):
    """POSIX on the writing node: the name exists from the create on."""
    path = os.path.join(mnt, "in_progress")
    with open(path, "wb") as f:
        f.write(b"partial")
        f.flush()
        assert os.path.exists(path)
        assert "in_progress" in os.listdir(mnt)
        f.write(b" and the rest")
    with open(path, "rb") as f:
        assert f.read() == b"partial and the rest"


def test_mkdir_find_rm(mnt):
    run("mkdir", "-p", "a/b/c/d", cwd=mnt)
    for d in ("a", "a/b/c"):
        with open(os.path.join(mnt, d, "file"), "wb") as f:
            f.write(d.encode())
    assert sorted(os.listdir(mnt)) == ["a"]
    assert run("ls", os.path.join(mnt, "a")).split() == ["b", "file"]
    found = sorted(run("find", ".", cwd=mnt).split())
    assert found == sorted([".", "./a", "./a/b", "./a/b/c", "./a/b/c/d", "./a/file", "./a/b/c/file"])
    assert sorted(run("find", ".", "-type", "f", cwd=mnt).split()) == ["./a/b/c/file", "./a/file"]
    for d in ("a", "a/b/c"):
        with open(os.path.join(mnt, d, "file"), "rb") as f:
            assert f.read() == d.encode()
    # A non-empty directory cannot be removed with rmdir.
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(mnt, "a", "b"))
    assert e.value.errno == errno.ENOTEMPTY
    run("rm", "-r", os.path.join(mnt, "a"))
    assert os.listdir(mnt) == []
    assert not os.path.exists(os.path.join(mnt, "a"))


def test_flat_directory_10000(mnt):
    d = os.path.join(mnt, "flat")
    os.mkdir(d)
    names = {f"blk_{i:05d}" for i in range(10000)}
    for name in names:
        with open(os.path.join(d, name), "wb") as f:
            f.write(name.encode())
    listed = os.listdir(d)
    assert len(listed) == 10000
    assert set(listed) == names
    out = subprocess.run(f"ls '{d}' | wc -l", shell=True, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) == 10000
    # Spot-check content after the listing.
    for name in ("blk_00000", "blk_04999", "blk_09999"):
        with open(os.path.join(d, name), "rb") as f:
            assert f.read() == name.encode()
