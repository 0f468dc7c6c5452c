# SPDX-License-Identifier: Apache-2.0
"""A bad peer gets an error and a closed connection, never a crash: garbage
and malformed frames (transport/frame.h) sent to the master's RPC port and
to a node's segment server leave both processes alive and the mount
working."""

import os
import random
import socket
import struct
import subprocess

import pytest

from helpers import MiB

MAGIC = 0x5346434D
VERSION = 1
FRAME_MAX = 16 << 20


def header(length, type_=1, version=VERSION, magic=MAGIC, flags=0, reserved=0, req_id=1):
    # u32 magic, u8 version, u8 flags, u16 type, u32 len, u32 reserved, u64 req_id
    return struct.pack("<IBBHIIQ", magic, version, flags, type_, length, reserved, req_id)


assert len(header(0)) == 24


def bad_frames():
    rnd = random.Random(7)
    junk = bytes(rnd.randrange(256) for _ in range(4096))
    return [
        ("random bytes", junk),
        ("huge length", header(0xFFFFFFFF)),
        ("length just past the limit", header(FRAME_MAX + 1) + junk),
        ("bad magic", header(16, magic=0xDEADBEEF) + junk[:16]),
        ("bad version", header(16, version=200) + junk[:16]),
        ("reserved set", header(16, reserved=5) + junk[:16]),
        ("unknown type", header(64, type_=0xFFFF) + junk[:64]),
        ("garbage payload, every small type", b"".join(
            header(32, type_=t, req_id=t) + junk[t * 32 : t * 32 + 32] for t in range(64))),
        ("response flag on a request", header(8, flags=1) + junk[:8]),
        ("truncated header", header(100)[:10]),
        ("payload cut short", header(1000) + junk[:100]),
    ]


