#!/usr/bin/env bash
# Read-only delegations and sticky records on a 3-node cluster, ours and
# Debian's side by side.
#
#   compat-tests/ctdb/readonly.sh
#
# Starts a 3-node cluster of Debian's ctdbd (127.0.19.11-13) and then one of
# ours (127.0.19.1-3) with scripts/cluster.sh (node 0 the leader, vnn map
# [0, 1, 2]; HopcountMakeSticky=1, StickyPindown=3000) and runs the same
# steps on each:
#  - read-only: `setdbreadonly` on every node; node 1 writes a record whose
#    lmaster is node 0; nodes 2 and 0 ask for a read-only copy as Samba's
#    ctdb_fetch_lock(readonly) does (readonly.py: REQ_CALL with
#    WANT_READONLY): the record stays on node 1 with HAVE_DELEGATIONS, the
#    readers store it with HAVE_READONLY; node 2 then writes it (its
#    dmaster revokes both copies with UPDATE_RECORD, then migrates it); a
#    copy is delegated again from node 2 and revoked by node 1's read.
#    `ctdb cattdb` on every node after each step (rsn, dmaster, flags),
#    the read-only counters of `ctdb statistics` and `dbstatistics`.
#  - sticky: `setdbsticky`; a record of lmaster 0 written on node 1 and read
#    on node 2 (a redirected call, hop count 1: node 1 makes it sticky) and
#    back on node 1: pinned down there for 3 s, so node 2's next read waits
#    (timed: "pinned" when it took over 1.5 s), while node 1's read back
#    from node 2 (not sticky there) does not; the daemons' log lines about
#    it are compared.
# Each step's output must be identical between the two clusters.  Then the
# same on mixed clusters (READONLY_MIXED, default "debian,OURS,debian
# OURS,debian,OURS": node kinds by pnn), each compared with Debian's.
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
RUN=$(new_run_dir ctdb-readonly)
RO=ro.tdb
ST=sticky.tdb
RKEY=$(python3 "$HERE/readonly.py" key 0 3 ro)
SKEY=$(python3 "$HERE/readonly.py" key 0 3 sticky)

cleanup() {
	stop_clusters_under "$RUN"
	remove_run
}
trap cleanup EXIT

# Steps: "NODE TOOL-ARGS..." runs Debian's ctdb tool on NODE; "NODE ro"
# asks NODE for a read-only copy of RKEY; "0 pause" waits 1.2 s, so that the
# hot-key counts (migrations within one second) do not depend on timing.
# After each, cattdb on every node.
STEPS=(
	"0 attach $RO"
	"0 setdbreadonly $RO"
	"1 setdbreadonly $RO"
	"2 setdbreadonly $RO"
	"0 getdbmap"
	"1 writekey $RO $RKEY value1"
	"2 ro"
	"0 ro"
	"2 writekey $RO $RKEY value2"
	"0 ro"
	"0 pause"
	"1 readkey $RO $RKEY"
)

# step DIR NODE ARGS...: one step's output and exit code.
step() {
	local dir=$1 node=$2 id
	shift 2
	if [ "$1" = pause ]; then
		sleep 1.2
	elif [ "$1" = ro ]; then
		id=$(bash "$CLUSTER" ctdb "$dir" "$node" getdbstatus "$RO" | sed -n 's/^dbid: //p')
		timeout 30 python3 "$HERE/readonly.py" fetch "$dir/node$node/run/ctdbd.socket" "$id" "$RKEY" 2>&1
	else
		bash "$CLUSTER" ctdb "$dir" "$node" "$@" 2>&1
	fi | sed "s#$dir/#DIR/#g"
	echo "rc=${PIPESTATUS[0]}"
}

# timed DIR NODE: reads SKEY on NODE; "pinned" when that took over 1.5 s.
timed() {
	local t0 t1 ms
	t0=$(date +%s%N)
	bash "$CLUSTER" ctdb "$1" "$2" readkey "$ST" "$SKEY" >/dev/null 2>&1
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	if [ "$ms" -gt 1500 ]; then echo "node $2 read: pinned"; else echo "node $2 read: not pinned"; fi
	echo "node $2 read took $ms ms" >&2
}

