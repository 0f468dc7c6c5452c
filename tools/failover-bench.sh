#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Failover time of an HA mcfs cluster on 127.0.0.1: etcd, two mcfs-masters
# and two nodes (replica_num 2); 50 files are written, then the leader is
# killed with SIGKILL, and the time until the first successful read of a
# file through the other node (with the standby serving) is measured. The
# killed master is started again (as a standby) and the next run kills the
# current leader. Prints each run and the median.
#
#   tools/failover-bench.sh [RUNS]      (default 5; MCFS_BUILD=build by default)
set -euo pipefail

RUNS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${MCFS_BUILD:-$ROOT/build}/bin
ETCD=${MCFS_ETCD:-/usr/bin/etcd}
T=$(mktemp -d /tmp/mcfs-failover-XXXXXX)
PIDS=()
MNTS=()

cleanup() {
	for m in "${MNTS[@]}"; do fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

port() { # a free TCP port on 127.0.0.1
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

[ -x "$ETCD" ] || { echo "failover-bench: $ETCD missing (apt-get install etcd-server)" >&2; exit 1; }
[ -x "$BIN/mcfs-master" ] || { echo "failover-bench: build first ($BIN)" >&2; exit 1; }

EP=$(port); PP=$(port)
"$ETCD" --data-dir "$T/etcd" --listen-client-urls "http://127.0.0.1:$EP" \
	--advertise-client-urls "http://127.0.0.1:$EP" --listen-peer-urls "http://127.0.0.1:$PP" \
	--initial-advertise-peer-urls "http://127.0.0.1:$PP" \
	--initial-cluster "default=http://127.0.0.1:$PP" >"$T/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$EP/health" >/dev/null && break; sleep 0.1; done

declare -A MPID MRPC MHTTP
start_master() { # name
	local n=$1
	[ -n "${MRPC[$n]:-}" ] || { MRPC[$n]=$(port); MHTTP[$n]=$(port); }
	"$BIN/mcfs-master" --listen "127.0.0.1:${MRPC[$n]}" --http "127.0.0.1:${MHTTP[$n]}" \
		--etcd "127.0.0.1:$EP" --cluster bench --node-ttl 3s >>"$T/$n.log" 2>&1 &
	MPID[$n]=$!
	PIDS+=($!)
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:${MHTTP[$n]}/role" >/dev/null 2>&1 && break; sleep 0.1; done
}
role() { curl -s --max-time 1 "http://127.0.0.1:${MHTTP[$1]}/role" 2>/dev/null || true; }

start_master m1
for _ in $(seq 100); do [ "$(role m1)" = leader ] && break; sleep 0.1; done
start_master m2

for n in a b; do
	mkdir -p "$T/$n"
	"$BIN/mcfs" "$T/$n" -f --master "etcd://127.0.0.1:$EP/bench" --listen "127.0.0.1:$(port)" \
		--node-name "node-$n" --segment-size 256M --replicas 2 >"$T/node-$n.log" 2>&1 &
	PIDS+=($!)
	MNTS+=("$T/$n")
done
for n in a b; do
	for _ in $(seq 100); do mountpoint -q "$T/$n" && break; sleep 0.1; done
done

times=()
for run in $(seq "$RUNS"); do
	mkdir -p "$T/a/run$run"
	for i in $(seq 50); do head -c 65536 /dev/urandom >"$T/a/run$run/f$i"; done
	sleep 0.5 # the catalogs catch up (docs/cluster.md)
	leader=""
	for n in m1 m2; do [ "$(role $n)" = leader ] && leader=$n; done
	[ -n "$leader" ] || { echo "failover-bench: no leader" >&2; exit 1; }
	other=m1; [ "$leader" = m1 ] && other=m2
	t0=$(date +%s%N)
	kill -9 "${MPID[$leader]}"
	wait "${MPID[$leader]}" 2>/dev/null || true
	until cat "$T/b/run$run/f$run" >/dev/null 2>&1 && [ "$(role $other)" = leader ]; do sleep 0.02; done
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	times+=("$ms")
	echo "run $run: killed $leader, $other serving and a read through node-b done in $ms ms"
	start_master "$leader" # back as a standby
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
echo "failover over $RUNS runs: $(echo $sorted | tr ' ' ',') ms; median $median ms"