def poke(port, payload):
    """Send payload, then read whatever comes back until the peer closes or
    goes quiet. Never asserts on timing: a quiet peer is fine too."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(3)
            while s.recv(65536):
                pass
        except (ConnectionError, socket.timeout):
            pass


def round_trip(mnt, scratch, tag):
    src = scratch / f"src_{tag}"
    src.write_bytes(os.urandom(MiB + 17))
    dst = os.path.join(mnt, f"rt_{tag}")
    subprocess.run(["cp", str(src), dst], check=True)
    subprocess.run(["cmp", str(src), dst], check=True)


def check_garbage(node, port, scratch):
    round_trip(node.mnt, scratch, "before")
    for name, payload in bad_frames():
        poke(port, payload)
        assert node.master.alive(), f"mcfs-master died after: {name}"
        assert node.daemon.alive(), f"mcfs died after: {name}"
    # Many connections that open and close at once.
    for _ in range(50):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    # Still accepting, still serving the mount.
    socket.create_connection(("127.0.0.1", port), timeout=10).close()
    round_trip(node.mnt, scratch, "after")
    assert node.master.alive() and node.daemon.alive()


@pytest.fixture
def ext(start_node):
    return start_node("external")


def test_garbage_to_master(ext, scratch):
    check_garbage(ext, ext.master_port, scratch)

# The same check against the node's segment server is test_segment_server_fuzz
# in test_cluster.py.


@pytest.mark.parametrize("master", ["nonsense:99999", "etcd://", "etcd://127.0.0.1:2379",
                                    "etcd://127.0.0.1:2379/", "etcd:///name", "host:port:x"])
def test_bad_master_address_is_usage(scratch, master):
    """A --master that is neither HOST:PORT nor etcd://EP[,EP...]/CLUSTER is
    bad usage: exit 2, one line that says what to give, nothing mounted."""
    from helpers import binary, is_mounted

    mnt = scratch / "mnt"
    mnt.mkdir()
    r = subprocess.run([binary("mcfs"), str(mnt), "-f", "--master", master],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--master" in lines[0] and "etcd://" in lines[0], r.stderr
    assert not is_mounted(str(mnt))


@pytest.mark.parametrize("value", ["-1", "10001", "abc", ""])
def test_bad_poll_us_is_usage(scratch, value):
    """--poll-us takes microseconds from 0 to 10000: anything else is bad
    usage (exit 2, a message naming the option), and nothing is mounted."""
    from helpers import binary, is_mounted

    mnt = scratch / "mnt"
    mnt.mkdir()
    r = subprocess.run([binary("mcfs"), str(mnt), "-f", f"--poll-us={value}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "poll-us" in r.stderr or "invalid parameter" in r.stderr, r.stderr
    assert not is_mounted(str(mnt))


@pytest.mark.parametrize("value", ["-1", "10001", "abc", ""])
def test_master_bad_poll_us_is_usage(value):
    """mcfs-master --poll-us takes microseconds from 0 to 10000 too."""
    from helpers import binary, free_port

    r = subprocess.run([binary("mcfs-master"), "--listen", f"127.0.0.1:{free_port()}",
                        "--http", "off",
                        f"--poll-us={value}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--poll-us" in r.stderr, r.stderr


@pytest.mark.parametrize("mode", ["embedded", "external"])
@pytest.mark.parametrize("poll_us", ["0", "1", "10000"])
def test_poll_us_serves_and_stops(start_node, mode, poll_us):
    """Whether the daemon (and the master, and the daemon waiting for the
    master's answers) sleeps at once (0) or polls first, requests are
    served, and SIGTERM stops the daemon while it waits (a signal must end
    the poll, not be swallowed by it)."""
    import time

    from helpers import is_mounted

    n = start_node(mode, extra=["--poll-us", poll_us],
                   master_extra=["--poll-us", poll_us] if mode == "external" else [])
    data = os.urandom(3 * MiB + 17)
    for i in range(20):
        with open(os.path.join(n.mnt, f"k{i}"), "wb") as f:
            f.write(data[i:])
    for i in range(20):
        with open(os.path.join(n.mnt, f"k{i}"), "rb") as f:
            assert f.read() == data[i:]
    assert sorted(os.listdir(n.mnt)) == sorted(f"k{i}" for i in range(20))
    time.sleep(0.2)  # idle: the daemon sleeps in poll() (or read())
    n.daemon.killed = True  # stopped on purpose: not a death to report
    n.daemon.proc.terminate()
    assert n.daemon.proc.wait(timeout=20) == 0  # a clean stop
    deadline = time.monotonic() + 10
    while is_mounted(n.mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_mounted(n.mnt)


@pytest.mark.parametrize("mode", ["embedded", "external"])
def test_stop_with_handles_open(start_node, mode):
    """A daemon stopped while files and directories are open (the kernel
    never releases them) frees what they held and exits cleanly: exit 0,
    and in the sanitizer build no leak report (the teardown checks the log)."""
    import time

    from helpers import is_mounted

    n = start_node(mode)
    with open(os.path.join(n.mnt, "r"), "wb") as f:
        f.write(os.urandom(100000))
    os.mkdir(os.path.join(n.mnt, "d"))
    open(os.path.join(n.mnt, "d", "x"), "wb").close()
    fds = [os.open(os.path.join(n.mnt, "r"), os.O_RDONLY),
           os.open(os.path.join(n.mnt, "w"), os.O_WRONLY | os.O_CREAT, 0o644),
           os.open(os.path.join(n.mnt, "d"), os.O_RDONLY | os.O_DIRECTORY)]
    try:
        assert len(os.read(fds[0], 10)) == 10
        os.write(fds[1], b"staged, never published")
        assert os.listdir(os.path.join(n.mnt, "d")) == ["x"]  # a readdir on an open dir
        n.daemon.killed = True  # stopped on purpose
        n.daemon.proc.terminate()
        assert n.daemon.proc.wait(timeout=30) == 0
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
    deadline = time.monotonic() + 10
    while is_mounted(n.mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
