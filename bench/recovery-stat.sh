#!/usr/bin/env bash
# One 100,000-record recovery of a 3-node cluster, counted with perf stat:
# the cpu time and page faults of the three daemons (every thread, and the
# processes they start) from just before `ctdb recover` until 0.3 s after it,
# and the daemon's own figure for the recovery. For comparing two builds of
# our daemon (run them alternately: the machine's speed drifts) or ours with
# Debian's (KIND debian; its recovery daemon and helper are other processes
# and not counted). Not a timed test.
#
#   bench/recovery-stat.sh [KIND [BASEADDR]]
# KIND: a ctdbd binary (default target/release/ctdbd) or "debian"; BASEADDR
# 127.0.18.1 by default. Needs perf.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
KIND=${1:-$ROOT/target/release/ctdbd}
ADDR=${2:-127.0.18.1}
PROBE="/usr/bin/python3 $HERE/cluster-probe.py"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/recovery-stat.XXXXXX")
cl() { bash "$ROOT/scripts/cluster.sh" "$@"; }
trap 'cl stop "$DIR" >/dev/null 2>&1; rm -rf "$DIR"' EXIT

cl start "$DIR" 3 "$ADDR" "$KIND" >/dev/null || exit 1
$PROBE wait "$(date +%s)" 60 "$DIR"/node{0,1,2}/run/ctdbd.socket >/dev/null || exit 1
cl ctdb "$DIR" 0 attach bench.tdb >/dev/null || exit 1
for k in 0 1 2; do
	for _ in $(seq 1 50); do [ -e "$DIR/node$k/db/volatile/bench.tdb.$k" ] && break; sleep 0.1; done
done
$PROBE load "$DIR/node0/db/volatile/bench.tdb.0" 0 33334 || exit 1
$PROBE load "$DIR/node1/db/volatile/bench.tdb.1" 1 33333 || exit 1
$PROBE load "$DIR/node2/db/volatile/bench.tdb.2" 2 33333 || exit 1
# Out of the start-up's RerecoveryTimeout, as bench/cluster.sh waits.
sleep "$(sed -n 's/^RerecoveryTimeout=//p' "$DIR/node0/ctdb.tunables" | grep . || echo 10)"
pids="$(cl pid "$DIR" 0),$(cl pid "$DIR" 1),$(cl pid "$DIR" 2)"
perf stat -e task-clock,page-faults -o "$DIR/stat.txt" -p "$pids" &
stat=$!
sleep 0.5
cl ctdb "$DIR" 0 recover || echo "ctdb recover failed" >&2
sleep 0.3
kill -INT "$stat"
wait "$stat"
awk '/task-clock/ { printf "cpu %s ms, ", $1 } /page-faults/ { printf "page faults %s, ", $1 }' "$DIR/stat.txt"
cl ctdb "$DIR" 0 uptime | awk '/^Duration of last recovery\/failover:/ { printf "recovery %.3f s\n", $5 }'
