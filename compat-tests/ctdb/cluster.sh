#!/usr/bin/env bash
# The 3-node comparison suite (issue 12, item 8): Debian's ctdb tool against a
# 3-node cluster of Debian's ctdbd and a 3-node cluster of ours, both laid out
# by scripts/cluster.sh the same way and driven through the same sequence of
# commands at the same time; outputs are compared step by step.
#
#   flock /work/ctdb-compat.lock bash compat-tests/ctdb/cluster.sh [FILTER]
#
# FILTER reports only the steps whose name contains it (every step still runs:
# later steps depend on earlier ones).  Debian's 4.17 tool has no "-n all", so
# "ping -n all" is `ctdb -n K ping` for every K, sent to node 1.
#
# Environment:
#   KIND=both|debian|ours  which clusters run (default both; with one kind the
#                     per-cluster checks run and the outputs are only recorded)
#   CTDBD_BIN         our ctdbd (default: $OURS_LIBDIR/ctdbd, the release build)
#   OURS_LIBDIR       make's $(BUILT) (default $CARGO_TARGET_DIR/release or
#                     <repo>/target/release)
#   DEBIAN_ADDR, OURS_ADDR  first node address of each cluster (default
#                     127.0.16.11 and 127.0.16.1; nodes take the next two too)
#   COMPAT_KEEP=1     keep the temporary directory (logs of every node)
#
# CTDBD_BIN=/usr/sbin/ctdbd runs Debian's daemon in both places: every step
# must then pass (a check of the masks and of the suite's determinism).
#
# What is masked before comparing: the base directory of each cluster, the
# node addresses (each cluster has its own: ADDR0..ADDR2), generations, ping
# times and client counts, backup time stamps, and the order of records in
# catdb/cattdb listings (a cluster-wide traverse returns them in arrival
# order), and the order of the last getdbmap listings (after two restarts;
# see phase_faults).  Nothing else.
#
# Steps that compare print "PASS name" or "FAIL name: ours differs from
# debian" with the diff (< debian, > ours); checks of one cluster's behaviour
# (leader agreed on every node, generation changed, no acknowledged commit
# lost, ...) print "FAIL name (ours: why)" or "(debian: why)".  Ends with
# "N passed, M failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"
FILTER=${1:-}
KIND=${KIND:-both}
DEBIAN_ADDR=${DEBIAN_ADDR:-127.0.16.11}
OURS_ADDR=${OURS_ADDR:-127.0.16.1}
export CLUSTER_TOOL_TIMEOUT=${CLUSTER_TOOL_TIMEOUT:-15}

RUN=$(new_run_dir ctdb-cluster)
SIDE_PIDS=()

cleanup() {
	local p
	for p in "${SIDE_PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null
	done
	stop_clusters_under "$RUN"
	remove_run
}
trap cleanup EXIT

case $KIND in
both) SIDES="debian ours" ;;
debian | ours) SIDES=$KIND ;;
*)
	fail setup "KIND must be both, debian or ours, not $KIND"
	finish
	;;
