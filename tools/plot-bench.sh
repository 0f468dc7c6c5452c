#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Turn mcfs-bench JSON results (--json FILE) into one PNG: throughput in
# GB/s, operations per second, and latency quantiles (p50, p99, p999, log
# scale) of every phase of every file, side by side, so runs against an
# mcfs mount and against tmpfs read at a glance.
#
#   tools/plot-bench.sh [-o OUT.png] [-t TITLE] RESULT.json...
#
# Bars are labelled "<command> <size>: <directory> <phase>"; each file's
# "phases" list (what every mcfs-bench command writes) is what is drawn.
# Needs python3 (to read the JSON) and gnuplot (Debian: gnuplot-nox).
# Default output: bench.png in the current directory.
set -euo pipefail

die() {
	echo "plot-bench.sh: $*" >&2
	exit 2
}

usage() {
	sed -n 's/^#   //p' "$0"
	exit "${1:-2}"
}

OUT=bench.png
TITLE="mcfs-bench"
while getopts "o:t:h" opt; do
	case "$opt" in
	o) OUT=$OPTARG ;;
	t) TITLE=$OPTARG ;;
	h) usage 0 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
(($# > 0)) || die "no JSON file given (usage: tools/plot-bench.sh [-o OUT.png] RESULT.json...)"
for f in "$@"; do
	[[ -r $f ]] || die "$f: cannot read it"
done
command -v gnuplot >/dev/null || die "gnuplot is not installed (apt-get install gnuplot-nox, or tools/deps.sh)"
command -v python3 >/dev/null || die "python3 is not installed"

DATA=$(mktemp /tmp/plot-bench.XXXXXX)
trap 'rm -f "$DATA"' EXIT

# One row per phase: label, GB/s, ops/s, p50, p99, p999 (us), tab-separated.
python3 - "$DATA" "$@" <<'PYEOF' || exit 1
import json
import os
import sys

def size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}"
        n /= 1024

rows = []
for path in sys.argv[2:]:
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"plot-bench.sh: {path}: not an mcfs-bench JSON file ({e})")
    if doc.get("tool") != "mcfs-bench" or not isinstance(doc.get("phases"), list):
        sys.exit(f"plot-bench.sh: {path}: not an mcfs-bench JSON file (no tool/phases)")
    conf = doc.get("config", {})
    head = doc.get("command", "?")
    if "size" in conf:
        head += " " + size(conf["size"])
    elif "block_bytes" in conf:
        head += " " + size(conf["block_bytes"])
    for p in doc["phases"]:
        target = os.path.basename(os.path.normpath(p.get("target", "?"))) or "/"
        lat = p.get("latency_us", {})
        label = f"{head}: {target} {p.get('phase', '?')}".replace('"', "'")
        rows.append((label, p.get("gbps", 0) or 0, p.get("ops_per_s", 0) or 0,
                     lat.get("p50", 0) or 0, lat.get("p99", 0) or 0, lat.get("p999", 0) or 0))
if not rows:
    sys.exit("plot-bench.sh: no phases in the given files")
with open(sys.argv[1], "w") as out:
    for r in rows:
        out.write('"%s"\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\n' % r)
PYEOF

N=$(wc -l <"$DATA")
WIDTH=$((N * 70 > 1000 ? N * 70 : 1000))
GP_TITLE=${TITLE//\"/\'}
GP_OUT=${OUT//\"/\'}
gnuplot <<GPEOF || die "gnuplot failed"
set terminal pngcairo size $WIDTH,1300 font "sans,9"
set output "$GP_OUT"
set datafile separator "\t"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics rotate by -40 scale 0 nomirror
set lmargin 12
set rmargin 10
set bmargin 9
set multiplot layout 3,1 title "$GP_TITLE"
set title "throughput (GB/s, 10^9 bytes/s)"
set yrange [0:*]
plot "$DATA" using 2:xtic(1) title "GB/s" linecolor rgb "#3465a4"
set title "operations per second (log scale)"
set logscale y
set yrange [*:*]
plot "$DATA" using (\$3 > 0 ? \$3 : 1e-3):xtic(1) title "ops/s" linecolor rgb "#4e9a06"
set title "latency (us, log scale)"
plot "$DATA" using (\$4 > 0 ? \$4 : 1e-3):xtic(1) title "p50" linecolor rgb "#73d216", \
     "" using (\$5 > 0 ? \$5 : 1e-3) title "p99" linecolor rgb "#f57900", \
     "" using (\$6 > 0 ? \$6 : 1e-3) title "p999" linecolor rgb "#cc0000"
unset multiplot
GPEOF
echo "plot-bench.sh: wrote $OUT ($N phases from $# file(s))"
