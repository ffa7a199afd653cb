#!/usr/bin/env bash
# The leader yields without a cluster lock: a 3-node cluster of Debian's
# ctdbd (127.0.22.11-13) and one of ours (127.0.22.1-3), both laid out by
# scripts/cluster.sh with CLUSTER_LOCK=none, node 0 leading first. On each:
# the leader is stopped (`ctdb stop`), loses its leader role
# (`setleaderrole off`) and is banned (`ban`), in turn; after each step the
# other nodes must agree on a new leader that is not that node, and after
# it is undone (`continue`, `setleaderrole on`, `unban`) every node is OK
# again with one leader. `ctdb getreclock` prints nothing on either kind.
# Which node wins each election is compared between the two kinds too.
# Prints PASS/FAIL lines and "N passed, M failed" last.
#   bash compat-tests/ctdb/leader-nolock.sh
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"
if [ -z "${CTDBD_BIN:-}" ]; then
	case $BUILT in /*) ;; *) BUILT=$ROOT/$BUILT ;; esac
	CTDBD_BIN=$BUILT/ctdbd
fi
NET=${NOLOCK_NET:-127.0.22}

RUN=$(mktemp -d /tmp/leader-nolock.XXXXXX)
cleanup() {
	local d
	for d in "$RUN"/debian "$RUN"/ours; do
		[ -e "$d/nodes" ] && bash "$CLUSTER" stop "$d" >/dev/null 2>&1
	done
	if [ "$FAILED" = 0 ]; then rm -rf "$RUN"; else echo "    (logs kept in $RUN)"; fi
}
trap cleanup EXIT

cl() { bash "$CLUSTER" "$@"; }

# leaders DIR: the leader each node names, "K:L" per node.
leaders() {
	local k out=()
	for k in 0 1 2; do out+=("$k:$(cl ctdb "$1" "$k" leader 2>/dev/null)"); done
	echo "${out[*]}"
}

# new_leader DIR NODE: waits (20 s at most) until every node names the same
# leader and it is not NODE; prints it, or nothing.
new_leader() {
	local i l k same
	for i in $(seq 100); do
		l=$(cl ctdb "$1" 0 leader 2>/dev/null)
		same=1
		for k in 1 2; do [ "$(cl ctdb "$1" "$k" leader 2>/dev/null)" = "$l" ] || same=0; done
		if [ "$same" = 1 ] && [ -n "$l" ] && [ "$l" != "$2" ]; then
			echo "$l"
			return
		fi
		sleep 0.2
	done
}

# step KIND DIR NAME DO UNDO: runs DO against the current leader, checks a
# new leader, runs UNDO, waits until the cluster is whole again; records the
# new leader in RUN/KIND.steps.
step() {
	local kind=$1 dir=$2 name=$3 do=$4 undo=$5 l n
	l=$(cl leader "$dir")
	# shellcheck disable=SC2086
	cl ctdb "$dir" "$l" $do >/dev/null 2>&1
	n=$(new_leader "$dir" "$l")
	if [ -n "$n" ]; then
		pass "$kind: $name the leader (node $l) without a cluster lock: the others agree on node $n"
	else
		fail "$kind: $name the leader (node $l): no new leader" "$(leaders "$dir")"
	fi
	echo "$name $l -> $n" >>"$RUN/$kind.steps"
	# shellcheck disable=SC2086
	cl ctdb "$dir" "$l" $undo >/dev/null 2>&1
	if cl wait "$dir" 60 >"$RUN/$kind.wait" 2>&1; then
		pass "$kind: after $undo every node is OK with one leader"
	else
		fail "$kind: after $undo" "$(tail -n 20 "$RUN/$kind.wait")"
	fi
}

one_kind() { # one_kind KIND DAEMON ADDR
	local kind=$1 dir=$RUN/$1 out
	if ! CLUSTER_LOCK=none cl start --leader-first "$dir" 3 "$3" "$2" >"$RUN/$kind.start" 2>&1 ||
		! cl wait "$dir" 60 >"$RUN/$kind.wait" 2>&1; then
		fail "$kind: 3 nodes without a cluster lock start" "$(cat "$RUN/$kind.start" "$RUN/$kind.wait")"
		return
	fi
	pass "$kind: 3 nodes without a cluster lock are OK with one leader"
	out=$(cl ctdb "$dir" 1 getreclock 2>&1)
	[ -z "$out" ] && pass "$kind: getreclock prints nothing" || fail "$kind: getreclock" "$out"
	step "$kind" "$dir" stop stop continue
	step "$kind" "$dir" "setleaderrole off" "setleaderrole off" "setleaderrole on"
	step "$kind" "$dir" ban "ban 60" unban
	cl stop "$dir" >/dev/null 2>&1
}

[ -x "$CTDBD_BIN" ] || { fail "build: no binary at $CTDBD_BIN"; finish; }
one_kind debian debian "$NET.11"
one_kind ours "$CTDBD_BIN" "$NET.1"
if [ -s "$RUN/debian.steps" ] && [ -s "$RUN/ours.steps" ]; then
	if diff -u "$RUN/debian.steps" "$RUN/ours.steps" >"$RUN/steps.diff"; then
		pass "the same nodes win the elections on both kinds: $(paste -sd';' "$RUN/ours.steps")"
	else
		fail "the elections' winners differ" "$(cat "$RUN/steps.diff")"
	fi
fi
finish
