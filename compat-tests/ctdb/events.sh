#!/usr/bin/env bash
# Event scripts and monitoring on our ctdbd and on Debian's ctdbd 4.17: two
# 3-node clusters, each node with the same test script in events/legacy,
# run the same scenario, and after each step what the tools show must read
# the same on both (`ctdb status`, `ctdb ip all`, every node's
# `ctdb scriptstatus` and `ctdb event status legacy EVENT`, with times and
# durations masked).
#
#   compat-tests/ctdb/events.sh [FILTER]
#
# The script (50.probe) logs every event with its arguments to
# $CTDB_BASE/events.log; its monitor fails while $CTDB_BASE/fail exists
# and hangs while $CTDB_BASE/hang exists.  Steps: start (every node runs
# init, setup, startrecovery, recovered, startup, monitor, ipreallocated,
# and takeip for each address it holds, with Samba's arguments); node 1's
# monitor fails (UNHEALTHY, its addresses move) and passes again; node 2's
# monitor hangs past EventScriptTimeout (TIMEDOUT, the node stays healthy
# until MonitorTimeoutCount timeouts, then is UNHEALTHY) and recovers; an
# administrator's `ctdb event run` and `script disable/enable`.
#
# Runs in a network namespace it creates (unshare -n): node addresses
# 127.0.26.1-3 (ours) and 127.0.26.11-13 (Debian's) on its loopback, the
# public interface pub0 (one end of a veth pair), addresses from
# 192.0.2.0/24.  Both daemons run in test mode, so no address is put on an
# interface.
#
# Environment: CTDBD_BIN (our ctdbd), COMPAT_KEEP=1 keeps the directory.
# Prints PASS/FAIL lines and ends with "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"

reexec_unshared EVENTS_NETNS -n -- "$@"
loopback_up 127.0.26.1 127.0.26.2 127.0.26.3 127.0.26.11 127.0.26.12 127.0.26.13
veth_pair_up pub0 pub1

FILTER=${1:-}
CTDBD_BIN=${CTDBD_BIN:-$BUILT/ctdbd}
RUN=$(new_run_dir ctdb-events)
OURS=$RUN/ours
DEB=$RUN/debian

cleanup() {
	stop_clusters_under "$RUN"
	remove_run
}
trap cleanup EXIT

base() { echo "$1/node$2"; }

# Times and durations out of scriptstatus / event status lines.
mask() { sed -E 's/ +([0-9]+\.[0-9]{3} +)?[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]+ [0-9:]+ [0-9]{4}$/ <time>/'; }

# view DIR: status, addresses and every node's script status.
view() {
	local dir=$1 k ev
	echo "== status"
	ctdb_on "$dir" 0 status 2>&1 | grep -v '^Generation:' | sed -E 's/127\.0\.26\.[0-9]+ +/ADDR /'
	echo "== ip all"
	ctdb_on "$dir" 0 ip all 2>&1
	for k in 0 1 2; do
		echo "== node $k scriptstatus"
		ctdb_on "$dir" "$k" scriptstatus 2>&1 | mask
		for ev in startup ipreallocated; do
			echo "== node $k event status legacy $ev"
			ctdb_on "$dir" "$k" event status legacy "$ev" 2>&1 | mask
		done
	done
}

# compare NAME [SECONDS]: both clusters show the same, within SECONDS.
compare() {
	compare_views "$1" "${2:-15}" view_into || return
	if [ -n "${EVENTS_SHOW:-}" ]; then echo "$VIEWED"; fi
}
view_into() { view "$1" >"$2"; }

# event_names DIR K: the distinct events node K's script saw, sorted.
event_names() { awk '{print $1}' "$(base "$1" "$2")/events.log" | sort -u | tr '\n' ' '; }

# held_by_takeip DIR: every address a node holds (ctdb ip all) had, as
# its last takeip/releaseip on that node, "takeip pub0 ADDR 24".
held_by_takeip() {
	local dir=$1 addr pnn last
	while read -r addr pnn; do
		[ "$pnn" -ge 0 ] 2>/dev/null || continue
		last=$(grep -E "^(takeip|releaseip) [^ ]+ $addr " "$(base "$dir" "$pnn")/events.log" | tail -n 1)
		if [ "$last" != "takeip pub0 $addr 24" ]; then
			echo "node $pnn holds $addr, its last address event: '$last'"
			return 1
		fi
	done < <(ctdb_on "$dir" 0 ip all 2>/dev/null | awk 'NR > 1 {print $1, $2}')
}

