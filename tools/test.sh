#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The whole test run, as CI does it: dependencies, then for two
# configurations, a normal RelWithDebInfo build (build/) and a Debug build
# with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/):
# configure, build, every Criterion unit test, then the pytest integration
# suite against that build's binaries. Leaks count as failures under ASan.
#
#   tools/test.sh                 both configurations
#   MCFS_TEST_CONFIGS=normal tools/test.sh      only one (normal or asan)
#   MCFS_PYTEST_ARGS="-k xattr" tools/test.sh   extra pytest arguments
#
# Ends with "test.sh: N passed, M failed" (test cases, plus one failure per
# configure/build step or crashed binary) and exits non-zero on any failure.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
PY=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
UNIT_TIMEOUT=${MCFS_UNIT_TIMEOUT:-600}
IT_TIMEOUT=${MCFS_IT_TIMEOUT:-1500}
CONFIGS=${MCFS_TEST_CONFIGS:-normal asan}

passed=0
failed=0
skipped=0
failures=()

note_fail() {
	failed=$((failed + 1))
	failures+=("$1")
	echo "test.sh: FAIL: $1" >&2
}

section() { printf '\n===== %s =====\n' "$*"; }

if ! tools/deps.sh; then
	echo "test.sh: tools/deps.sh failed; cannot build" >&2
	echo "test.sh: 0 passed, 1 failed"
	exit 1
fi

# Criterion prints "[====] Synthesis: Tested: T | Passing: P | Failing: F | Crashing: C".
run_unit() {
	local cfg=$1 bin=$2 name log rc syn tested passing failing
	name=$(basename "$bin")
	log=$(mktemp "/tmp/mcfs-unit-$cfg-$name.XXXXXX")
	echo "--- $cfg: $name"
	timeout --kill-after=10 "$UNIT_TIMEOUT" "$bin" --jobs "$JOBS" >"$log" 2>&1
	rc=$?
	syn=$(grep -a 'Synthesis:' "$log" | tail -n 1)
	if [[ -n "$syn" ]]; then
		tested=$(sed -n 's/.*Tested: *\([0-9]*\).*/\1/p' <<<"$syn")
		passing=$(sed -n 's/.*Passing: *\([0-9]*\).*/\1/p' <<<"$syn")
		failing=$(sed -n 's/.*Failing: *\([0-9]*\).*/\1/p' <<<"$syn")
		passed=$((passed + ${passing:-0}))
		# Failing already includes crashing tests in Criterion's count; skipped
		# tests are in neither.
		if ((${failing:-0} > 0)); then
			failed=$((failed + failing))
			failures+=("$cfg: $name: $failing of $tested test(s) failed")
		fi
	fi
	# A sanitizer report or a bad exit with no failing test is still a failure
	# (e.g. a leak found at exit, an abort in the runner, a timeout).
	if ((rc != 0)) && [[ -z "$syn" || ${failing:-0} -eq 0 ]]; then
		note_fail "$cfg: $name exited $rc$( ((rc == 124)) && echo ' (timeout)')"
	elif grep -aq -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$log" &&
		[[ ${failing:-0} -eq 0 ]]; then
		note_fail "$cfg: $name: sanitizer report"
	fi
	if ((rc != 0)) || grep -aq -e 'Sanitizer' -e 'runtime error:' "$log"; then
		cat "$log"
	else
		echo "$syn"
	fi
	rm -f "$log"
}

run_config() {
	local cfg=$1 build cmake_args=() bin xml rc counts
	case "$cfg" in
	normal)
		build=$ROOT/build
		cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMCFS_SANITIZE=OFF)
		unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
		;;
	asan)
		build=$ROOT/build-asan
		cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DMCFS_SANITIZE=ON)
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:disable_coredump=1
		export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
		;;
	*)
		note_fail "unknown configuration '$cfg' in MCFS_TEST_CONFIGS"
		return
		;;
	esac

	section "$cfg: configure ($build)"
	if ! cmake -S . -B "$build" "${cmake_args[@]}"; then
		note_fail "$cfg: cmake configure"
		return
	fi
	section "$cfg: build"
	if ! cmake --build "$build" -j "$JOBS"; then
		note_fail "$cfg: build"
		return
	fi
	passed=$((passed + 1)) # the build itself

	section "$cfg: unit tests"
	local found=0
	for bin in "$build"/tests/test_*; do
		[[ -f "$bin" && -x "$bin" ]] || continue
		found=1
		run_unit "$cfg" "$bin"
	done
	((found)) || echo "(no unit test binaries in $build/tests)"

	section "$cfg: integration tests"
	xml=$build/pytest-junit.xml
	rm -f "$xml"
	# shellcheck disable=SC2086 # MCFS_PYTEST_ARGS is split on purpose
	MCFS_BUILD=$build timeout --kill-after=30 "$IT_TIMEOUT" \
		"$PY" -m pytest -q -p no:cacheprovider --junitxml="$xml" tests/integration ${MCFS_PYTEST_ARGS:-}
	rc=$?
	if [[ -s "$xml" ]]; then
		counts=$("$PY" - "$xml" <<'PYEOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for su in suites:
    t += int(su.get("tests", 0))
    f += int(su.get("failures", 0))
    e += int(su.get("errors", 0))
    s += int(su.get("skipped", 0))
print(t - f - e - s, f + e, s)
PYEOF
		)
		read -r p f s <<<"$counts"
		passed=$((passed + p))
		skipped=$((skipped + s))
		if ((f > 0)); then
			failed=$((failed + f))
			failures+=("$cfg: integration: $f test(s) failed or errored")
		fi
		if ((rc != 0 && f == 0)); then
			note_fail "$cfg: pytest exited $rc$( ((rc == 124)) && echo ' (timeout)')"
		fi
	else
		note_fail "$cfg: pytest produced no report (exit $rc)"
	fi
}

start=$SECONDS
for cfg in $CONFIGS; do
	run_config "$cfg"
done

section "summary ($((SECONDS - start))s)"
for f in "${failures[@]+"${failures[@]}"}"; do
	echo "  failed: $f"
done
((skipped == 0)) || echo "  skipped: $skipped integration test(s)"
echo "test.sh: $passed passed, $failed failed"
((failed == 0))
