#!/usr/bin/env bash
# Recaptures the byte fixtures in protocol/tests/fixtures/ from Debian's
# ctdb tool talking to Debian's ctdbd.
#
#   bash protocol/tests/capture.sh
#
# Starts /usr/sbin/ctdbd on a private CTDB_BASE (test mode, one node on
# 127.0.0.1, two public addresses it never hosts because failover is
# disabled), puts capture_proxy.py between the client socket and the tool
# (CTDB_SOCKET), runs a battery of tool commands and raw-client probes, and
# writes one fixture per command: lines "c2d CONN HEX" / "d2c CONN HEX", one
# packet each.  The daemon binds port 4379, so the whole run holds
# /work/ctdb-compat.lock (the script takes it itself; do not wrap it in
# another flock).  Every process it starts is stopped by its pid.
#
# The fixture test (tests/fixtures.rs) reads only the committed files.
set -euo pipefail

if [ -z "${CAPTURE_LOCKED:-}" ]; then
	export CAPTURE_LOCKED=1
	exec flock "${CTDB_COMPAT_LOCK:-/work/ctdb-compat.lock}" bash "$0" "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$HERE/fixtures
PY=/usr/bin/python3
CTDB=/usr/bin/ctdb
CTDBD=/usr/sbin/ctdbd
RAW=$ROOT/compat-tests/ctdb/rawclient.py

RUN=$(mktemp -d "${TMPDIR:-/tmp}/ctdb-capture.XXXXXX")
B=$RUN/node
DAEMON_PID=""
PROXY_PID=""

