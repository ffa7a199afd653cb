#!/usr/bin/env bash
# Brings up one ctdbd node of ours on a loopback address (CTDB test mode: its socket,
# pid file and databases under a temporary CTDB_BASE), shows `ctdb status` from
# Debian's ctdb tool, and stops the daemon by its pid.
#   scripts/run-node.sh [path/to/ctdbd]
set -euo pipefail
CTDBD=${1:-target/release/ctdbd}
CTDBD=$(cd "$(dirname "$CTDBD")" && pwd)/$(basename "$CTDBD")
[ -x "$CTDBD" ] || { echo "no ctdbd at $CTDBD (make build)"; exit 1; }
command -v ctdb >/dev/null || { echo "Debian's ctdb tool is not installed (scripts/deps.sh)"; exit 1; }
# ctdb's node port is 4379 on the node's address: pick a free 127.0.0.x.
addr=""
for x in $(shuf -i 2-250 -n 20); do
	if ! ss -Hltn "sport = :4379" 2>/dev/null | grep -qE "(127\.0\.0\.$x|0\.0\.0\.0|\*|\[::\]):4379"; then
		addr=127.0.0.$x; break
	fi
done
[ -n "$addr" ] || { echo "no free loopback address for port 4379"; exit 1; }
base=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "$base"
}
trap cleanup EXIT
mkdir -p "$base/db/volatile" "$base/db/persistent" "$base/db/state" "$base/events/legacy" "$base/run"
echo "$addr" >"$base/nodes"
cat >"$base/ctdb.conf" <<CONF
[logging]
	location = file:$base/log.ctdb
	log level = NOTICE

[cluster]
	node address = $addr

[database]
	volatile database directory = $base/db/volatile
	persistent database directory = $base/db/persistent
	state database directory = $base/db/state

[failover]
	disabled = true
CONF
export CTDB_TEST_MODE=yes CTDB_BASE=$base
echo "== starting $CTDBD on $addr with CTDB_BASE=$base"
(cd "$base" && "$CTDBD")
for _ in $(seq 100); do [ -s "$base/run/ctdbd.pid" ] && [ -S "$base/run/ctdbd.socket" ] && break; sleep 0.1; done
pid=$(cat "$base/run/ctdbd.pid")
for _ in $(seq 50); do timeout 10 ctdb status 2>/dev/null | grep -q "OK (THIS NODE)" && break; sleep 0.2; done
echo "== ctdb status"
timeout 10 ctdb status
echo "== ctdb attach demo.tdb; ctdb writekey; ctdb readkey; ctdb getdbmap"
timeout 10 ctdb attach demo.tdb >/dev/null
timeout 10 ctdb writekey demo.tdb hello world
timeout 10 ctdb readkey demo.tdb hello
timeout 10 ctdb getdbmap
echo "== stopping ctdbd (pid $pid)"