# sticky DIR: the sticky-record steps; the log lines of node 1.
sticky() {
	local dir=$1 k
	bash "$CLUSTER" ctdb "$dir" 0 attach "$ST" >/dev/null
	for k in 0 1 2; do bash "$CLUSTER" ctdb "$dir" "$k" setdbsticky "$ST"; done
	bash "$CLUSTER" ctdb "$dir" 0 getdbmap | grep "$ST" | sed "s#$dir/#DIR/#g"
	bash "$CLUSTER" ctdb "$dir" 1 writekey "$ST" "$SKEY" v1
	bash "$CLUSTER" ctdb "$dir" 2 readkey "$ST" "$SKEY"
	bash "$CLUSTER" ctdb "$dir" 1 readkey "$ST" "$SKEY"
	timed "$dir" 2
	sleep 3
	timed "$dir" 1
	for k in 0 1 2; do
		echo "node $k log:"
		grep -oE "Make record sticky for [0-9]+ seconds in db $ST|Pinning down record in $ST for [0-9]+ ms|Defer request for pinned down record in $ST|Pindown timeout db:$ST  unstick record" \
			"$dir/node$k/log.ctdb" | sort | uniq -c
	done
}

# run_steps KIND DIR ADDR: starts the cluster and writes one output file per
# step (and per node for cattdb) under DIR/out.
run_steps() {
	local kind=$1 dir=$2 addr=$3 i=0 s k
	mkdir -p "$dir/out"
	cluster_up "$(basename "$dir")" "$dir" "$dir/out/cluster" 3 "$addr" "$kind" HopcountMakeSticky=1 StickyPindown=3000 ||
		return 1
	pass "$(basename "$dir"): cluster healthy"
	for s in "${STEPS[@]}"; do
		i=$((i + 1))
		# shellcheck disable=SC2086
		step "$dir" $s >"$dir/out/$i.step"
		cattdb_each "$dir" "$RO" "$dir/out/$i.cattdb"
	done
	for k in 0 1 2; do
		bash "$CLUSTER" ctdb "$dir" "$k" statistics | grep -E "total_ro_(delegations|revokes)" >"$dir/out/statistics.$k"
		tool_rc "$dir" "$k" dbstatistics "$RO" | mask_latencies >"$dir/out/dbstatistics.$k"
	done
	sticky "$dir" >"$dir/out/sticky" 2>"$dir/out/sticky.times"
	bash "$CLUSTER" stop "$dir" >/dev/null 2>&1
}

need_daemons "$OURS" "$DEBIAN_CTDBD"
run_steps debian "$RUN/debian" 127.0.19.11 || finish
run_steps "$OURS" "$RUN/ours" 127.0.19.1 || finish

# compare LABEL DIR: DIR's outputs against Debian's cluster.
compare() {
	local label=$1 dir=$2 k f d
	compare_steps "$label: " "" "$RUN/debian" "$dir"
	for k in 0 1 2; do
		for f in statistics dbstatistics; do
			same_files "$label: $f on node $k" "$RUN/debian/out/$f.$k" "$dir/out/$f.$k"
		done
	done
	if d=$(diff "$RUN/debian/out/sticky" "$dir/out/sticky"); then
		pass "$label: sticky record pinned down after it returns"
	else
		fail "$label: sticky record pinned down after it returns" "$d
debian: $(cat "$RUN/debian/out/sticky.times")
$label: $(cat "$dir/out/sticky.times")"
	fi
}

compare ours "$RUN/ours"
# The read-only scenario did delegate and revoke (not only agree).
if grep -q "total_ro_revokes *[1-9]" "$RUN/ours/out/statistics.1" &&
	grep -q "total_ro_delegations *[1-9]" "$RUN/ours/out/statistics.1"; then
	pass "ours: node 1 delegated and revoked"
else
	fail "ours: node 1 delegated and revoked" "$(cat "$RUN/ours/out/statistics.1")"
fi
if grep -q "node 2 read: pinned" "$RUN/ours/out/sticky"; then
	pass "ours: the pinned record made node 2 wait"
else
	fail "ours: the pinned record made node 2 wait" "$(cat "$RUN/ours/out/sticky")"
fi
# Mixed clusters: the same steps with our daemon on some nodes and
# Debian's on the others, compared with Debian's cluster.
m=0
for spec in ${READONLY_MIXED-debian,OURS,debian OURS,debian,OURS}; do
	m=$((m + 1))
	run_steps "${spec//OURS/$OURS}" "$RUN/mixed$m" 127.0.19.1 || continue
	compare "mixed ${spec//OURS/ours}" "$RUN/mixed$m"
done
finish
