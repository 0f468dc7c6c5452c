#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Install every Debian package mcfs needs to build and test. Idempotent: each
# package is checked with dpkg-query first, so a machine that already has
# everything does no apt work at all (no `apt-get update`, no network).
# Needs root (or sudo) only when something is missing. Fails loudly.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config clang-format
	libfuse3-dev fuse3
	libcriterion-dev
	libibverbs-dev librdmacm-dev
	libcurl4-openssl-dev uthash-dev libjansson-dev libxxhash-dev
	libisal-dev libinih-dev libmicrohttpd-dev
	attr python3 python3-pytest
	iperf3 etcd-server etcd-client
	gnuplot-nox
	procps psmisc util-linux
)

die() {
	echo "deps.sh: $*" >&2
	exit 1
}

command -v dpkg-query >/dev/null 2>&1 ||
	die "dpkg-query not found: this script supports Debian 12 (bookworm) and its derivatives; install the packages listed in tools/deps.sh by hand"

missing=()
for p in "${PACKAGES[@]}"; do
	# "ii" = desired install, status installed. Anything else (absent,
	# config-files, half-installed) counts as missing.
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	if [[ "${st:0:2}" != "ii" ]]; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "deps.sh: all ${#PACKAGES[@]} packages present"
	exit 0
fi

echo "deps.sh: installing ${#missing[@]} missing package(s): ${missing[*]}"

SUDO=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 ||
		die "not root and sudo is missing; run as root: apt-get install ${missing[*]}"
	SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update ||
	die "apt-get update failed (network or sources.list?)"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
	die "apt-get install failed for: ${missing[*]}"

# Verify: a package that apt could not provide must not pass silently.
still=()
for p in "${missing[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ "${st:0:2}" == "ii" ]] || still+=("$p")
done
((${#still[@]} == 0)) || die "still missing after install: ${still[*]}"
echo "deps.sh: done"
