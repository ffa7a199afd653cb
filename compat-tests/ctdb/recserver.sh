#!/usr/bin/env bash
# The recovery controls between nodes: a 2-node cluster of Debian's ctdbd
# (RECSERVER_NET.11-12, default 127.0.13) and one of ours (.1-2), the same
# steps on each.  Once both nodes of a cluster see each other,
# RecoverInterval is raised so that Debian's recovery daemon starts no
# recovery of its own; then `rawclient.py remote 1` on node 0 sends the
# controls of a recovery run to node 1 through node 0's daemon: recmode,
# vnnmap, START_RECOVERY (node 1 asks node 0 for its cluster lock setting),
# freeze and recovery transaction, a push of records from node 0 (the
# buffers as REQ_MESSAGEs to node 1), DB_PULL streaming them back to the
# client on node 0, seqnums, commit, thaw, NORMAL, END_RECOVERY,
# MODIFY_FLAGS.  The two transcripts must be the same.
#   flock /work/ctdb-compat.lock bash compat-tests/ctdb/recserver.sh
# Prints PASS/FAIL lines and "N passed, M failed" last.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"
CTDB=${CTDB:-/usr/bin/ctdb}
DEBIAN_CTDBD=${DEBIAN_CTDBD:-/usr/sbin/ctdbd}
NET=${RECSERVER_NET:-127.0.13}
PY=/usr/bin/python3
if [ -z "${CTDBD_BIN:-}" ]; then
	case $BUILT in /*) ;; *) BUILT=$ROOT/$BUILT ;; esac
	CTDBD_BIN=$BUILT/ctdbd
fi

DIR=$(mktemp -d /tmp/recserver.XXXXXX)
STARTED_PIDS=()
cleanup() {
	local p
	for p in "${STARTED_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${STARTED_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	if [ "$FAILED" = 0 ]; then rm -rf "$DIR"; else echo "    (logs kept in $DIR)"; fi
}
trap cleanup EXIT

make_base() { # make_base DIR ADDRESS ALL-ADDRESSES...
	local b=$1 addr=$2
	shift 2
	ctdb_base "$b" "$addr"
	printf '%s\n' "$@" >"$b/nodes"
	echo "VacuumInterval=600" >"$b/ctdb.tunables"
}

tool() { # tool BASE ARGS...
	local b=$1
	shift
	CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 20 "$CTDB" "$@"
}

# cluster KIND BIN FIRST-HOST: two nodes, then the probe; the transcript in
# $DIR/KIND.out.
cluster() {
	local kind=$1 bin=$2 h=$3 b0 b1 i
	b0=$DIR/$kind/node0
	b1=$DIR/$kind/node1
	make_base "$b0" "$NET.$h" "$NET.$h" "$NET.$((h + 1))"
	make_base "$b1" "$NET.$((h + 1))" "$NET.$h" "$NET.$((h + 1))"
	start_daemon "$bin" "$b0" && start_daemon "$bin" "$b1" || { fail "$kind: nodes start" "$(cat "$b0/start.out" "$b1/start.out" 2>/dev/null)"; return 1; }
	for i in $(seq 120); do
		if tool "$b0" ping -n 1 >/dev/null 2>&1 && tool "$b1" ping -n 0 >/dev/null 2>&1 &&
			tool "$b0" runstate RUNNING >/dev/null 2>&1 && tool "$b1" runstate RUNNING >/dev/null 2>&1 &&
			tool "$b0" status 2>/dev/null | grep -q "Recovery mode:NORMAL"; then
			break
		fi
		sleep 0.5
	done
	[ "$i" -lt 120 ] || { fail "$kind: nodes connect" "$(tail -5 "$b0/log.ctdb" "$b1/log.ctdb")"; return 1; }
	pass "$kind: nodes connect"
	tool "$b0" setvar RecoverInterval 600 >/dev/null
	tool "$b1" setvar RecoverInterval 600 >/dev/null
	sleep 2
	{ timeout 60 $PY "$HERE/rawclient.py" "$b0/run/ctdbd.socket" remote 1 2>&1; echo "rc=$?"; } >"$DIR/$kind.out"
	if grep -q '^rc=0$' "$DIR/$kind.out" && grep -q '^set_recmode normal: 0$' "$DIR/$kind.out"; then
		pass "$kind: recovery controls to node 1"
	else
		fail "$kind: recovery controls to node 1" "$(cat "$DIR/$kind.out")"
	fi
}

[ -x "$CTDBD_BIN" ] || fail "build: no binary at $CTDBD_BIN (run make build first)"
have_deb=false
if [ -x "$DEBIAN_CTDBD" ]; then cluster debian "$DEBIAN_CTDBD" 11 && have_deb=true
else fail "debian: $DEBIAN_CTDBD not installed"; fi
have_our=false
[ -x "$CTDBD_BIN" ] && cluster ours "$CTDBD_BIN" 1 && have_our=true
if $have_deb && $have_our; then
	if d=$(diff -u "$DIR/debian.out" "$DIR/ours.out"); then pass "compare: recovery controls to node 1"
	else fail "compare: recovery controls to node 1" "$d"; fi
else
	fail "compare: recovery controls to node 1 (a cluster did not run)"
fi
echo "$PASSED passed, $FAILED failed"
