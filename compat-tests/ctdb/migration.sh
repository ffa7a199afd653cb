#!/usr/bin/env bash
# Record migration on a 3-node cluster, ours and Debian's side by side.
#
#   compat-tests/ctdb/migration.sh
#
# Starts a 3-node cluster of Debian's ctdbd (127.0.14.11-13) and then one of
# ours (127.0.14.1-3) with scripts/cluster.sh, and runs the same steps with
# Debian's ctdb tool on each: attach a volatile database, `writekey` on one
# node, `readkey` on the others in an order that takes every migration path
# (the lmaster handing over its own record, a dmaster that is not the
# lmaster going through REQ_DMASTER, the lmaster taking a record back, a
# stale copy redirected to the lmaster), with `ctdb cattdb` on every node
# after each step (dmaster, rsn and flags of every copy).  Each step's
# output must be identical between the two clusters; `dbstatistics` is
# compared with its latencies masked (hop counts and hot keys stay).
#
# Environment: CTDBD_BIN (our daemon, default the release build in
# OURS_LIBDIR or target/release), DEBIAN_CTDBD (default /usr/sbin/ctdbd),
# COMPAT_KEEP=1 keeps the run directory.  Every daemon is started and
# stopped by scripts/cluster.sh, by pid.  Prints PASS/FAIL lines and ends
# with "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLUSTER=${CLUSTER_SH:-$ROOT/scripts/cluster.sh}
DEBIAN_CTDBD=${DEBIAN_CTDBD:-/usr/sbin/ctdbd}
BUILT=${OURS_LIBDIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
OURS=${CTDBD_BIN:-$BUILT/ctdbd}
RUN=$(mktemp -d "${TMPDIR:-/tmp}/ctdb-migration.XXXXXX")
PASSED=0
FAILED=0
DB=migrate.tdb

cleanup() {
	local c
	for c in "$RUN/debian" "$RUN/ours"; do
		[ -e "$c/nodes" ] && bash "$CLUSTER" stop "$c" >/dev/null 2>&1
	done
	if [ -z "${COMPAT_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT
pass() {
	echo "PASS $1"
	PASSED=$((PASSED + 1))
}
fail() {
	echo "FAIL $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/    /' | head -40
	FAILED=$((FAILED + 1))
}
finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# The steps: "NODE TOOL-ARGS..." lines; after each one that changes records,
# cattdb on every node.
STEPS=(
	"0 attach $DB"
	"0 writekey $DB key1 value1"
	"1 readkey $DB key1"
	"2 readkey $DB key1"
	"0 readkey $DB key1"
	"1 readkey $DB key1"
	"2 writekey $DB key2 two"
	"2 writekey $DB key3 three"
	"2 writekey $DB key4 four"
	"0 readkey $DB key2"
	"1 readkey $DB key3"
	"0 readkey $DB key4"
	"1 readkey $DB key4"
	"1 readkey $DB nosuchkey"
	"2 readkey $DB nosuchkey"
)

# Latencies and clock times vary; hop counts and hot keys must not.
mask() {
	sed -E -e 's#MIN/AVG/MAX +[0-9.]+/[0-9.]+/[0-9.]+ sec#MIN/AVG/MAX T/T/T sec#' \
		-e 's/^( +[a-z_]+latency +)[0-9.]+ sec/\1T sec/'
}

# run_steps KIND DIR ADDR: starts the cluster and writes one output file per
# step (and per node for cattdb) under DIR/out.
run_steps() {
	local kind=$1 dir=$2 addr=$3 i=0 s k node
	mkdir -p "$dir/out"
	if ! bash "$CLUSTER" start "$dir" 3 "$addr" "$kind" >"$dir/out/start" 2>&1; then
		fail "$(basename "$dir"): cluster start" "$(cat "$dir/out/start")"
		return 1
	fi
	if ! bash "$CLUSTER" wait "$dir" 90 >"$dir/out/wait" 2>&1; then
		fail "$(basename "$dir"): cluster healthy" "$(tail -n 30 "$dir/out/wait")"
		return 1
	fi
	pass "$(basename "$dir"): cluster healthy"
	for s in "${STEPS[@]}"; do
		i=$((i + 1))
		node=${s%% *}
		# shellcheck disable=SC2086
		{ bash "$CLUSTER" ctdb "$dir" "$node" ${s#* } 2>&1; echo "rc=$?"; } >"$dir/out/$i.step"
		for k in 0 1 2; do
			{ bash "$CLUSTER" ctdb "$dir" "$k" cattdb "$DB" 2>&1; echo "rc=$?"; } >"$dir/out/$i.cattdb.$k"
		done
	done
	for k in 0 1 2; do
		{ bash "$CLUSTER" ctdb "$dir" "$k" dbstatistics "$DB" 2>&1; echo "rc=$?"; } | mask >"$dir/out/dbstatistics.$k"
	done
	bash "$CLUSTER" stop "$dir" >/dev/null 2>&1
}

if [ ! -x "$OURS" ]; then
	fail "our ctdbd at $OURS (run make build)"
	finish
fi
if [ ! -x "$DEBIAN_CTDBD" ]; then
	fail "Debian's ctdbd at $DEBIAN_CTDBD (scripts/deps.sh)"
	finish
fi
run_steps debian "$RUN/debian" 127.0.14.11 || finish
run_steps "$OURS" "$RUN/ours" 127.0.14.1 || finish

i=0
for s in "${STEPS[@]}"; do
	i=$((i + 1))
	name="step $i: node ${s%% *}: ctdb ${s#* }"
	if d=$(diff "$RUN/debian/out/$i.step" "$RUN/ours/out/$i.step"); then
		pass "$name"
	else
		fail "$name" "$d"
	fi
	for k in 0 1 2; do
		if d=$(diff "$RUN/debian/out/$i.cattdb.$k" "$RUN/ours/out/$i.cattdb.$k"); then
			pass "$name: cattdb on node $k"
		else
			fail "$name: cattdb on node $k" "$d"
		fi
	done
done
for k in 0 1 2; do
	if d=$(diff "$RUN/debian/out/dbstatistics.$k" "$RUN/ours/out/dbstatistics.$k"); then
		pass "dbstatistics on node $k"
	else
		fail "dbstatistics on node $k" "$d"
	fi
done
finish
