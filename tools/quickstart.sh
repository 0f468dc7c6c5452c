#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# One command to a working single-node mcfs: install the build and test
# dependencies, build, and mount an mcfs with an embedded master.
#
#   tools/quickstart.sh MOUNTPOINT [mcfs options...]
#
# Extra options go to `mcfs` unchanged (e.g. --master HOST:PORT,
# --segment-size 4G). The default segment is 1G. The daemon detaches by
# itself; `fusermount3 -u MOUNTPOINT` stops it.
set -euo pipefail

usage() {
	cat >&2 <<USAGE
usage: tools/quickstart.sh MOUNTPOINT [mcfs options...]
  Builds mcfs and mounts it at MOUNTPOINT (single node, embedded master,
  --segment-size 1G unless you give one). Example:
    tools/quickstart.sh /mnt/kvcache
    tools/quickstart.sh /mnt/kvcache --segment-size 8G
USAGE
	exit 2
}

die() {
	echo "quickstart.sh: $*" >&2
	exit 1
}

(($# >= 1)) || usage
case "$1" in
-h | --help) usage ;;
-*) echo "quickstart.sh: the first argument must be the mount point, not '$1'" >&2; usage ;;
esac

MNT=$1
shift
EXTRA=("$@")

cd_root() { cd "$(dirname "$0")/.."; }

# /proc/mounts escapes space, tab, newline and backslash as octal.
escape_mnt() { printf '%s' "$1" | sed -e 's/\\/\\134/g' -e 's/ /\\040/g' -e 's/\t/\\011/g'; }
mount_type() {
	local m
	m=$(escape_mnt "$1")
	awk -v m="$m" '$2 == m { t = $3 } END { if (t == "") exit 1; print t }' /proc/mounts
}
report_mounted() {
	local fstype=$1
	if ! stat -- "$MNT" >/dev/null 2>&1; then
		echo "quickstart.sh: $MNT is mounted ($fstype) but does not answer (daemon gone?)." >&2
		echo "  clean it up with: fusermount3 -u $MNT   (or: fusermount3 -uz $MNT)" >&2
		exit 1
	fi
	echo "quickstart.sh: $MNT is already mounted ($fstype); nothing to do."
	echo "  stop it with: fusermount3 -u $MNT"
	exit 0
}

# Check the lexical absolute path first: a dead FUSE mount cannot be
# stat()ed, so it must be recognised without touching it.
MNT=$(realpath -m -s -- "$MNT")
if fstype=$(mount_type "$MNT"); then
	report_mounted "$fstype"
fi
mkdir -p -- "$MNT" || die "cannot create mount point $MNT"
MNT=$(cd -- "$MNT" && pwd -P) || die "cannot enter mount point $MNT"
if fstype=$(mount_type "$MNT"); then
	report_mounted "$fstype"
fi
is_mounted() { mount_type "$MNT" >/dev/null; }

cd_root
ROOT=$(pwd)
BUILD=${MCFS_BUILD:-$ROOT/build}
TIMEOUT=${MCFS_MOUNT_TIMEOUT:-30}

tools/deps.sh

echo "quickstart.sh: building in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
	die "cmake configure failed (run: cmake -S . -B $BUILD to see why)"
cmake --build "$BUILD" -j "$(nproc)" || die "build failed"

[[ -x "$BUILD/bin/mcfs" ]] || die "$BUILD/bin/mcfs was not built"

# Default segment size unless the caller gave one (either spelling).
have_seg=0
for a in "${EXTRA[@]+"${EXTRA[@]}"}"; do
	case "$a" in
	--segment-size | --segment-size=* | *segment-size=* | *segment_size=*) have_seg=1 ;;
	esac
done
args=("$MNT")
((have_seg)) || args+=(--segment-size 1G)
args+=("${EXTRA[@]+"${EXTRA[@]}"}")

# Some kernels' fuse module can wake a FUSE daemon on the CPU of the process
# that made the request (parameter wake_here, not in mainline Linux). On a
# virtual machine that halves a round trip's cost (docs/performance.md), so
# turn it on where it exists; the daemon reads it when it mounts.
# MCFS_NO_TUNE=1 leaves the kernel as it is.
tune_fuse() {
	local p=/sys/module/fuse/parameters/wake_here
	[[ -e $p ]] || return 0
	if [[ ${MCFS_NO_TUNE:-0} = 1 ]]; then
		echo "quickstart.sh: MCFS_NO_TUNE=1: fuse wake_here left at $(cat "$p")"
	elif [[ $(cat "$p") != Y ]]; then
		if echo Y >"$p" 2>/dev/null; then
			echo "quickstart.sh: set fuse wake_here=Y: FUSE requests are served on the caller's CPU (MCFS_NO_TUNE=1 skips this)"
		else
			echo "quickstart.sh: could not set $p (not root?): FUSE round trips stay slower" >&2
		fi
	fi
}
tune_fuse

echo "quickstart.sh: starting $BUILD/bin/mcfs ${args[*]}"
# Without -f mcfs daemonizes: it returns once the mount is set up (or failed).
rc=0
"$BUILD/bin/mcfs" "${args[@]}" || rc=$?
if ((rc == 2)); then
	die "mcfs rejected its options (exit 2); see $BUILD/bin/mcfs --help"
elif ((rc != 0)); then
	die "mcfs failed to start (exit $rc); run it in the foreground to see why: $BUILD/bin/mcfs ${args[*]} -f"
fi

deadline=$((SECONDS + TIMEOUT))
until is_mounted; do
	if ((SECONDS >= deadline)); then
		die "timed out after ${TIMEOUT}s waiting for $MNT in /proc/mounts; run in the foreground to see why: $BUILD/bin/mcfs ${args[*]} -f"
	fi
	sleep 0.2
done

cat <<DONE

mcfs is mounted at $MNT.

Use it like any directory; a file is a cache entry, a directory a batch:
  mkdir -p $MNT/model1
  cp /etc/os-release $MNT/model1/blk_0001
  ls -l $MNT/model1
  cmp /etc/os-release $MNT/model1/blk_0001
  df -h $MNT                                   # pool capacity and free space
  getfattr -d -m user.mcfs. $MNT/model1/blk_0001   # replicas, pins, lease, checksum
  setfattr -n user.mcfs.soft_pin -v 1 $MNT/model1/blk_0001

Extended attributes are documented in docs/xattrs.md.

Stop it with:
  fusermount3 -u $MNT
DONE