esac
if [[ " $SIDES " == *" ours "* ]] && [ -z "${CTDBD_BIN:-}" ]; then
	case $BUILT in /*) ;; *) BUILT=$ROOT/$BUILT ;; esac
	CTDBD_BIN=$BUILT/ctdbd
fi
if [[ " $SIDES " == *" ours "* ]] && [ ! -x "$CTDBD_BIN" ]; then
	fail build "no binary at $CTDBD_BIN (run make build first)"
	finish
fi
[ -x /usr/bin/ctdb ] || { fail setup "Debian's ctdb tool is not installed"; finish; }
[ -x /usr/sbin/ctdbd ] || { fail setup "Debian's ctdbd is not installed"; finish; }

# ---------------------------------------------------------------------------
# One cluster's run.  Everything below up to the comparison runs once per
# cluster, in a background job with SIDE, DIR (the cluster directory) and
# OUT (its step files) set.  Each step leaves OUT/NNN.cmp.NAME (normalised
# output, compared between clusters) or OUT/NNN.check.NAME (PASS or FAIL
# reason: a check of this cluster alone).
# ---------------------------------------------------------------------------
STEP=0
WAIT_BUDGET=60
# Seconds one cluster's sequence may take; steps after that are not run (and
# fail), so that a cluster whose commands hang does not stall the suite.
SIDE_BUDGET=${CLUSTER_SIDE_BUDGET:-400}
SIDE_T0=$SECONDS
over_budget() { [ $((SECONDS - SIDE_T0)) -gt "$SIDE_BUDGET" ]; }

cl() { bash "$CLUSTER" "$@"; }
tool() { # tool NODE ARGS...
	local k=$1
	shift
	cl ctdb "$DIR" "$k" "$@"
}
# new_step KIND NAME: sets STEP_FILE to the next step's file (OUT/NNN) and
# lists it in OUT/index as "NNN KIND NAME" (NAME with DIR/ left out).
new_step() {
	STEP=$((STEP + 1))
	STEP_FILE=$(printf '%s/%03d' "$OUT" "$STEP")
	printf '%03d %s %s\n' "$STEP" "$1" "${2//$DIR\//}" >>"$OUT/index"
}

# fourth_addr: the address a 4th node of this cluster would have (the
# reloadnodes steps add it to the nodes files; nothing runs there).
fourth_addr() {
	local a
	a=$(cl addr "$DIR" 0)
	echo "${a%.*}.$((${a##*.} + 3))"
}

# normalise CMD: masks what legitimately differs (see the header).
normalise() {
	local cmd=$1 k a
	local sedargs=(-e "s#$DIR#BASE#g")
	for k in 0 1 2; do
		a=$(cl addr "$DIR" "$k")
		sedargs+=(-e "s/${a//./\\.}\\b/ADDR$k/g")
	done
	a=$(fourth_addr)
	sedargs+=(-e "s/${a//./\\.}\\b/ADDR3/g")
	# Addresses of different lengths pad status columns differently.
	sedargs+=(-e 's/ADDR\([0-9]\)  */ADDR\1 /g')
	sed "${sedargs[@]}" | case $cmd in
	*status) sed -E -e 's/^Generation:[0-9]+$/Generation:G/' ;;
	ping) sed -E -e 's/time=[0-9.]+ sec/time=T sec/' -e 's/\([0-9]+ clients\)/(N clients)/' ;;
	restoredb | dumpdbbackup) sed -E -e 's#backup @ [0-9/]+ [0-9:]+$#backup @ TIME#' ;;
	catdb | cattdb) sort_records ;;
	*) cat ;;
	esac
}

# sort_records: a catdb/cattdb listing with its records (blank-line separated
# blocks) in sorted order; the "Dumped N record(s)" line last.
sort_records() {
	awk 'BEGIN { RS = "" } /^Dumped / { tail = $0; next } { gsub("\n", "\001"); print | "sort" }
		END { close("sort"); if (tail != "") print tail }' | sed -e 's/\x01/\n/g' -e 's/$/\n/'
}