SCRIPTS=$RUN/scripts
mkdir -p "$SCRIPTS"
cat >"$SCRIPTS/50.probe.script" <<'EOF'
#!/bin/sh
# Logs every event; monitor fails while $CTDB_BASE/fail exists and hangs
# while $CTDB_BASE/hang exists.
echo "$*" >>"$CTDB_BASE/events.log"
if [ "$1" = monitor ]; then
	if [ -e "$CTDB_BASE/fail" ]; then
		echo "monitor told to fail"
		exit 1
	fi
	[ -e "$CTDB_BASE/hang" ] && sleep 30
fi
exit 0
EOF
chmod +x "$SCRIPTS/50.probe.script"
cat >"$RUN/public_addresses" <<EOF
192.0.2.1/24 pub0
192.0.2.2/24 pub0
192.0.2.3/24 pub0
EOF

start_cluster() { # start_cluster DIR BASEADDR KIND
	CLUSTER_PUBLIC_ADDRESSES=$RUN/public_addresses CLUSTER_FAILOVER=1 \
		CLUSTER_EVENT_SCRIPTS=$SCRIPTS bash "$CLUSTER" start --leader-first \
		"$1" 3 "$2" "$3" MonitorInterval=1 IPAllocAlgorithm=0 >/dev/null
}
start_cluster "$OURS" 127.0.26.1 "$CTDBD_BIN" &
p=$!
start_cluster "$DEB" 127.0.26.11 debian
wait $p
if ! bash "$CLUSTER" wait "$OURS" 60 >/dev/null || ! bash "$CLUSTER" wait "$DEB" 60 >/dev/null; then
	bad "start" "a cluster did not come up"
	finish
fi

if wanted start; then
	compare "start: status, addresses, script status"
	for k in 0 1 2; do
		a=$(event_names "$OURS" "$k")
		b=$(event_names "$DEB" "$k")
		if [ "$a" = "$b" ]; then
			ok "start: node $k ran the events Debian's ran ($a)"
		else
			bad "start: node $k events" "ours: $a; Debian's: $b"
		fi
		first=$(head -n 2 "$(base "$OURS" "$k")/events.log" | tr '\n' ' ')
		[ "$first" = "init setup " ] && ok "start: node $k began with init, setup" ||
			bad "start: node $k first events" "$first"
	done
	for d in "$OURS" "$DEB"; do
		why=$(held_by_takeip "$d") && ok "start: $(basename "$d") addresses came with takeip IFACE ADDR BITS" ||
			bad "start: $(basename "$d") takeip" "$why"
	done
fi

if wanted monitor; then
	touch "$(base "$OURS" 1)/fail" "$(base "$DEB" 1)/fail"
	compare "monitor fails on node 1: UNHEALTHY, its addresses moved" 20
	rm -f "$(base "$OURS" 1)/fail" "$(base "$DEB" 1)/fail"
	compare "monitor passes again on node 1: healthy" 20
	for d in "$OURS" "$DEB"; do
		why=$(held_by_takeip "$d") && ok "monitor: $(basename "$d") addresses follow takeip/releaseip" ||
			bad "monitor: $(basename "$d") takeip" "$why"
	done
fi

if wanted hang; then
	for d in "$OURS" "$DEB"; do
		ctdb_on "$d" 2 setvar EventScriptTimeout 2 >/dev/null
		ctdb_on "$d" 2 setvar MonitorTimeoutCount 3 >/dev/null
		touch "$(base "$d" 2)/hang"
	done
	sleep 3
	# One timeout below the count: the node stays healthy, the script
	# shows it timed out.
	compare "monitor hangs on node 2: TIMEDOUT, still healthy" 4
	compare "monitor hung MonitorTimeoutCount times: node 2 UNHEALTHY" 20
	rm -f "$(base "$OURS" 2)/hang" "$(base "$DEB" 2)/hang"
	compare "monitor passes again on node 2: healthy" 25
	for d in "$OURS" "$DEB"; do
		ctdb_on "$d" 2 setvar EventScriptTimeout 30 >/dev/null
	done
fi

if wanted admin; then
	out_ours=$(ctdb_on "$OURS" 0 event run 10 legacy monitor 2>&1; echo "rc=$?")
	out_deb=$(ctdb_on "$DEB" 0 event run 10 legacy monitor 2>&1; echo "rc=$?")
	[ "$out_ours" = "$out_deb" ] && ok "admin: event run legacy monitor ($out_deb)" ||
		bad "admin: event run" "ours: $out_ours; Debian's: $out_deb"
	for d in "$OURS" "$DEB"; do
		ctdb_on "$d" 1 event script disable legacy 50.probe >/dev/null 2>&1
	done
	compare "admin: script disabled on node 1" 10
	for d in "$OURS" "$DEB"; do
		ctdb_on "$d" 1 event script enable legacy 50.probe >/dev/null 2>&1
	done
	compare "admin: script enabled again on node 1" 10
fi

finish
