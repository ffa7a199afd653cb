#!/usr/bin/env bash
# A mixed cluster: our ctdbd and Debian's ctdbd 4.17 as nodes of one
# 3-node cluster, in both proportions, driven by Debian's ctdb tool.
#
#   compat-tests/ctdb/cluster-mixed.sh [FILTER]
#
#   ours,debian,debian   node 0 (ours) starts first and leads
#   debian,ours,ours     node 0 (Debian's) starts first and leads
#
# On each: every node lists every node OK with the same leader; a volatile
# record written on node 0 is read on nodes 1 and 2 (it migrates across the
# two kinds) and node 2 holds it after; a persistent store on node 1 and a
# transaction on node 2 are on every node with the same sequence number;
# catdb from a node of each kind lists the records; records deleted on
# node 1 are vacuumed away on every node; node 0 (the leader) is
# SIGKILLed: a node of the other kind takes the lock and recovers, the
# records are still read; node 0 comes back, is recovered by the other
# kind's leader and serves the records; then Debian's smbd runs on every
# node over one directory (see smb_steps); then ban, stop and disable set
# through one node show on another, and a leader without the leader role
# yields (see admin_steps).  The two clusters run at once on
# their own addresses (127.0.17.1-3 and 127.0.17.11-13), in a network
# namespace the suite creates (unshare -n) whose loopback carries those
# addresses: smbd binds only an address some interface has.
#
# Environment: CTDBD_BIN (our ctdbd), COMPAT_KEEP=1 keeps the directory.
# Prints PASS/FAIL lines and ends with "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"

reexec_unshared MIXED_NETNS -n -- "$@"
loopback_up 127.0.17.1 127.0.17.2 127.0.17.3 127.0.17.11 127.0.17.12 127.0.17.13

FILTER=${1:-}
CTDBD_BIN=${CTDBD_BIN:-$BUILT/ctdbd}
RUN=$(new_run_dir ctdb-cluster-mixed)

cleanup() {
	stop_clusters_under "$RUN"
	remove_run
}
trap cleanup EXIT

# Each configuration writes "PASS name" / "FAIL name: why" lines to its own
# file (they run at once); the report comes at the end (so ok and bad here
# write to that file instead of counting).
ok() { echo "PASS $1" >>"$OUT"; }
bad() { echo "FAIL $1: $2" | tr '\n' ' ' | cut -c1-900 >>"$OUT" && echo >>"$OUT"; }
# check NAME CONDITION-EXIT-STATUS WHY
check() { if [ "$2" = 0 ]; then ok "$1"; else bad "$1" "$3"; fi; }

tool() { bash "$CLUSTER" ctdb "$DIR" "$@"; }
addr() { bash "$CLUSTER" addr "$DIR" "$1"; }

# Debian's smbd, clustered, from the suite of one node (smbd_conf,
# smbd_start, smbd_stop, smbc).
STARTED_PIDS=()
# shellcheck source=compat-tests/ctdb/smbd.sh
. "$HERE/smbd.sh"
SMB_PORT=4456

