# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures for the mcfs integration tests.

  node   a mounted mcfs node, parametrized over the two ways to run one:
         "embedded" (mcfs MNT -f --segment-size 256M, master in-process) and
         "external" (mcfs-master --listen 127.0.0.1:PORT, then
         mcfs MNT -f --master 127.0.0.1:PORT --segment-size 256M)
  mnt    the mount path of that node (so every test using it runs twice)
  start_node(mode, segment_size=..., extra=...)
         a factory for nodes a test configures itself
  scratch  a temp dir under /tmp outside the mount (pathlib.Path)

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


def _require_fuse():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing: FUSE is not available here")
    if not os.access(helpers.binary("mcfs"), os.X_OK):
        pytest.fail(f"{helpers.binary('mcfs')} is missing; build first or set MCFS_BUILD")


@pytest.fixture
def start_node(request):
    nodes = []
    request.node._mcfs_nodes = nodes

    def start(mode="embedded", segment_size="256M", extra=()):
        _require_fuse()
        n = helpers.Node(mode, segment_size, extra)
        nodes.append(n)
        n.start()
        return n

    yield start

    problems = []
    for n in reversed(nodes):
        for p in n.stop():
            problems.append(f"[{n.mode} node {n.mnt}] {p}")
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
