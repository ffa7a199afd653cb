#!/usr/bin/env bash
# `make run`'s cluster part: three ctdbd nodes on three free consecutive
# loopback addresses (127.0.0.x .. x+2), laid out and started by
# scripts/cluster.sh; waits until every node shows all three OK; shows
# `ctdb status` from Debian's ctdb tool; writes a record on node 0 and reads it
# on node 2 (the record migrates: cattdb on node 2 shows it there); stops the
# nodes by their pids.
# Where network namespaces can be made (unshare -n), the cluster runs in one
# of its own with public addresses (192.0.2.1-3 on a veth interface there)
# and `ctdb ip all` / `ctdb ifaces` show where they are; otherwise it says so
# and runs on the host's loopback without them.
#   scripts/run-cluster.sh [path/to/ctdbd | debian]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KIND=${1:-target/release/ctdbd}
if [ "$KIND" != debian ]; then
	KIND=$(cd "$(dirname "$KIND")" && pwd)/$(basename "$KIND")
	[ -x "$KIND" ] || { echo "no ctdbd at $KIND (make build)"; exit 1; }
fi
command -v ctdb >/dev/null || { echo "Debian's ctdb tool is not installed (scripts/deps.sh)"; exit 1; }

if [ -z "${RUN_NETNS:-}" ]; then
	if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
		exec env RUN_NETNS=1 unshare -n bash "$0" "$@"
	fi
	echo "== network namespaces cannot be made here (unshare -n failed): no public addresses"
fi

# ctdb's node port is 4379 on each node's address: pick x with .x, .x+1, .x+2
# free (from 20 up: the compat suites use the first few addresses).
busy() { ss -Hltn "sport = :4379" 2>/dev/null | grep -qE "(127\.0\.0\.$1|0\.0\.0\.0|\*|\[::\]):4379"; }
base=""
if [ -n "${RUN_NETNS:-}" ]; then
	# A namespace of our own: its loopback is free, pub0 is the public
	# interface (one end of a veth pair).
	ip link set lo up
	for a in 127.0.0.1 127.0.0.2 127.0.0.3; do ip addr add "$a/32" dev lo 2>/dev/null || true; done
	ip link add pub0 type veth peer name pub1
	ip link set pub0 up
	ip link set pub1 up
	base=127.0.0.1
fi
for x in $( [ -z "$base" ] && shuf -i 20-240 -n 30); do
	if ! busy "$x" && ! busy $((x + 1)) && ! busy $((x + 2)); then
		base=127.0.0.$x
		break
	fi
done
[ -n "$base" ] || { echo "no three free loopback addresses for port 4379"; exit 1; }

dir=$(mktemp -d)
cluster() { bash "$HERE/cluster.sh" "$@"; }
cleanup() {
	echo "== stopping the nodes"
	cluster stop "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT

if [ -n "${RUN_NETNS:-}" ]; then
	printf '192.0.2.1/24 pub0\n192.0.2.2/24 pub0\n192.0.2.3/24 pub0\n' >"$dir/public_addresses"
	export CLUSTER_PUBLIC_ADDRESSES=$dir/public_addresses CLUSTER_FAILOVER=1
	echo "== in a network namespace of its own, public addresses 192.0.2.1-3 on pub0"
fi
echo "== starting 3 nodes of $KIND on $base .. +2 (CTDB_BASE=$dir/node0..2)"
cluster start "$dir" 3 "$base" "$KIND"
echo "== waiting until every node shows all three OK"
cluster wait "$dir" 90
echo "== ctdb status (node 0)"
cluster ctdb "$dir" 0 status
echo "== ctdb attach demo.tdb (node 0); writekey on node 0; readkey on node 2"
cluster ctdb "$dir" 0 attach demo.tdb >/dev/null
cluster ctdb "$dir" 0 writekey demo.tdb hello world
cluster ctdb "$dir" 2 readkey demo.tdb hello
echo "== ctdb cattdb demo.tdb (node 2: the record migrated here)"
cluster ctdb "$dir" 2 cattdb demo.tdb
if [ -n "${RUN_NETNS:-}" ]; then
	echo "== ctdb ip all (node 0)"
	for i in $(seq 1 20); do
		out=$(cluster ctdb "$dir" 0 ip all)
		echo "$out" | grep -q ' -1$' || break
		sleep 0.5
	done
	echo "$out"
	echo "== ctdb ifaces (node 1)"
	cluster ctdb "$dir" 1 ifaces
fi