# smb_steps NAME: Debian's smbd on every node, each on its node's address,
# all serving one directory: a file put through node 0 is listed through
# node 2; while a session through node 1 holds it open, deleting it through
# node 2 fails with a sharing violation (the open is known only through
# locking.tdb, whose record migrates between the two kinds of daemon); once
# that session has ended, the delete works.
smb_steps() {
	local name=$1 k d msg out share=$RUN/$1.share f=$RUN/$1.files pids=() hold fd
	mkdir -p "$f"
	chmod 755 "$RUN"
	for k in 0 1 2; do
		smbd_conf "$RUN/$name.smb$k" "$DIR/node$k/run/ctdbd.socket" "$SMB_PORT" "$(addr "$k")" "$share"
	done
	msg=$(printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" |
		timeout 30 pdbedit --configfile="$RUN/$name.smb0/smb.conf" -a -u "$SMB_USER" -t 2>&1 >/dev/null)
	check "$name: smb user added to the clustered passdb through node 0" $? "$msg"
	for k in 0 1 2; do
		if smbd_start "$RUN/$name.smb$k" "$SMB_PORT" "$(addr "$k")"; then
			ok "$name: smbd on node $k starts"
			pids+=("$SMBD_PID")
		else
			bad "$name: smbd on node $k starts" "$SMBD_ERR"
		fi
	done
	echo "hello from node 0" >"$f/hello.txt"
	out=$(SMBC_ADDR=$(addr 0) smbc "$RUN/$name.smb0" "$SMB_PORT" -c "put $f/hello.txt hello.txt" 2>&1)
	check "$name: smb put through node 0" $? "$out"
	out=$(SMBC_ADDR=$(addr 2) smbc "$RUN/$name.smb2" "$SMB_PORT" -c "ls" 2>&1)
	grep -q ' hello\.txt ' <<<"$out"
	check "$name: smb ls through node 2 lists it" $? "$out"
	mkfifo "$f/hold.in"
	SMBC_ADDR=$(addr 1) smbc "$RUN/$name.smb1" "$SMB_PORT" <"$f/hold.in" >"$f/hold.out" 2>&1 &
	hold=$!
	exec {fd}>"$f/hold.in"
	echo "open hello.txt" >&"$fd"
	for k in $(seq 100); do grep -q fnum "$f/hold.out" && break; sleep 0.1; done
	out=$(SMBC_ADDR=$(addr 2) smbc "$RUN/$name.smb2" "$SMB_PORT" -c "rm hello.txt" 2>&1)
	grep -q NT_STATUS_SHARING_VIOLATION <<<"$out" && [ -e "$share/hello.txt" ]
	check "$name: smb rm through node 2 of a file open through node 1 fails" $? "holder: $(cat "$f/hold.out"); rm: $out"
	echo quit >&"$fd"
	exec {fd}>&-
	wait "$hold"
	out=$(SMBC_ADDR=$(addr 2) smbc "$RUN/$name.smb2" "$SMB_PORT" -c "rm hello.txt" 2>&1)
	[ ! -e "$share/hello.txt" ]
	check "$name: smb rm through node 2 once it is closed" $? "$out"
	for k in "${pids[@]}"; do smbd_stop "$k" || bad "$name: smbd stops" "$SMBD_ERR"; done
}

# expect NAME NODE WANT ARGS...: `ctdb ARGS` on NODE prints WANT (a line).
expect() {
	local name=$1 k=$2 want=$3 out
	shift 3
	out=$(tool "$k" "$@" 2>&1)
	grep -qxF -- "$want" <<<"$out"
	check "$name" $? "node $k: ctdb $* printed: $out"
}

# healthy NAME LEADER-SET: the cluster settles with every node OK, and the
# leader every node names is one of LEADER-SET (a regex).
healthy() {
	local out
	out=$(bash "$CLUSTER" wait "$DIR" 60 2>&1)
	check "$1: every node OK" $? "$out"
	local l
	l=$(bash "$CLUSTER" leader "$DIR" 2>/dev/null)
	[[ "$l" =~ ^($2)$ ]]
	check "$1: leader is node $2" $? "leader is '$l'"
}

# shows NAME NODE PNN STATE: `ctdb status` on NODE lists node PNN with STATE
# among its flags (within 20 s).
shows() {
	local out i
	for i in $(seq 100); do
		out=$(tool "$2" status 2>&1)
		grep -qE "^pnn:$3 [^ ]+ +([A-Z]+\|)*$4" <<<"$out" && break
		sleep 0.2
	done
	grep -qE "^pnn:$3 [^ ]+ +([A-Z]+\|)*$4" <<<"$out"
	check "$1" $? "node $2: $out"
}

# admin_steps NAME: node states set through one kind show on the other, and
# a leader that loses its role yields to a node of either kind.
admin_steps() {
	local name=$1 l n
	tool 1 -n 0 ban 30 >/dev/null 2>&1
	shows "$name: node 0 banned through node 1, seen by node 2" 2 0 BANNED
	tool 1 -n 0 unban >/dev/null 2>&1
	healthy "$name: unbanned" "0|1|2"
	tool 0 -n 2 stop >/dev/null 2>&1
	shows "$name: node 2 stopped through node 0, seen by node 1" 1 2 STOPPED
	tool 0 -n 2 continue >/dev/null 2>&1
	healthy "$name: continued" "0|1|2"
	tool 2 -n 1 disable >/dev/null 2>&1
	shows "$name: node 1 disabled through node 2, seen by node 0" 0 1 DISABLED
	tool 2 -n 1 enable >/dev/null 2>&1
	healthy "$name: enabled" "0|1|2"
	l=$(bash "$CLUSTER" leader "$DIR" 2>/dev/null)
	n=$(( (l + 1) % 3 ))
	tool "$n" -n "$l" setleaderrole off >/dev/null 2>&1
	healthy "$name: leader node $l without the leader role yields" "$(echo 0 1 2 | tr ' ' '\n' | grep -vx "$l" | paste -sd'|')"
	tool "$n" -n "$l" setleaderrole on >/dev/null 2>&1
	healthy "$name: leader role back on node $l" "0|1|2"
}

