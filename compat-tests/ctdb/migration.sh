#!/usr/bin/env bash
# Record migration on a 3-node cluster, ours and Debian's side by side.
#
#   compat-tests/ctdb/migration.sh
#
# Starts a 3-node cluster of Debian's ctdbd (127.0.14.11-13) and then one of
# ours (127.0.14.1-3) with scripts/cluster.sh (node 0 the leader, so that
# recoveries break rsn ties alike), and runs the same steps with
# Debian's ctdb tool on each: attach a volatile database, `writekey` on one
# node, `readkey` on the others in an order that takes every migration path
# (the lmaster handing over its own record, a dmaster that is not the
# lmaster going through REQ_DMASTER, the lmaster taking a record back, a
# stale copy redirected to the lmaster), with `ctdb cattdb` on every node
# after each step (dmaster, rsn and flags of every copy).  Each step's
# output must be identical between the two clusters; `dbstatistics` is
# compared with its latencies masked (hop counts and hot keys stay).  Then
# three clients of node 1 ask at once for a record held on node 2
# (collapse.py): one REQ_CALL between the nodes, the same record copies.
# Last, node 2 stops answering (SIGSTOP) while node 1's client waits for a
# record it holds: after the recovery the call goes again and is answered.
#
# Environment: CTDBD_BIN (our daemon, default the release build in
# OURS_LIBDIR or target/release), DEBIAN_CTDBD (default /usr/sbin/ctdbd),
# COMPAT_KEEP=1 keeps the run directory.  Every daemon is started and
# stopped by scripts/cluster.sh, by pid.  Prints PASS/FAIL lines and ends
# with "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"
DEBIAN_CTDBD=${DEBIAN_CTDBD:-/usr/sbin/ctdbd}
OURS=${CTDBD_BIN:-$BUILT/ctdbd}
RUN=$(new_run_dir ctdb-migration)
DB=migrate.tdb

cleanup() {
	stop_clusters_under "$RUN"
	remove_run
}
trap cleanup EXIT

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

# run_steps KIND DIR ADDR: starts the cluster and writes one output file per
# step (and per node for cattdb) under DIR/out.
run_steps() {
	local kind=$1 dir=$2 addr=$3 i=0 s k node
	mkdir -p "$dir/out"
	cluster_up "$(basename "$dir")" "$dir" "$dir/out/cluster" 3 "$addr" "$kind" || return 1
	pass "$(basename "$dir"): cluster healthy"
	for s in "${STEPS[@]}"; do
		i=$((i + 1))
		node=${s%% *}
		# shellcheck disable=SC2086
		tool_rc "$dir" "$node" ${s#* } >"$dir/out/$i.step"
		cattdb_each "$dir" "$DB" "$dir/out/$i.cattdb"
	done
	for k in 0 1 2; do
		tool_rc "$dir" "$k" dbstatistics "$DB" | mask_latencies >"$dir/out/dbstatistics.$k"
	done
	collapse "$dir" >"$dir/out/collapse" 2>&1
	resend "$dir" >"$dir/out/resend" 2>&1
	bash "$CLUSTER" stop "$dir" >/dev/null 2>&1
}

# resend DIR: node 2, which holds the record, stops answering (SIGSTOP)
# while node 1's client waits for it; once node 2 is disconnected and the
# cluster has recovered without it, node 1 sends the call again and the
# client gets the record as the recovery left it (its only copy was on
# node 2, so empty).  When node 2 returns, the recovery finds its copy and
# node 1's empty one with the same rsn: the leader keeps the one it pulled
# first (Samba's rule), node 1's, and drops it as empty.
resend() {
	local dir=$1 pid
	bash "$CLUSTER" ctdb "$dir" 2 writekey "$DB" lonely v
	pid=$(bash "$CLUSTER" pid "$dir" 2)
	kill -STOP "$pid"
	timeout 60 bash "$CLUSTER" ctdb "$dir" 1 readkey "$DB" lonely
	echo "rc=$?"
	kill -CONT "$pid"
	bash "$CLUSTER" wait "$dir" 90 >/dev/null
	echo "healthy again: rc=$?"
	bash "$CLUSTER" ctdb "$dir" 1 cattdb "$DB" | grep -A4 lonely
}

# node_req_calls DIR: REQ_CALLs received from other nodes, summed over the
# cluster (`ctdb statistics`, node section).
node_req_calls() {
	local k n t=0
	for k in 0 1 2; do
		n=$(bash "$CLUSTER" ctdb "$1" "$k" statistics | awk '/^ node$/ { f = 1 } f && /req_call/ { print $2; exit }')
		t=$((t + ${n:-0}))
	done
	echo "$t"
}

# collapse DIR: three clients of node 1 ask at once for a record written on
# node 2 (its lmaster): one migration, so one REQ_CALL between the nodes.
collapse() {
	local dir=$1 id before after
	bash "$CLUSTER" ctdb "$dir" 2 writekey "$DB" collapse v
	id=$(bash "$CLUSTER" ctdb "$dir" 1 getdbstatus "$DB" | sed -n 's/^dbid: //p')
	before=$(node_req_calls "$dir")
	timeout 60 python3 "$HERE/collapse.py" "$dir/node1/run/ctdbd.socket" "$id" collapse 3
	echo "rc=$?"
	after=$(node_req_calls "$dir")
	echo "REQ_CALLs between the nodes: $((after - before))"
	bash "$CLUSTER" ctdb "$dir" 1 cattdb "$DB"
}

need_daemons "$OURS" "$DEBIAN_CTDBD"
run_steps debian "$RUN/debian" 127.0.14.11 || finish
run_steps "$OURS" "$RUN/ours" 127.0.14.1 || finish

compare_steps "" "ctdb " "$RUN/debian" "$RUN/ours"
same_files "three clients of one node fetch one record at once" "$RUN/debian/out/collapse" "$RUN/ours/out/collapse"
if grep -qx "REQ_CALLs between the nodes: 1" "$RUN/ours/out/collapse"; then
	pass "ours: one migration for the three fetches"
else
	fail "ours: one migration for the three fetches" "$(cat "$RUN/ours/out/collapse")"
fi
same_files "a call to a node that stops answering is sent again after the recovery" \
	"$RUN/debian/out/resend" "$RUN/ours/out/resend"
for k in 0 1 2; do
	same_files "dbstatistics on node $k" "$RUN/debian/out/dbstatistics.$k" "$RUN/ours/out/dbstatistics.$k"
done
finish
