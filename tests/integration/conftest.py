# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures for the mcfs integration tests.

  node   a mounted mcfs node, parametrized over the two ways to run one:
         "embedded" (mcfs MNT -f --segment-size 256M, master in-process) and
         "external" (mcfs-master --listen 127.0.0.1:PORT, then
         mcfs MNT -f --master 127.0.0.1:PORT --segment-size 256M)
  mnt    the mount path of that node (so every test using it runs twice)
  start_node(mode, segment_size=..., extra=..., master_extra=...)
         a factory for nodes a test configures itself (master_extra: more
         mcfs-master options, external mode only)
  scratch  a temp dir under /tmp outside the mount (pathlib.Path)
  cluster(n=3, replicas=None, node_ttl="3s", segment_size="128M", extra=(),
          master_extra=())
         a factory for a helpers.Cluster: an mcfs-master with a short
         --node-ttl (and master_extra) and n nodes (node-a, node-b, ...) on 127.0.0.1, each
         with its own mount point and segment server port
  etcd   a started helpers.Etcd (/usr/bin/etcd on free 127.0.0.1 ports, a
         fresh data dir); skips when etcd is not installed
  ha_cluster(masters=2, n=3, replicas=None, node_ttl="3s",
             segment_size="128M", extra=(), master_extra=(), name="mcfs-it")
         a factory for a helpers.HACluster: an etcd, masters elected through
         it (the first one the leader, the others standbys) and n nodes
         that find the leader with --master etcd://127.0.0.1:PORT/NAME

Binaries come from $MCFS_BUILD/bin (default build/). Every node is
unmounted and its processes stopped by PID at teardown, even when the test
failed; a daemon that does not exit 0 after the unmount, or that left a
sanitizer report in its log, fails the test. The daemon logs are attached
to the report of any failed test."""

import os
import pathlib
import shutil
import tempfile

import pytest

import helpers

MODES = ("embedded", "external")


def pytest_report_header(config):
    return f"mcfs build: {helpers.build_dir()}"


def _require_fuse(programs=("mcfs",)):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing: FUSE is not available here")
    for b in programs:
        if not os.access(helpers.binary(b), os.X_OK):
            pytest.fail(f"{helpers.binary(b)} is missing; build first or set MCFS_BUILD")


def _started(request):
    """The list of started nodes and clusters of this test (their logs go to
    a failure report)."""
    if not hasattr(request.node, "_mcfs_nodes"):
        request.node._mcfs_nodes = []
    return request.node._mcfs_nodes


@pytest.fixture
def start_node(request):
    nodes = []
    started = _started(request)

    def start(mode="embedded", segment_size="256M", extra=(), master_extra=()):
        _require_fuse()
        n = helpers.Node(mode, segment_size, extra, master_extra)
        nodes.append(n)
        started.append(n)
        n.start()
        return n

    yield start

    problems = []
    for n in reversed(nodes):
        for p in n.stop():
            problems.append(f"[{n.mode} node {n.mnt}] {p}")
    if problems:
        pytest.fail("teardown: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def cluster(request):
    clusters = []
    started = _started(request)

    def make(n=3, replicas=None, node_ttl="3s", segment_size="128M", extra=(), master_extra=()):
        _require_fuse(("mcfs", "mcfs-master"))
        c = helpers.Cluster(node_ttl=node_ttl, segment_size=segment_size, extra=extra,
                            master_extra=master_extra)
        clusters.append(c)
        started.append(c)
        c.start_master()
        for _ in range(n):
            c.add_node(replicas=replicas)
        return c

    yield make

    problems = []
    for c in reversed(clusters):
        for p in c.stop():
            problems.append(f"[cluster {c.tmp}] {p}")
    if problems:
        pytest.fail("teardown: " + "; ".join(problems), pytrace=False)


def _require_etcd():
    if not os.access(helpers.ETCD_BIN, os.X_OK):
        pytest.skip(f"{helpers.ETCD_BIN} is missing: apt-get install etcd-server (tools/deps.sh)")


@pytest.fixture
def etcd(request):
    _require_etcd()
    e = helpers.Etcd()
    _started(request).append(e)
    try:
        e.start()
        yield e
    finally:
        problems = e.teardown()
    if problems:
        pytest.fail("teardown: " + "; ".join(f"[etcd {e.url}] {p}" for p in problems),
                    pytrace=False)


@pytest.fixture
def ha_cluster(request):
    clusters = []
    started = _started(request)

    def make(masters=2, n=3, replicas=None, node_ttl="3s", segment_size="128M", extra=(),
             master_extra=(), name="mcfs-it"):
        _require_etcd()
        _require_fuse(("mcfs", "mcfs-master"))
        c = helpers.HACluster(name=name, node_ttl=node_ttl, segment_size=segment_size,
                              extra=extra, master_extra=master_extra)
        clusters.append(c)
        started.append(c)
        c.start_etcd()
        c.start_masters(masters)
        for _ in range(n):
            c.add_node(replicas=replicas)
        return c

    yield make

    problems = []
    for c in reversed(clusters):
        for p in c.stop():
            problems.append(f"[ha cluster {c.tmp}] {p}")
    if problems:
        pytest.fail("teardown: " + "; ".join(problems), pytrace=False)


@pytest.fixture(params=MODES)
def node(request, start_node):
    return start_node(request.param)


@pytest.fixture
def mnt(node):
    return node.mnt


@pytest.fixture
def scratch():
    """A temp dir under /tmp outside the mount, removed after the test."""
    d = tempfile.mkdtemp(prefix="mcfs-it-src-", dir="/tmp")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for n in getattr(item, "_mcfs_nodes", []):
        for p in n.procs():
            rep.sections.append((f"{p.name} log ({n.mode}, pid {p.pid})", p.text()))