# config NAME KINDS BASE: one mixed cluster, the whole sequence.
config() {
	local name=$1 kinds=$2 base=$3 k
	DIR=$RUN/$name
	OUT=$RUN/$name.report
	: >"$OUT"
	if ! bash "$CLUSTER" start --leader-first "$DIR" 3 "$base" "$kinds" >"$RUN/$name.start" 2>&1; then
		bad "$name: starts" "$(tail -5 "$RUN/$name.start")"
		return
	fi
	healthy "$name: start" 0
	for k in 0 1 2; do
		expect "$name: status on node $k names node 0 leader" "$k" "Leader:0" status
	done
	# Volatile records migrate between the kinds.
	tool 2 attach mixed.tdb >/dev/null 2>&1
	tool 0 attach vacmixed.tdb >/dev/null 2>&1
	tool 0 writekey mixed.tdb key1 value1 >/dev/null 2>&1
	for k in 1 2; do
		expect "$name: readkey on node $k" "$k" "Data: size:6 ptr:[value1]" readkey mixed.tdb key1
	done
	expect "$name: node 2 is the record's dmaster on node 1's copy" 1 "dmaster: 2" cattdb mixed.tdb
	for k in 0 1; do
		expect "$name: catdb on node $k" "$k" "Dumped 1 records" catdb mixed.tdb
	done
	# Persistent commits reach every node.
	tool 0 attach pmixed.tdb persistent >/dev/null 2>&1
	tool 1 pstore pmixed.tdb pkey pvalue >/dev/null 2>&1
	printf '"t1" "v1"\n"t2" "v2"\n' | tool 2 ptrans pmixed.tdb >/dev/null 2>&1
	for k in 0 1 2; do
		expect "$name: pfetch on node $k" "$k" "pvalue" pfetch pmixed.tdb pkey
		expect "$name: getdbseqnum on node $k" "$k" "0x2" getdbseqnum pmixed.tdb
	done
	# Vacuuming across the kinds: records deleted on node 1 are gone from
	# every node after two rounds of fast runs (VACUUM_FETCH to their
	# lmasters, then TRY_DELETE_RECORDS).
	for k in a b c d e f; do
		tool 0 writekey vacmixed.tdb "$k" "v$k" >/dev/null 2>&1
		tool 1 readkey vacmixed.tdb "$k" >/dev/null 2>&1
		tool 1 deletekey vacmixed.tdb "$k" >/dev/null 2>&1
	done
	local r
	for r in 1 2; do
		for k in 1 0 2; do
			/usr/bin/python3 "$HERE/rawclient.py" "$DIR/node$k/run/ctdbd.socket" vacuum-once vacmixed.tdb fast >/dev/null 2>&1
		done
	done
	for k in 0 1 2; do
		expect "$name: vacuumed on every node (node $k)" "$k" "Dumped 0 record(s)" cattdb vacmixed.tdb
	done
	# The leader dies: a node of the other kind leads and recovers.
	bash "$CLUSTER" kill "$DIR" 0 KILL >/dev/null 2>&1
	healthy "$name: after node 0's SIGKILL" "1|2"
	expect "$name: readkey on node 1 after the leader's death" 1 "Data: size:6 ptr:[value1]" readkey mixed.tdb key1
	expect "$name: pfetch on node 2 after the leader's death" 2 "v2" pfetch pmixed.tdb t2
	# It returns and is recovered by the other kind's leader.
	bash "$CLUSTER" start-node "$DIR" 0 >/dev/null 2>&1
	healthy "$name: node 0 back" "1|2"
	expect "$name: readkey on node 0 after its return" 0 "Data: size:6 ptr:[value1]" readkey mixed.tdb key1
	expect "$name: pfetch on node 0 after its return" 0 "pvalue" pfetch pmixed.tdb pkey
	expect "$name: getdbseqnum on node 0 after its return" 0 "0x2" getdbseqnum pmixed.tdb
	healthy "$name: before smbd" "1|2"
	smb_steps "$name"
	admin_steps "$name"
	bash "$CLUSTER" stop "$DIR" >/dev/null 2>&1
}

config ours-debian-debian "$CTDBD_BIN,debian" 127.0.17.1 &
first=$!
config debian-ours-ours "debian,$CTDBD_BIN" 127.0.17.11 &
wait "$first" $!

for name in ours-debian-debian debian-ours-ours; do
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		[ -z "$FILTER" ] || [[ "$line" == *"$FILTER"* ]] || continue
		case $line in
		PASS*) PASSED=$((PASSED + 1)); echo "$line" ;;
		FAIL*) FAILED=$((FAILED + 1)); echo "$line" ;;
		esac
	done <"$RUN/$name.report"
done
finish
