#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Remote-read bandwidth of an mcfs cluster against the wire it runs on.
#
# Starts an mcfs-master and two nodes (A and B) on 127.0.0.1 with temp
# mount points, writes files of 1, 4, 16 and 64 MiB through A with
# replica_num 1 (so every byte lives in A's segment only), and reads them
# through B's mount, 1 MiB per read() as dd bs=1M would: every byte crosses
# B's segment client and A's segment server. In the same run it measures
# loopback TCP with iperf3 (one stream, 5 s, before and after the reads)
# and prints each size's GB/s and its ratio to iperf3. For comparison it
# also reads the same files through A's own mount (the local replica) and
# from a tmpfs directory.
#
#   tools/bench-remote.sh
#
# Environment:
#   MCFS_BUILD          build directory with bin/mcfs, bin/mcfs-master (default build/)
#   BENCH_SIZES         file sizes in MiB (default "1 4 16 64")
#   BENCH_TOTAL_MB      MiB written per size (default 512)
#   BENCH_DIRECT        1: open the files on the mcfs mounts with O_DIRECT (default 0)
#   BENCH_IPERF_SECS    iperf3 duration (default 5)
#
# Each file is opened, read to its end (the read that returns 0 included)
# and closed by one reader process that reuses one buffer, faulted in
# before the clock starts, as a serving process loading blocks would.
# Throughput is bytes over the sum of those times, open to close; GB/s are
# 10^9 bytes a second. (dd, one process per file, is not used to read: it
# faults a fresh 1 MiB buffer into every read's time, which caps even a
# tmpfs read of 1 MiB files near 1.5 GB/s here.)
# Every process is started here, tracked by PID and stopped on exit, and
# the temp directories are removed, whatever happens.
set -euo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${MCFS_BUILD:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
SIZES=${BENCH_SIZES:-"1 4 16 64"}
TOTAL_MB=${BENCH_TOTAL_MB:-512}
DIRECT=${BENCH_DIRECT:-0}
IPERF_SECS=${BENCH_IPERF_SECS:-5}
MOUNT_WAIT=30

die() {
	echo "bench-remote.sh: $*" >&2
	exit 1
}

for b in mcfs mcfs-master; do
	[[ -x $BUILD/bin/$b ]] || die "$BUILD/bin/$b is missing: build first (cmake -S . -B build && cmake --build build -j) or set MCFS_BUILD"
done
for t in iperf3 fusermount3 setfattr dd python3; do
	command -v "$t" >/dev/null || die "$t is not installed (tools/deps.sh installs it)"
done
[[ -e /dev/fuse ]] || die "/dev/fuse is missing: FUSE is not available here"
[[ $DIRECT = 0 || $DIRECT = 1 ]] || die "BENCH_DIRECT must be 0 or 1"
for s in $SIZES; do
	[[ $s =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZES: '$s' is not a size in MiB"
	((TOTAL_MB >= s)) || die "BENCH_TOTAL_MB ($TOTAL_MB) is smaller than a $s MiB file"
done

# One size's files at a time live in A's segment. Deleted files are freed
# when the read leases on them end (the master's --lease-ttl, 10 s), so A
# has room for two sizes and each size waits for room before it is written.
# B holds nothing: a small segment.
SEG_A_MB=$((2 * TOTAL_MB + 256))
SEG_B_MB=64
ROOM_WAIT=120

WORK=$(mktemp -d /tmp/mcfs-bench.XXXXXX)
SHM=$(mktemp -d /dev/shm/mcfs-bench.XXXXXX)
MASTER_PID='' A_PID='' B_PID='' IPERF_PID=''
MNT_A=$WORK/a
MNT_B=$WORK/b

mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }

stop_node() { # MOUNTPOINT PID
	local mnt=$1 pid=$2 i
	[[ -n $pid ]] || return 0
	if mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench-remote.sh: mcfs (pid $pid) still running after unmount; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		mounted "$mnt" && fusermount3 -uz "$mnt" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	[[ -n $IPERF_PID ]] && kill "$IPERF_PID" 2>/dev/null && wait "$IPERF_PID" 2>/dev/null
	stop_node "$MNT_B" "$B_PID"
	stop_node "$MNT_A" "$A_PID"
	if [[ -n $MASTER_PID ]]; then
		kill "$MASTER_PID" 2>/dev/null
		wait "$MASTER_PID" 2>/dev/null
	fi
	if ((rc != 0)); then
		for log in "$WORK"/*.log; do
			[[ -f $log ]] || continue
			echo "--- $(basename "$log") (last lines)" >&2
			tail -n 20 "$log" >&2
		done
	fi
	rm -rf "$SHM"
	if mounted "$MNT_A" || mounted "$MNT_B"; then
		echo "bench-remote.sh: a mount is left under $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # PORT PID WHAT
	local i
	for ((i = 0; i < MOUNT_WAIT * 10; i++)); do
		kill -0 "$2" 2>/dev/null || die "$3 exited before listening on 127.0.0.1:$1"
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	die "$3 is not listening on 127.0.0.1:$1 after ${MOUNT_WAIT}s"
}

start_node() { # NAME MOUNTPOINT SEGMENT -> sets NODE_PID
	local name=$1 mnt=$2 seg=$3 port i
	port=$(free_port)
	mkdir -p "$mnt"
	"$BUILD/bin/mcfs" "$mnt" -f --master "127.0.0.1:$MPORT" --listen "127.0.0.1:$port" \
		--node-name "$name" --segment-size "${seg}M" --replicas 1 >"$WORK/$name.log" 2>&1 &
	NODE_PID=$!
	for ((i = 0; i < MOUNT_WAIT * 10; i++)); do
		mounted "$mnt" && return 0
		kill -0 "$NODE_PID" 2>/dev/null || die "mcfs $name exited before mounting (see its log above)"
		sleep 0.1
	done
	die "mcfs $name did not mount $mnt in ${MOUNT_WAIT}s"
}

# Read every file of a directory (open, 1 MiB read()s to the end, close)
# and set GBPS to the bytes over the sum of the per-file times.
read_dir() { # DIR DIRECT(0|1)
	GBPS=$(python3 - "$1" "$2" <<'PY'
import mmap, os, sys, time
d, direct = sys.argv[1], sys.argv[2] == "1"
buf = mmap.mmap(-1, 1 << 20)  # page-aligned, as O_DIRECT needs
buf.write(b"\0" * len(buf))  # faulted in before any clock runs
view = memoryview(buf)
flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
total = secs = 0
for name in sorted(os.listdir(d)):
    path = os.path.join(d, name)
    t = time.perf_counter()
    fd = os.open(path, flags)
    while True:
        n = os.readv(fd, [view])
        if not n:
            break
        total += n
    os.close(fd)
    secs += time.perf_counter() - t
print("%.2f" % (total / secs / 1e9) if secs > 0 else "inf")
PY
	) || die "reading $1 failed"
}

# Loopback TCP, one stream, for IPERF_SECS: set GBPS.
iperf_once() {
	iperf3 -c 127.0.0.1 -p "$IPORT" -P 1 -t "$IPERF_SECS" -J >"$WORK/iperf3.json" ||
		die "iperf3 -c failed: $(tail -n 5 "$WORK/iperf3.json")"
	GBPS=$(python3 -c 'import json, sys
bps = json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]
print("%.2f" % (bps / 8 / 1e9))' "$WORK/iperf3.json")
}

# Wait until the pool (A's and B's segments) has MIB MiB free on top of B's
# segment, which A cannot use.
wait_room() { # MIB
	local need=$((($1 + SEG_B_MB) << 20)) free i
	for ((i = 0; i < ROOM_WAIT * 10; i++)); do
		free=$(stat -f -c '%f * %S' "$MNT_A")
		free=$((free)) # "BLOCKS * BSIZE", evaluated
		((free >= need)) && return 0
		sleep 0.1
	done
	die "the pool has $((free >> 20)) MiB free after ${ROOM_WAIT}s, not the $((need >> 20)) MiB needed"
}

echo "bench-remote.sh: build $BUILD, sizes $SIZES MiB, $TOTAL_MB MiB per size, O_DIRECT: $DIRECT"

MPORT=$(free_port)
HPORT=$(free_port)
"$BUILD/bin/mcfs-master" --listen "127.0.0.1:$MPORT" --http "127.0.0.1:$HPORT" >"$WORK/master.log" 2>&1 &
MASTER_PID=$!
wait_port "$MPORT" "$MASTER_PID" mcfs-master
start_node bench-a "$MNT_A" "$SEG_A_MB"
A_PID=$NODE_PID
start_node bench-b "$MNT_B" "$SEG_B_MB"
B_PID=$NODE_PID

# Source bytes: random, from tmpfs so that writing them costs no disk I/O.
maxsize=0
for s in $SIZES; do ((s > maxsize)) && maxsize=$s; done
head -c "$((maxsize << 20))" /dev/urandom >"$SHM/src"

mkdir "$MNT_A/bench"
setfattr -n user.mcfs.replica_num -v 1 "$MNT_A/bench"

IPORT=$(free_port)
# No -1: the readiness probe below is a connection too.
iperf3 -s -B 127.0.0.1 -p "$IPORT" >"$WORK/iperf3-server.log" 2>&1 &
IPERF_PID=$!
wait_port "$IPORT" "$IPERF_PID" "iperf3 -s"
iperf_once
IPERF_BEFORE=$GBPS

declare -A REMOTE LOCAL TMPFS
for s in $SIZES; do
	n=$((TOTAL_MB / s))
	d=bench/s$s
	wait_room "$((n * s + s))"
	mkdir "$MNT_A/$d" "$SHM/s$s"
	for ((i = 0; i < n; i++)); do
		dd if="$SHM/src" of="$MNT_A/$d/f$i" bs=1M count="$s" status=none
		dd if="$SHM/src" of="$SHM/s$s/f$i" bs=1M count="$s" status=none
	done
	# Every byte on A only: the file's one replica is bench-a's.
	rep=$(getfattr --only-values -n user.mcfs.replicas "$MNT_B/$d/f0" 2>/dev/null || true)
	[[ $rep == "bench-a "* && $(wc -l <<<"$rep") -eq 1 ]] ||
		die "$d/f0 should have one replica, on bench-a; user.mcfs.replicas says: $rep"

	read_dir "$MNT_B/$d" "$DIRECT"
	REMOTE[$s]=$GBPS
	# What B read is what A wrote.
	cmp -s <(head -c "$((s << 20))" "$SHM/src") "$MNT_B/$d/f$((n - 1))" ||
		die "$d/f$((n - 1)) read through bench-b differs from what was written"
	read_dir "$MNT_A/$d" "$DIRECT"
	LOCAL[$s]=$GBPS
	read_dir "$SHM/s$s" 0
	TMPFS[$s]=$GBPS
	echo "  ${s} MiB x $n: remote ${REMOTE[$s]} GB/s, local ${LOCAL[$s]} GB/s, tmpfs ${TMPFS[$s]} GB/s"
	rm -r "${MNT_A:?}/$d" "${SHM:?}/s$s"
done

# Loopback TCP, one stream, after the reads as before them; the ratios are
# to the mean of the two, since this machine's speed drifts within a run.
iperf_once
IPERF_AFTER=$GBPS
kill "$IPERF_PID" 2>/dev/null
wait "$IPERF_PID" 2>/dev/null || true
IPERF_PID=''
IPERF=$(awk -v a="$IPERF_BEFORE" -v b="$IPERF_AFTER" 'BEGIN { printf "%.2f", (a + b) / 2 }')

echo
echo "iperf3 loopback, one stream, ${IPERF_SECS}s: $IPERF_BEFORE GB/s before the reads, $IPERF_AFTER after, mean $IPERF"
# FUSE round trips depend on it (docs/performance.md): say what it was.
if [[ -r /sys/module/fuse/parameters/wake_here ]]; then
	echo "fuse wake_here: $(cat /sys/module/fuse/parameters/wake_here)"
fi
echo
printf '%-8s %6s %14s %10s %14s %12s\n' size files "remote GB/s" "/iperf3" "local GB/s" "tmpfs GB/s"
for s in $SIZES; do
	ratio=$(awk -v r="${REMOTE[$s]}" -v i="$IPERF" 'BEGIN { if (i > 0) printf "%.2f", r / i; else print "-" }')
	printf '%-8s %6d %14s %10s %14s %12s\n' "${s}MiB" "$((TOTAL_MB / s))" "${REMOTE[$s]}" "$ratio" \
		"${LOCAL[$s]}" "${TMPFS[$s]}"
done
echo
echo "remote: read through bench-b, every byte from bench-a's segment server over TCP"
echo "local:  read through bench-a, its own replica$( ((DIRECT)) || echo '; may include kernel page cache hits (BENCH_DIRECT=1 bypasses them)')"
echo "tmpfs:  the same files read from a tmpfs directory (/dev/shm): a plain in-memory read"