# run NODE ARGS...: one compared step, ctdb ARGS on node NODE.
run() {
	local k=$1 f out rc cmd
	shift
	cmd=$*
	[ "${cmd#-n }" = "$cmd" ] || cmd=${cmd#-n * }
	cmd=${cmd#-X }
	cmd=${cmd%% *}
	new_step cmp "$* (node $k)"
	f=$STEP_FILE
	if over_budget; then
		echo "not run: the cluster's ${SIDE_BUDGET}s were used up" >"$f"
		return 1
	fi
	out=$(tool "$k" "$@" 2>&1)
	rc=$?
	{
		if [ -n "${UNORDERED:-}" ]; then
			printf '%s\n' "$out" | normalise "$cmd" | sort
		else
			printf '%s\n' "$out" | normalise "$cmd"
		fi
		echo "rc=$rc"
	} >"$f"
	return $rc
}

# check NAME OK-CONDITION-RESULT REASON: one per-cluster check.
check() { # check NAME RC REASON
	new_step check "$1"
	if over_budget; then
		echo "FAIL not run: the cluster's ${SIDE_BUDGET}s were used up" >"$STEP_FILE"
	elif [ "$2" = 0 ]; then echo PASS >"$STEP_FILE"; else echo "FAIL $3" >"$STEP_FILE"; fi
}

# wait_healthy NAME: cluster.sh wait as a check; after a failure the later
# waits get a short budget so a broken cluster does not stall the suite.
wait_healthy() {
	local out rc
	over_budget && WAIT_BUDGET=1
	out=$(cl wait "$DIR" "$WAIT_BUDGET" 2>&1)
	rc=$?
	[ $rc = 0 ] || WAIT_BUDGET=5
	check "$1" $rc "not healthy: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-600)"
}

leader_of() { tool "$1" leader 2>/dev/null | tr -d ' \n'; }

# leaders_agree NAME: `ctdb leader` on every running node names the same
# running node.
leaders_agree() {
	local k l all="" why=""
	for k in 0 1 2; do
		[ -e "$DIR/node$k/down" ] && continue
		l=$(leader_of "$k")
		all="$all node$k:$l"
	done
	l=$(tr ' ' '\n' <<<"$all" | sed -n 's/^node[0-9]://p' | sort -u)
	if [ "$(wc -l <<<"$l")" != 1 ] || [ -z "$l" ]; then why="leaders differ:$all"; fi
	[ -z "$why" ] && [ -e "$DIR/node$l/down" ] && why="leader $l is down:$all"
	check "$1" "$([ -z "$why" ] && echo 0 || echo 1)" "$why"
}

# generation NODE: the generation in `ctdb status` on NODE.
generation() { tool "$1" status 2>/dev/null | sed -n 's/^Generation://p'; }

# new_generation NAME BEFORE: the survivor's generation is no longer BEFORE
# (a recovery ran).  Taken after wait_healthy; the survivor is $s.
new_generation() {
	local now
	now=$(generation "$s")
	check "$1" "$([ -n "$now" ] && [ "$now" != "$2" ] && echo 0 || echo 1)" "generation $2 before, '$now' after"
}

# ---- phase 1: a healthy cluster ----
phase_status() {
	local k
	for k in 0 1 2; do run "$k" status; done
	for k in 0 1 2; do run "$k" nodestatus; done
	for k in 0 1 2; do run "$k" -X nodestatus; done
	run 0 listnodes
	# Controls forwarded to each node (Debian's 4.17 tool has no "-n all").
	for k in 0 1 2; do run 1 -n "$k" ping; done
	run 0 -n 2 nodestatus
	run 2 -n 0 getdbmap
	for k in 0 1 2; do run "$k" leader; done
	leaders_agree "leader agreed on every node"
	run 2 getreclock
	for k in 0 1 2; do run "$k" getcapabilities; done
}

phase_databases() {
	local k
	run 0 attach test_volatile.tdb
	run 1 attach test_persistent.tdb persistent
	run 2 attach test_replicated.tdb replicated
	for k in 0 1 2; do run "$k" getdbmap; done
	for k in 0 1 2; do run "$k" getdbstatus test_volatile.tdb; done
}

# Volatile records: written on node 0, read on 1 then 2; the record's
# migration shows in cattdb (dmaster, RSN) on every node.
phase_migration() {
	local k
	run 0 writekey test_volatile.tdb key1 value1
	for k in 0 1 2; do run "$k" cattdb test_volatile.tdb; done
	run 1 readkey test_volatile.tdb key1
	for k in 0 1 2; do run "$k" cattdb test_volatile.tdb; done
	run 2 readkey test_volatile.tdb key1
	for k in 0 1 2; do run "$k" cattdb test_volatile.tdb; done
	run 1 writekey test_volatile.tdb key1 value1b
	run 2 writekey test_volatile.tdb key2 value2
	run 0 writekey test_volatile.tdb key3 value3
	run 0 readkey test_volatile.tdb key2
	run 2 readkey test_volatile.tdb key1
	for k in 0 1 2; do run "$k" catdb test_volatile.tdb; done
	for k in 0 1 2; do run "$k" cattdb test_volatile.tdb; done
	run 1 deletekey test_volatile.tdb key3
	run 2 catdb test_volatile.tdb
	for k in 0 1 2; do run "$k" getdbseqnum test_volatile.tdb; done
}

# Persistent and replicated databases: each change made on one node, read on
# the others.
phase_persistent() {
	local k
	printf '%s\n' '"k3" "v3"' '"k4" "v 4"' '"k1" "v1c"' >"$DIR/ptrans.in"
	run 0 pstore test_persistent.tdb k1 v1
	run 1 pfetch test_persistent.tdb k1
	run 2 pfetch test_persistent.tdb k1
	run 1 pstore test_persistent.tdb k2 v2
	run 2 ptrans test_persistent.tdb "$DIR/ptrans.in"
	for k in 0 1 2; do run "$k" pfetch test_persistent.tdb k1; done
	run 0 pfetch test_persistent.tdb k4
	run 1 pdelete test_persistent.tdb k2
	run 0 pfetch test_persistent.tdb k2
	for k in 0 1 2; do run "$k" getdbseqnum test_persistent.tdb; done
	for k in 0 1 2; do run "$k" cattdb test_persistent.tdb; done
	run 2 catdb test_persistent.tdb
	run 1 pstore test_replicated.tdb rk rv
	run 0 pfetch test_replicated.tdb rk
	run 2 pfetch test_replicated.tdb rk
	for k in 0 1 2; do run "$k" cattdb test_replicated.tdb; done
	for k in 0 1 2; do run "$k" getdbseqnum test_replicated.tdb; done
	run 0 catdb g_lock.tdb
	# tstore/tfetch work on a tdb file directly (node 1's copy of the
	# persistent database; pfetch on node 1 then reads it locally).
	run 1 tstore "$DIR/node1/db/persistent/test_persistent.tdb.1" tk tv
	run 1 tfetch "$DIR/node1/db/persistent/test_persistent.tdb.1" tk
	run 1 tfetch "$DIR/node1/db/persistent/test_persistent.tdb.1" tk -v
	run 1 pfetch test_persistent.tdb tk
	run 1 pdelete test_persistent.tdb tk
}

# wipedb on one node empties every node's copy; backupdb on node 0,
# restoredb on node 1.
phase_backup() {
	local k
	run 1 wipedb test_volatile.tdb
	for k in 0 1 2; do run "$k" cattdb test_volatile.tdb; done
	run 0 catdb test_volatile.tdb
	run 0 writekey test_volatile.tdb bk1 bv1
	run 0 writekey test_volatile.tdb bk2 bv2
	run 2 writekey test_volatile.tdb bk3 bv3
	run 0 backupdb test_volatile.tdb "$DIR/vol.bak"
	run 0 dumpdbbackup "$DIR/vol.bak"
	run 0 backupdb test_persistent.tdb "$DIR/pers.bak"
	run 0 wipedb test_volatile.tdb
	run 1 restoredb "$DIR/vol.bak"
	run 2 catdb test_volatile.tdb
	run 2 readkey test_volatile.tdb bk1
	for k in 0 1 2; do run "$k" cattdb test_volatile.tdb; done
	run 0 pstore test_persistent.tdb k1 changed
	run 1 restoredb "$DIR/pers.bak"
	for k in 0 1 2; do run "$k" pfetch test_persistent.tdb k1; done
}

# vmrss_mib NODE: the resident size of NODE's daemon in MiB.
vmrss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$(cl pid "$DIR" "$1")/status" 2>/dev/null; }

# `ctdb recover` on a non-leader: a new generation, back to normal.  Before
# it, 1000 records are written straight into each node's copy of
# test_bulk.tdb (dmaster that node, as after migrations); the recovery merges
# them, and catdb on a non-leader collects them from every node.
phase_recover() {
	local before after k m0 m1
	run 0 attach test_bulk.tdb
	for k in 0 1 2; do
		/usr/bin/python3 "$ROOT/bench/cluster-probe.py" load "$DIR/node$k/db/volatile/test_bulk.tdb.$k" "$k" 1000 \
			>>"$DIR/bulk.log" 2>&1
	done
	before=$(generation 0)
	run 1 recover
	wait_healthy "healthy after ctdb recover"
	after=$(generation 0)
	check "ctdb recover made a new generation" "$([ -n "$after" ] && [ "$after" != "$before" ] && echo 0 || echo 1)" \
		"generation $before before, $after after"
	for k in 0 1 2; do run "$k" status; done
	run 2 catdb test_volatile.tdb
	m0=$(vmrss_mib 1)
	run 1 catdb test_bulk.tdb
	m1=$(vmrss_mib 1)
	check "catdb of 3000 records on a non-leader: its daemon grows by under 64 MiB" \
		"$([ -n "$m0" ] && [ -n "$m1" ] && [ $((m1 - m0)) -lt 64 ] && echo 0 || echo 1)" "VmRSS ${m0} MiB before, ${m1} MiB after"
	for k in 0 1 2; do run "$k" getdbstatus test_bulk.tdb; done
	run 0 pfetch test_persistent.tdb k3
	run 0 sync
	run 2 ipreallocate
}

# The persistent-commit client: on node S, one transaction per iteration
# (ctdb ptrans: key "c" = i and key "k<i>" = i); i advances only when the
# commit is acknowledged (exit 0).  Stops when DIR/loop.stop appears; the
# last acknowledged i is in DIR/loop.acked, attempts in DIR/loop.tries.
commit_loop() {
	local s=$1 i=1 tries=0
	echo 0 >"$DIR/loop.acked"
	while [ ! -e "$DIR/loop.stop" ]; do
		printf '"c" "%d"\n"k%d" "%d"\n' "$i" "$i" "$i" >"$DIR/loop.in"
		tries=$((tries + 1))
		if CLUSTER_TOOL_TIMEOUT=20 tool "$s" ptrans test_commits.tdb "$DIR/loop.in" >/dev/null 2>&1; then
			echo "$i" >"$DIR/loop.acked"
			i=$((i + 1))
		else
			sleep 0.2
		fi
		echo "$tries" >"$DIR/loop.tries"
		sleep 0.05
	done
}

# verify_commits NAME: after the faults, every node holds the same
# test_commits.tdb, with c >= the last acknowledged i and every acknowledged
# k<i>.
verify_commits() {
	local acked k c why="" first="" cur missing
	acked=$(cat "$DIR/loop.acked")
	[ "$acked" -gt 0 ] || why="no commit was acknowledged"
	for k in 0 1 2; do
		cur=$(tool "$k" catdb test_commits.tdb 2>&1 | grep -E '^(key|data)' | paste - - | sort)
		[ -n "$cur" ] || why="$why; node $k: catdb test_commits.tdb is empty or failed"
		if [ -z "$first" ]; then first=$cur; elif [ "$cur" != "$first" ]; then why="$why; node $k's copy differs from node 0's"; fi
		c=$(tool "$k" pfetch test_commits.tdb c 2>/dev/null)
		if [ -z "$c" ] || [ "$c" -lt "$acked" ]; then why="$why; node $k: c=$c < acknowledged $acked"; fi
	done
	missing=$(comm -23 <(seq 1 "$acked" | sed 's/^/k/' | sort) \
		<(sed -n 's/^key([0-9]*) = "\(k[0-9]*\)".*/\1/p' <<<"$first" | sort) | wc -l)
	[ "$missing" = 0 ] || why="$why; $missing acknowledged keys missing"
	echo "$acked acknowledged of $(cat "$DIR/loop.tries") tries" >"$DIR/loop.summary"
	check "$1" "$([ -z "$why" ] && echo 0 || echo 1)" "${why#; } ($(cat "$DIR/loop.summary"))"
}

# wait_until NAME NODE PATTERN ARGS...: until `ctdb ARGS` on NODE prints a
# line matching PATTERN (grep -E), at most 30 s; a check.
wait_until() {
	local name=$1 k=$2 pat=$3 i
	shift 3
	# (The output is taken whole first: grep -q would end the pipe early.)
	for i in $(seq 1 60); do
		grep -Eq "$pat" <<<"$(tool "$k" "$@" 2>/dev/null)" && break
		sleep 0.5
	done
	grep -Eq "$pat" <<<"$(tool "$k" "$@" 2>/dev/null)"
	check "$name" $? "ctdb $* on node $k never matched '$pat'"
}

# lead_again_0 NAME: node 0 (with the leader role) becomes leader again:
# the others lose the role until it leads, then get it back.  (Which node
# wins when the leader yields depends on who takes the cluster lock first,
# in Samba's daemon too; the later steps compare with node 0 leading.)
lead_again_0() {
	run 0 -n 1 setleaderrole off
	run 0 -n 2 setleaderrole off
	wait_until "$1: node 0 leads again" 1 '^0$' leader
	run 0 -n 1 setleaderrole on
	run 0 -n 2 setleaderrole on
	wait_healthy "$1: every node OK"
	leaders_agree "$1: one leader"
}

# Node states set with the tool against another node (-n): ban, stop,
# disable and the two roles.  Each of ban/stop/disable returns once the
# nodes see the flag and the leader has run a takeover run, so the status
# listings right after are settled.  The leader is node 0 (--leader-first).
phase_admin() {
	local k
	run 0 -n 2 ban 60
	for k in 0 1 2; do run "$k" status; done
	run 1 -n 2 nodestatus
	run 0 -n 2 ban 60
	run 1 -n 2 unban
	wait_healthy "unban: every node OK again"
	run 0 -n 1 stop
	for k in 0 1 2; do run "$k" status; done
	run 2 -n 1 continue
	wait_healthy "continue: every node OK again"
	run 2 -n 1 disable
	for k in 0 1 2; do run "$k" status; done
	run 0 -n 1 nodestatus
	run 0 -n 1 enable
	wait_healthy "enable: every node OK again"
	# Without the lmaster role a node leaves the vnn map at the next
	# recovery; with it back it returns.
	run 0 -n 2 setlmasterrole off
	wait_until "setlmasterrole off: node 2 leaves the vnn map" 1 '^Size:2$' status
	run 2 getcapabilities
	run 1 status
	run 0 -n 2 setlmasterrole on
	wait_until "setlmasterrole on: node 2 back in the vnn map" 1 '^Size:3$' status
	# The leader without the leader role gives it up; another node leads.
	run 1 -n 0 setleaderrole off
	wait_until "setleaderrole off: the leader yields" 2 '^[12]$' leader
	leaders_agree "setleaderrole off: one leader agreed on every node"
	run 0 getcapabilities
	# Which of the two others wins depends on who takes the cluster lock
	# first, in Samba's daemon too; node 0 is made leader again (the only
	# node with the role) so that the steps after compare.
	run 1 -n 0 setleaderrole on
	lead_again_0 "setleaderrole"
	# A stopped or banned leader yields too.
	run 1 -n 0 stop
	wait_until "stopped leader: another node leads" 2 '^[12]$' leader
	run 1 nodestatus all
	run 2 -n 0 continue
	lead_again_0 "continue"
	run 1 -n 0 ban 60
	wait_until "banned leader: another node leads" 2 '^[12]$' leader
	run 2 -X status
	run 2 -n 0 unban
	lead_again_0 "unban"
	# reloadnodes: a 4th node (nothing runs there) added to every nodes
	# file, then deleted again; a reload without a change is skipped.
	for k in 0 1 2; do fourth_addr >>"$DIR/node$k/nodes"; done
	run 0 reloadnodes
	for k in 0 1 2; do run "$k" status; done
	run 1 listnodes
	for k in 0 1 2; do sed -i '$ s/^/#/' "$DIR/node$k/nodes"; done
	run 2 reloadnodes
	for k in 0 1 2; do run "$k" status; done
	run 2 reloadnodes
	wait_healthy "reloadnodes: every node OK"
}

# vac NODE: one fast DB_VACUUM run of vac.tdb on NODE (through
# rawclient.py: the 4.17 tool has no vacuum command), a compared step.
vac() {
	new_step cmp "db_vacuum vac.tdb (node $1)"
	/usr/bin/python3 "$HERE/rawclient.py" "$DIR/node$1/run/ctdbd.socket" vacuum-once vac.tdb fast >"$STEP_FILE" 2>&1
	echo "rc=$?" >>"$STEP_FILE"
}

# Vacuuming between nodes: six records written on node 0, read on node 1
# (they migrate there with data) and deleted there.  Fast vacuum runs on
# nodes 1, 0 and 2 in turn: node 1 hands the empty records to their
# lmasters (VACUUM_FETCH); an lmaster's run migrates them to itself, and
# its next run has every other node drop its copy (TRY_DELETE_RECORDS)
# before it deletes them.  cattdb on every node after each round.
phase_vacuum() {
	local k r
	run 0 attach vac.tdb
	for k in a b c d e f; do
		tool 0 writekey vac.tdb "$k" "v$k" >/dev/null 2>&1
		tool 1 readkey vac.tdb "$k" >/dev/null 2>&1
		tool 1 deletekey vac.tdb "$k" >/dev/null 2>&1
	done
	for k in 0 1 2; do run "$k" cattdb vac.tdb; done
	for r in 1 2; do
		for k in 1 0 2; do vac "$k"; done
		for k in 0 1 2; do run "$k" cattdb vac.tdb; done
	done
}

# ---- phase 2: faults ----
# L = the leader, N = the highest non-leader pnn (SIGKILLed first), S = the
# third node (never killed; it runs the commit client).
phase_faults() {
	local l n s k newl loop g
	l=$(leader_of 0)
	[[ "$l" =~ ^[012]$ ]] || l=0
	for n in 2 1 0; do [ "$n" != "$l" ] && break; done
	for s in 0 1 2; do [ "$s" != "$l" ] && [ "$s" != "$n" ] && break; done
	echo "leader $l, non-leader killed first $n, survivor $s" >"$DIR/roles"
	run "$s" attach test_commits.tdb persistent
	commit_loop "$s" &
	loop=$!
	# A record whose newest copy is on N, older copies elsewhere.
	run "$s" writekey test_volatile.tdb fk fv
	run "$l" readkey test_volatile.tdb fk
	run "$n" readkey test_volatile.tdb fk
	run "$n" cattdb test_volatile.tdb
	sleep 1
	g=$(generation "$s")
	cl kill "$DIR" "$n" KILL >/dev/null 2>&1
	wait_healthy "SIGKILL a non-leader: the others mark it DISCONNECTED and recover"
	new_generation "a recovery after the non-leader's death" "$g"
	run "$l" status
	run "$s" status
	leaders_agree "leader unchanged after a non-leader's death"
	run "$s" readkey test_volatile.tdb fk
	run "$l" catdb test_volatile.tdb
	run "$s" pfetch test_persistent.tdb k3
	sleep 1
	g=$(generation "$s")
	cl kill "$DIR" "$l" KILL >/dev/null 2>&1
	wait_healthy "SIGKILL the leader: the survivor takes the lock and recovers"
	new_generation "a recovery after the leader's death" "$g"
	newl=$(leader_of "$s")
	check "the survivor is the new leader" "$([ "$newl" = "$s" ] && echo 0 || echo 1)" "leader is '$newl', not $s"
	run "$s" status
	run "$s" getreclock
	run "$s" readkey test_volatile.tdb fk
	sleep 1
	g=$(generation "$s")
	cl start-node "$DIR" "$n" >/dev/null 2>&1
	cl start-node "$DIR" "$l" >/dev/null 2>&1
	wait_healthy "restart both: they rejoin, all OK"
	new_generation "a recovery after the restarts" "$g"
	leaders_agree "leader agreed on every node after the restarts"
	sleep 1
	touch "$DIR/loop.stop"
	wait "$loop"
	verify_commits "no acknowledged persistent commit lost across the kills"
	for k in 0 1 2; do run "$k" status; done
	for k in 0 1 2; do run "$k" readkey test_volatile.tdb fk; done
	for k in 0 1 2; do run "$k" pfetch test_persistent.tdb k1; done
	# The two restarted nodes get the volatile databases from recoveries;
	# a recovery attaches them in the order of the first node's dbmap
	# (newest first), so their order depends on whether the nodes came
	# back in one recovery or in two, with Samba's daemon as with ours.
	for k in 0 1 2; do UNORDERED=1 run "$k" getdbmap; done
}

# side_main SIDE ADDR BIN: the whole sequence on one cluster.
side_main() {
	SIDE=$1
	DIR=$RUN/$1
	OUT=$RUN/$1.out
	mkdir -p "$OUT"
	if ! cl start --leader-first "$DIR" 3 "$2" "$3" >"$RUN/$1.start" 2>&1; then
		echo "FAIL start: $(tr '\n' ' ' <"$RUN/$1.start")" >"$OUT/broken"
		return
	fi
	local t0=$SECONDS
	if ! cl wait "$DIR" 60 >"$RUN/$1.wait" 2>&1; then
		echo "not healthy 60 s after start: $(tr '\n' ' ' <"$RUN/$1.wait" | cut -c1-800)" >"$OUT/broken"
		return
	fi
	echo "$((SECONDS - t0))" >"$RUN/$1.startsecs"
	SIDE_T0=$SECONDS
	local ph t
	for ph in status databases migration persistent backup vacuum recover admin faults; do
		t=$SECONDS
		"phase_$ph"
		echo "$ph $((SECONDS - t))s" >>"$RUN/$1.times"
	done
	cl stop "$DIR" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# Run both clusters at once, then report step by step.
# ---------------------------------------------------------------------------
for side in $SIDES; do
	if [ "$side" = debian ]; then addr=$DEBIAN_ADDR bin=debian; else addr=$OURS_ADDR bin=$CTDBD_BIN; fi
	side_main "$side" "$addr" "$bin" &
	SIDE_PIDS+=($!)
done
for p in "${SIDE_PIDS[@]}"; do wait "$p"; done
SIDE_PIDS=()

for side in $SIDES; do
	if [ -e "$RUN/$side.out/broken" ]; then
		fail "$side cluster of 3 nodes healthy after start" "$(cat "$RUN/$side.out/broken")"
	else
		pass "$side cluster of 3 nodes healthy after start ($(cat "$RUN/$side.startsecs") s)"
	fi
done

# The step list: Debian's when it ran, else ours.
ref=debian
[ -e "$RUN/debian.out" ] && [ ! -e "$RUN/debian.out/broken" ] || ref=ours
[[ " $SIDES " == *" $ref "* ]] || ref=${SIDES%% *}
other=""
[ "$KIND" = both ] && { [ "$ref" = debian ] && other=ours || other=debian; }

recorded=0
notrun=0
[ -e "$RUN/$ref.out/index" ] || touch "$RUN/$ref.out/index"
while read -r base kind name; do
	f=$RUN/$ref.out/$base
	[ -z "$FILTER" ] || [[ "$name" == *"$FILTER"* ]] || continue
	if [ "$kind" = check ]; then
		why=""
		g="$RUN/$other.out/$base"
		if [ -n "$other" ] && [ ! -e "$g" ]; then
			notrun=$((notrun + 1))
			FAILED=$((FAILED + 1))
			continue
		fi
		for side in $SIDES; do
			g="$RUN/$side.out/$base"
			if [ ! -e "$g" ]; then why="$why ($side: did not run)"
			elif [ "$(head -c 4 "$g")" != PASS ]; then why="$why ($side: $(cut -c6- "$g"))"; fi
		done
		if [ -z "$why" ]; then pass "$name"; else fail "$name$why"; fi
		continue
	fi
	if [ -z "$other" ]; then
		recorded=$((recorded + 1))
		continue
	fi
	g="$RUN/$other.out/$base"
	if [ ! -e "$g" ]; then
		notrun=$((notrun + 1))
		FAILED=$((FAILED + 1))
	elif cmp -s "$RUN/debian.out/$base" "$RUN/ours.out/$base"; then
		pass "$name"
	else
		fail "$name: ours differs from debian" "$(diff "$RUN/debian.out/$base" "$RUN/ours.out/$base")"
	fi
done <"$RUN/$ref.out/index"
[ "$notrun" = 0 ] || echo "FAIL $notrun steps ($other: did not run: its cluster was not healthy after start), counted as $notrun failures"
[ "$recorded" = 0 ] || echo "    $recorded outputs of $ref recorded, not compared (KIND=$KIND: no other cluster)"
for side in $SIDES; do
	[ -e "$RUN/$side/loop.summary" ] && echo "    $side commit client: $(cat "$RUN/$side/loop.summary")"
	[ -e "$RUN/$side/roles" ] && echo "    $side roles: $(cat "$RUN/$side/roles")"
	[ -e "$RUN/$side.times" ] && echo "    $side seconds per phase: $(tr '\n' ' ' <"$RUN/$side.times")"
done
finish
