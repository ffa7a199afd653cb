#!/usr/bin/env bash
# `make run`'s cluster part: three ctdbd nodes on three free consecutive
# loopback addresses (127.0.0.x .. x+2), laid out and started by
# scripts/cluster.sh; waits until every node shows all three OK; shows
# `ctdb status` from Debian's ctdb tool; writes a record on node 0 and reads it
# on node 2 (the record migrates: cattdb on node 2 shows it there); stops the
# nodes by their pids.
#   scripts/run-cluster.sh [path/to/ctdbd | debian]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KIND=${1:-target/release/ctdbd}
if [ "$KIND" != debian ]; then
	KIND=$(cd "$(dirname "$KIND")" && pwd)/$(basename "$KIND")
	[ -x "$KIND" ] || { echo "no ctdbd at $KIND (make build)"; exit 1; }
fi
command -v ctdb >/dev/null || { echo "Debian's ctdb tool is not installed (scripts/deps.sh)"; exit 1; }

# ctdb's node port is 4379 on each node's address: pick x with .x, .x+1, .x+2
# free (from 20 up: the compat suites use the first few addresses).
busy() { ss -Hltn "sport = :4379" 2>/dev/null | grep -qE "(127\.0\.0\.$1|0\.0\.0\.0|\*|\[::\]):4379"; }
base=""
for x in $(shuf -i 20-240 -n 30); do
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
