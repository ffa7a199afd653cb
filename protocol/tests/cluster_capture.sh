#!/usr/bin/env bash
# Recaptures tests/fixtures/cluster-nodes.txt: the node-to-node packets of a
# two-node cluster of Debian's ctdbd (keepalives, forwarded controls, record
# migrations, recovery, traverses).
#
#   bash protocol/tests/cluster_capture.sh
#
# Node 0 runs on 127.0.0.1 and node 1 on 127.0.0.2 (test mode, loopback
# only).  Each node's nodes file names the other by an alias (node 0 sees
# node 1 as 127.0.0.3, node 1 sees node 0 as 127.0.0.4) where node_proxy.py
# listens, forwards to the real node from the alias the receiver expects,
# and records every packet ("n01 CONN HEX" from node 0 to node 1, "n10" the
# other way).  The daemons bind port 4379, so the run holds
# /work/ctdb-compat.lock (taken by the script itself).  Every process it
# starts is stopped by its pid.
set -euo pipefail

if [ -z "${CAPTURE_LOCKED:-}" ]; then
	export CAPTURE_LOCKED=1
	exec flock "${CTDB_COMPAT_LOCK:-/work/ctdb-compat.lock}" bash "$0" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${CAPTURE_OUT:-$HERE/fixtures}
PY=/usr/bin/python3
CTDB=/usr/bin/ctdb
CTDBD=${CAPTURE_CTDBD:-/usr/sbin/ctdbd}
RUN=$(mktemp -d "${TMPDIR:-/tmp}/ctdb-cluster.XXXXXX")
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	for b in "$RUN/n0" "$RUN/n1"; do
		p=$(cat "$b/run/ctdbd.pid" 2>/dev/null || true)
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	sleep 1
	if [ -z "${CAPTURE_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT

make_node() { # make_node DIR OWN-ADDRESS NODES...
	local b=$1 addr=$2
	shift 2
	mkdir -p "$b/db/volatile" "$b/db/persistent" "$b/db/state" "$b/events/legacy" "$b/run"
	printf '%s\n' "$@" >"$b/nodes"
	: >"$b/public_addresses"
	echo "VacuumInterval=600" >"$b/ctdb.tunables"
	cat >"$b/ctdb.conf" <<EOF
[logging]
	location = file:$b/log.ctdb
	log level = NOTICE

[cluster]
	node address = $addr

[database]
	volatile database directory = $b/db/volatile
	persistent database directory = $b/db/persistent
	state database directory = $b/db/state

[failover]
	disabled = true
EOF
}

tool() { # tool NODE ARGS...
	local b=$RUN/n$1
	shift
	CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 30 "$CTDB" "$@"
}

start_proxy() { # start_proxy LISTEN TARGET SOURCE TAG
	$PY "$HERE/node_proxy.py" "$@" "$RUN/$4.txt" >"$RUN/$4.ready" 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 1 100); do
		grep -q ready "$RUN/$4.ready" && return 0
		sleep 0.1
	done
	echo "node proxy $4 did not start" >&2
	exit 1
}

make_node "$RUN/n0" 127.0.0.1 127.0.0.1 127.0.0.3
make_node "$RUN/n1" 127.0.0.2 127.0.0.4 127.0.0.2
start_proxy 127.0.0.3 127.0.0.2 127.0.0.4 n01
start_proxy 127.0.0.4 127.0.0.1 127.0.0.3 n10
for n in 0 1; do
	(cd "$RUN/n$n" && CTDB_TEST_MODE=yes CTDB_BASE=$RUN/n$n "$CTDBD") >"$RUN/n$n/start.out" 2>&1
done
ready=false
for _ in $(seq 1 120); do
	if tool 0 status 2>/dev/null | grep -q "Recovery mode:NORMAL" &&
		[ "$(tool 0 status 2>/dev/null | grep -c '^pnn:.*OK')" = 2 ]; then
		ready=true
		break
	fi
	sleep 1
done
$ready || { echo "the cluster never became ready" >&2; tail -20 "$RUN/n0/log.ctdb" >&2; exit 1; }

# Traffic: controls forwarded to the other node, record migrations both
# ways, persistent commits, traverses across nodes, a forced recovery.
{
	tool 0 status
	tool 0 -n 1 uptime
	tool 0 -n 1 ping
	tool 0 -n 1 getdbmap
	tool 0 getdbmap
	tool 0 attach test_volatile.tdb
	tool 0 attach test_persistent.tdb persistent
	tool 1 writekey test_volatile.tdb k1 v1
	tool 0 readkey test_volatile.tdb k1
	tool 0 writekey test_volatile.tdb k1 v2
	tool 1 readkey test_volatile.tdb k1
	tool 1 writekey test_volatile.tdb k2 v2
	tool 0 catdb test_volatile.tdb
	tool 0 pstore test_persistent.tdb pk1 pv1
	tool 1 pfetch test_persistent.tdb pk1
	tool 0 -n 1 statistics
	tool 0 recover
	sleep 3
	tool 0 status
	tool 1 catdb test_volatile.tdb
} >"$RUN/traffic.out" 2>&1 || true
sleep 2

mkdir -p "$OUT"
{
	echo "# two Debian ctdbd nodes: n01 = node 0 to node 1, n10 = node 1 to node 0"
	cat "$RUN/n01.txt" "$RUN/n10.txt"
} >"$OUT/cluster-nodes.txt"
echo "captured $(grep -vc '^#' "$OUT/cluster-nodes.txt") node packets"
