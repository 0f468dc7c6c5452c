# SPDX-License-Identifier: Apache-2.0
"""mcfs-master --http: the HTTP endpoints (docs/cluster.md, "Monitoring").

- GET /role is "leader", /health is 200 "ok", /metrics is Prometheus text
  (HELP and TYPE before every family, each sample "name{labels} value" or
  "name value") with the mcfs_master_ families, epoch and leader;
- the request, connection and byte counters rise when a real node joins
  and writes a file;
- unknown paths are 404, POST (with or without a body) is 405, HEAD works;
- --http off and --http "" serve no HTTP at all (only the RPC port
  listens); a bad --http value exits 2 with one line naming the option; an
  HTTP port in use exits 1 saying so.

Every master listens on 127.0.0.1 on free ports, never on 0.0.0.0:7421;
each is stopped by PID at teardown."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest

import helpers
from helpers import wait_for, write_file

# Counters are published every 500 ms: a deadline for hangs, not a measure.
PUBLISH_DEADLINE = 30

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
_VALUE = r"(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|NaN|[-+]Inf)"
SAMPLE = re.compile(rf"^({_NAME})(\{{{_LABEL}(?:,{_LABEL})*\}})? ({_VALUE})(?: -?[0-9]+)?$")


def parse_metrics(text):
    """Check the Prometheus text exposition format; return
    ({"name{labels}": value}, {family: type})."""
    samples, types, helps = {}, {}, set()
    assert text.endswith("\n"), "the exposition must end with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(_NAME, name), line
            helps.add(name)
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4, line
            name, typ = parts[2], parts[3]
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"family typed twice: {line}"
            types[name] = typ
        elif line.startswith("#") or not line.strip():
            raise AssertionError(f"unexpected line: {line!r}")
        else:
            m = SAMPLE.match(line)
            assert m, f"not 'name{{labels}} value' or 'name value': {line!r}"
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            assert name in types, f"sample before its # TYPE: {line!r}"
            key = name + labels
            assert key not in samples, f"sample twice: {line!r}"
            samples[key] = float(value)
    for name, typ in types.items():
        assert name in helps, f"{name} has no # HELP"
        if typ == "counter":
            assert name.endswith("_total"), f"counter {name} not named _total"
    return samples, types


def get(port, path, method="GET", data=None):
    """(status, body text, headers) of one request to 127.0.0.1:port."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def metrics(port):
    status, body, headers = get(port, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers["Content-Type"]
    return parse_metrics(body)


def require_master():
    if not os.access(helpers.binary("mcfs-master"), os.X_OK):
        pytest.fail(f"{helpers.binary('mcfs-master')} is missing; build first or set MCFS_BUILD")


class Master:
    """A bare mcfs-master on 127.0.0.1 (no nodes), stopped by PID."""

    mode = "bare master"  # for the log sections of a failure report (conftest)

    def __init__(self, http_args=None):
        self.tmp = tempfile.mkdtemp(prefix="mcfs-http-", dir="/tmp")
        self.port = helpers.free_port()
        self.http_port = helpers.free_port()
        if http_args is None:
            http_args = ["--http", f"127.0.0.1:{self.http_port}"]
        self.proc = helpers.Proc(
            "mcfs-master",
            [helpers.binary("mcfs-master"), "--listen", f"127.0.0.1:{self.port}"] + http_args,
            os.path.join(self.tmp, "master.log"),
        )
        helpers.wait_port(self.port, self.proc.proc, helpers.MOUNT_TIMEOUT, "mcfs-master")

    def procs(self):
        return [self.proc]

    def stop(self):
        problems = []
        if not self.proc.alive():
            problems.append(f"mcfs-master died during the test (exit {self.proc.proc.returncode})")
        t = self.proc.terminate()
        if t:
            problems.append(t)
        if self.proc.proc.returncode not in (0, -15) and not self.proc.killed:
            problems.append(f"mcfs-master exited with {self.proc.proc.returncode} on SIGTERM")
        self.proc.kill()
        self.proc.close_log()
        if helpers.sanitizer_report(self.proc.text()):
            problems.append("sanitizer report in the mcfs-master log")
        return problems


@pytest.fixture
def master(request):
    started = []
    if not hasattr(request.node, "_mcfs_nodes"):
        request.node._mcfs_nodes = []  # conftest attaches their logs to a failure

    def start(http_args=None):
        require_master()
        m = Master(http_args)
        started.append(m)
        request.node._mcfs_nodes.append(m)
        return m

    yield start

    problems = []
    for m in started:
        problems += m.stop()
        if not problems:
            shutil.rmtree(m.tmp, ignore_errors=True)
    if problems:
        pytest.fail("teardown: " + "; ".join(problems), pytrace=False)


def listening_ports(pid):
    """The TCP ports process pid listens on, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def test_role_health_metrics(master):
    m = master()
    helpers.wait_port(m.http_port, m.proc.proc, helpers.MOUNT_TIMEOUT, "mcfs-master HTTP")
    assert get(m.http_port, "/role")[:2] == (200, "leader\n")
    assert get(m.http_port, "/health")[:2] == (200, "ok\n")
    samples, types = metrics(m.http_port)
    assert samples["mcfs_master_leader"] == 1
    assert samples["mcfs_master_serving"] == 1
    assert samples["mcfs_master_epoch"] >= 1
    assert types["mcfs_master_leader"] == "gauge"
    assert types["mcfs_master_epoch"] == "gauge"
    assert types["mcfs_master_connections"] == "gauge"
    for c in ("requests_total", "evict_rounds_total", "evicted_objects_total",
              "evicted_bytes_total", "alloc_enospc_total", "puts_expired_total",
              "connections_accepted_total", "received_bytes_total", "sent_bytes_total"):
        assert types[f"mcfs_master_{c}"] == "counter", c
    assert all(k.startswith("mcfs_master_") for k in samples)
    assert 'mcfs_master_requests_total{type="HELLO"}' in samples
    assert listening_ports(m.proc.pid) == {m.port, m.http_port}


def test_errors_and_methods(master):
    m = master()
    helpers.wait_port(m.http_port, m.proc.proc, helpers.MOUNT_TIMEOUT, "mcfs-master HTTP")
    for path in ("/", "/nope", "/role/x", "/metricsx"):
        assert get(m.http_port, path)[0] == 404, path
    status, _, headers = get(m.http_port, "/role", method="POST", data=b"x=1")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert get(m.http_port, "/metrics", method="POST", data=b"")[0] == 405
    assert get(m.http_port, "/health", method="PUT", data=b"ok")[0] == 405
    status, body, _ = get(m.http_port, "/metrics", method="HEAD")
    assert (status, body) == (200, "")
    # Query strings are not part of the path.
    assert get(m.http_port, "/role?x=1")[:2] == (200, "leader\n")
    # Still serving after all that.
    assert get(m.http_port, "/health")[0] == 200


@pytest.mark.parametrize("value", ["off", ""])
def test_http_off(master, value):
    m = master(["--http", value])
    # The RPC port answers; nothing else listens, 7421 included.
    with socket.create_connection(("127.0.0.1", m.port), timeout=5):
        pass
    assert listening_ports(m.proc.pid) == {m.port}
    assert "HTTP endpoints" not in m.proc.text()


@pytest.mark.parametrize("value", ["nonsense:99999", "127.0.0.1:0", "127.0.0.1:", "7x", "offf:"])
def test_bad_http_value(value):
    require_master()
    r = subprocess.run([helpers.binary("mcfs-master"), "--listen", f"127.0.0.1:{helpers.free_port()}",
                        "--http", value], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "--http" in lines[0] and "bad address" in lines[0], lines[0]


def test_http_port_in_use():
    require_master()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        r = subprocess.run([helpers.binary("mcfs-master"), "--listen",
                            f"127.0.0.1:{helpers.free_port()}", "--http", f"127.0.0.1:{busy}"],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.returncode, r.stderr)
    errors = [line for line in r.stderr.splitlines() if "[error]" in line]
    assert len(errors) == 1, r.stderr
    assert f"cannot serve HTTP on 127.0.0.1:{busy}: Address already in use" in errors[0]
    assert not helpers.sanitizer_report(r.stderr), r.stderr


def test_counters_rise_with_a_node(cluster):
    c = cluster(n=0)
    helpers.wait_port(c.http_port, c.master.proc, helpers.MOUNT_TIMEOUT, "mcfs-master HTTP")
    before, _ = metrics(c.http_port)
    assert before['mcfs_master_requests_total{type="HELLO"}'] == 0
    assert before["mcfs_master_connections"] == 0

    node = c.add_node()
    write_file(os.path.join(node.mnt, "obj"), os.urandom(1 << 20))

    def risen():
        now, _ = metrics(c.http_port)
        ok = (now['mcfs_master_requests_total{type="HELLO"}'] >= 1
              and now['mcfs_master_requests_total{type="PUT_END"}']
              > before['mcfs_master_requests_total{type="PUT_END"}']
              and now["mcfs_master_connections"] >= 1
              and now["mcfs_master_connections_accepted_total"] >= 1
              and now["mcfs_master_received_bytes_total"] > before["mcfs_master_received_bytes_total"]
              and now["mcfs_master_sent_bytes_total"] > before["mcfs_master_sent_bytes_total"])
        return now if ok else None

    now = wait_for(risen, PUBLISH_DEADLINE, "the request counters to count the node's write")
    for k, v in before.items():
        if k.endswith("_total"):
            assert now[k] >= v, f"counter {k} went down: {v} -> {now[k]}"
    assert get(c.http_port, "/health")[:2] == (200, "ok\n")