cleanup() {
	[ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill "$DAEMON_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ -z "${CAPTURE_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}
trap cleanup EXIT

mkdir -p "$B/db/volatile" "$B/db/persistent" "$B/db/state" "$B/events/legacy" "$B/run"
echo 127.0.0.1 >"$B/nodes"
printf '%s\n' "10.99.0.1/24 lo" "10.99.0.2/24 lo" >"$B/public_addresses"
echo "VacuumInterval=600" >"$B/ctdb.tunables"
printf '%s\n' '"k3" "v3"' '"k4" "v 4"' 'k5 v5' >"$B/ptrans.in"
cat >"$B/ctdb.conf" <<EOF
[logging]
	location = file:$B/log.ctdb
	log level = NOTICE

[cluster]
	node address = 127.0.0.1

[database]
	volatile database directory = $B/db/volatile
	persistent database directory = $B/db/persistent
	state database directory = $B/db/state

[failover]
	disabled = true
EOF

tool() { CTDB_TEST_MODE=yes CTDB_BASE=$B timeout 30 "$CTDB" "$@"; }

(cd "$B" && CTDB_TEST_MODE=yes CTDB_BASE=$B "$CTDBD") >"$B/start.out" 2>&1
for _ in $(seq 1 100); do
	[ -s "$B/run/ctdbd.pid" ] && [ -S "$B/run/ctdbd.socket" ] && break
	sleep 0.1
done
DAEMON_PID=$(cat "$B/run/ctdbd.pid")
ready=false
for _ in $(seq 1 120); do
	if tool runstate RUNNING >/dev/null 2>&1 &&
		tool status 2>/dev/null | grep -q "Recovery mode:NORMAL"; then
		ready=true
		break
	fi
	sleep 0.5
done
$ready || { echo "Debian's ctdbd never became ready" >&2; tail -20 "$B/log.ctdb" >&2; exit 1; }

PROXY_SOCK=$RUN/proxy.socket

# capture NAME CMD...: runs CMD with CTDB_SOCKET pointing at a fresh proxy
# and stores the packets as fixtures/NAME.txt.
capture() {
	local name=$1 f=$RUN/$1.txt line
	shift
	coproc PROXY { exec $PY "$HERE/capture_proxy.py" "$PROXY_SOCK" "$B/run/ctdbd.socket" "$f"; }
	PROXY_PID=$PROXY_PID
	read -r -t 10 line <&"${PROXY[0]}"
	[ "$line" = ready ] || { echo "proxy did not start" >&2; exit 1; }
	CTDB_SOCKET=$PROXY_SOCK "$@" >"$RUN/$name.out" 2>&1 || true
	kill "$PROXY_PID"
	wait "$PROXY_PID" 2>/dev/null || true
	PROXY_PID=""
	{ echo "# $*" | sed -e "s#$B#BASE#g" -e "s#$ROOT/##g" -e "s#$CTDB#ctdb#"; cat "$f"; } >"$OUT/$name.txt"
}

# The battery: NAME then the tool's arguments.
BATTERY=(
	"status|status"
	"pnn|pnn"
	"listnodes|listnodes"
	"uptime|uptime"
	"ping|ping"
	"getpid|getpid"
	"runstate|runstate"
	"getcapabilities|getcapabilities"
	"leader|leader"
	"listvars|listvars"
	"getvar|getvar RecoverInterval"
	"getvar-unknown|getvar NoSuchTunable"
	"setvar|setvar RecoverInterval 2"
	"setvar-obsolete|setvar VacuumLimit 5"
	"getdebug|getdebug"
	"setdebug|setdebug NOTICE"
	"attach-volatile|attach test_volatile.tdb"
	"attach-persistent|attach test_persistent.tdb persistent"
	"attach-replicated|attach test_replicated.tdb replicated"
	"getdbmap|getdbmap"
	"getdbstatus|getdbstatus test_volatile.tdb"
	"writekey|writekey test_volatile.tdb key1 value1"
	"writekey2|writekey test_volatile.tdb key2 value2"
	"readkey|readkey test_volatile.tdb key1"
	"readkey-missing|readkey test_volatile.tdb nokey"
	"deletekey|deletekey test_volatile.tdb key2"
	"catdb|catdb test_volatile.tdb"
	"cattdb|cattdb test_volatile.tdb"
	"getdbseqnum|getdbseqnum test_persistent.tdb"
	"pstore|pstore test_persistent.tdb k1 v1"
	"pfetch|pfetch test_persistent.tdb k1"
	"pdelete|pdelete test_persistent.tdb k1"
	"ptrans|ptrans test_persistent.tdb $B/ptrans.in"
	"catdb-persistent|catdb test_persistent.tdb"
	"backupdb|backupdb test_volatile.tdb $RUN/vol.bak"
	"wipedb|wipedb test_volatile.tdb"
	"restoredb|restoredb $RUN/vol.bak"
	"setdbreadonly|setdbreadonly test_volatile.tdb"
	"setdbsticky|setdbsticky test_volatile.tdb"
	"attach-detach|attach test_detach.tdb"
	"setvar-allowattach|setvar AllowClientDBAttach 0"
	"detach|detach test_detach.tdb"
	"setvar-allowattach-back|setvar AllowClientDBAttach 1"
	"statistics|statistics"
	"dbstatistics|dbstatistics test_volatile.tdb"
	"statisticsreset|statisticsreset"
	"ip|ip"
	"ip-all|ip all"
	"ipinfo|ipinfo 10.99.0.1"
	"ifaces|ifaces"
	"process-exists|process-exists 1"
	"process-exists-srvid|process-exists 1 0x1234"
	"getreclock|getreclock"
	"dumpmemory|dumpmemory"
	"nodestatus|nodestatus"
	"gettickles|gettickles 10.99.0.1"
	"getdbmap-end|getdbmap"
)

mkdir -p "$OUT"
rm -f "$OUT"/*.txt
for entry in "${BATTERY[@]}"; do
	name=${entry%%|*}
	# shellcheck disable=SC2086
	capture "$name" tool ${entry#*|}
done
# Raw-client probes: record calls and traverses, messages, smbd's controls.
capture probe-calls $PY "$RAW" "$PROXY_SOCK" calls test_volatile.tdb
capture probe-messages $PY "$RAW" "$PROXY_SOCK" messages
capture probe-smbcontrols $PY "$RAW" "$PROXY_SOCK" smbcontrols test_volatile.tdb
echo "captured $(ls "$OUT"/*.txt | wc -l) fixtures, $(cat "$OUT"/*.txt | grep -vc '^#') packets"
