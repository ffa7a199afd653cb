#!/usr/bin/env bash
# The node transport on a local cluster of our ctdbd: 3 nodes on
# 127.0.11.1-3 (NODELINK_NET overrides 127.0.11), a fourth nodes-file entry
# (.4) that never runs a daemon and is used as an impostor.  Debian's ctdb
# tool from each node: pnn of another node, ping -n all, listnodes,
# nodestatus/status connected; srvid messages from a client on node 0 to a
# client on node 2 and broadcast; a stopped node (SIGSTOP) is DISCONNECTED
# after KeepaliveInterval*KeepaliveLimit and connected again after SIGCONT;
# a SIGKILLed node is DISCONNECTED, a control to it fails, and restarted it
# is connected again; a connection from an address not in the nodes file is
# refused and logged; a peer that sends garbage is disconnected without
# harm.  Prints PASS/FAIL lines and "N passed, M failed" last.
#   flock /work/ctdb-compat.lock bash compat-tests/ctdb/nodelink.sh
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"
CTDB=${CTDB:-/usr/bin/ctdb}
NET=${NODELINK_NET:-127.0.11}
# Keepalive tunables of the test cluster: a silent node is dead after
# INTERVAL*LIMIT seconds.
INTERVAL=1
LIMIT=3
if [ -z "${CTDBD_BIN:-}" ]; then
	case $BUILT in /*) ;; *) BUILT=$ROOT/$BUILT ;; esac
	CTDBD_BIN=$BUILT/ctdbd
fi

# Its own counting: bad's details come from a file, and the exit status is 0.
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { # bad NAME [DETAIL-FILE]
	echo "FAIL $1"
	fail=$((fail + 1))
	[ -n "${2:-}" ] && [ -f "$2" ] && head -n 30 "$2" | sed 's/^/    /'
}
finish() {
	echo "$pass passed, $fail failed"
	exit 0
}

[ -x "$CTDBD_BIN" ] || { bad "build: no binary at $CTDBD_BIN (run make build first)"; finish; }
[ -x "$CTDB" ] || { bad "setup: Debian's ctdb tool ($CTDB) is not installed"; finish; }

DIR=$(mktemp -d /tmp/nodelink.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	if [ "$fail" = 0 ]; then rm -rf "$DIR"; else echo "    (logs kept in $DIR)"; fi
}
trap cleanup EXIT

base() { echo "$DIR/node$1"; }

make_base() { # make_base K
	local b
	b=$(base "$1")
	ctdb_base "$b" "$NET.$(($1 + 1))"
	printf '%s\n' "$NET.1" "$NET.2" "$NET.3" "$NET.4" >"$b/nodes"
	printf 'KeepaliveInterval=%s\nKeepaliveLimit=%s\n' "$INTERVAL" "$LIMIT" >"$b/ctdb.tunables"
}

tool() { # tool K ARGS...: Debian's ctdb against node K
	local b
	b=$(base "$1")
	shift
	CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 30 "$CTDB" "$@"
}

start() { # start K: starts node K (it forks), records its pid
	local b i
	b=$(base "$1")
	rm -f "$b/run/ctdbd.pid"
	(cd "$b" && CTDB_TEST_MODE=yes CTDB_BASE=$b "$CTDBD_BIN") >"$b/start.out" 2>&1 || return 1
	for i in $(seq 100); do
		if [ -s "$b/run/ctdbd.pid" ] && [ -S "$b/run/ctdbd.socket" ]; then
			PIDS[$1]=$(cat "$b/run/ctdbd.pid")
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# flags_of K PNN: the flags word node K's nodestatus shows for PNN
# ("OK", "UNHEALTHY", "DISCONNECTED|UNHEALTHY", ...).
flags_of() {
	tool "$1" nodestatus "$2" 2>/dev/null | awk -v a="$NET.$(($2 + 1))" '$2 == a { print $3 }'
}

# is_state FLAGS WANT: WANT "connected" (shown, without DISCONNECTED: OK, or
# UNHEALTHY until the recovery daemon has the node's own flags, as on
# Samba's) or "disconnected".
is_state() {
	case $2 in
	connected) [ -n "$1" ] && [[ $1 != *DISCONNECTED* ]] ;;
	disconnected) [[ $1 == *DISCONNECTED* ]] ;;
	esac
}

# wait_flags K PNN WANT SECONDS: until node K shows PNN connected or
# disconnected (is_state); prints how long it took.
wait_flags() {
	local k=$1 p=$2 want=$3 secs=$4 t0 f
	t0=$(date +%s.%N)
	while :; do
		f=$(flags_of "$k" "$p")
		if is_state "$f" "$want"; then
			echo "node $k sees pnn $p as $f after $(echo "$(date +%s.%N) - $t0" | bc) s"
			return 0
		fi
		if [ "$(echo "$(date +%s.%N) - $t0 > $secs" | bc)" = 1 ]; then
			echo "node $k sees pnn $p as '$f' after $secs s"
			return 1
		fi
		sleep 0.2
	done
}

# all_connected K: node K sees nodes 0-2 connected (the fourth is never up).
all_connected() {
	local p
	for p in 0 1 2; do wait_flags "$1" "$p" connected 15 || return 1; done
}

check() { # check NAME COMMAND...: PASS when COMMAND exits 0
	local name=$1
	shift
	if "$@" >"$DIR/out" 2>&1; then ok "$name"; else bad "$name" "$DIR/out"; fi
}

for k in 0 1 2; do make_base "$k"; done
for k in 0 1 2; do
	start "$k" || { bad "start node $k" "$(base "$k")/start.out"; finish; }
done
for k in 0 1 2; do check "node $k sees nodes 0-2 connected" all_connected "$k"; done

# pnn_of K P: `ctdb -n P getpid` on node K names node P's daemon (GET_PID
# forwarded to P); `ctdb pnn` takes no -n in 4.17.
pnn_of() {
	local got
	got=$(tool "$1" -n "$2" getpid)
	echo "ctdb -n $2 getpid on node $1: $got (node $2 is pid ${PIDS[$2]})"
	[ "$got" = "${PIDS[$2]}" ]
}
check "ctdb -n 2 getpid from node 0" pnn_of 0 2
check "ctdb -n 0 getpid from node 1" pnn_of 1 0
check "ctdb -n 1 getpid from node 2" pnn_of 2 1

# ping_all K: `ctdb -n P ping` from node K answers for each node P (the
# 4.17 tool takes only a number for -n).
ping_all() {
	local out p
	for p in 0 1 2; do
		out=$(tool "$1" -n "$p" ping) || { echo "$out"; return 1; }
		echo "$out"
		grep -q "^response from $p time=" <<<"$out" || return 1
	done
}
check "ctdb -n P ping from node 0 for every node" ping_all 0
check "ctdb -n P ping from node 2 for every node" ping_all 2

listnodes() {
	[ "$(tool "$1" listnodes | tr '\n' ' ')" = "$NET.1 $NET.2 $NET.3 $NET.4 " ]
}
check "ctdb listnodes on node 1" listnodes 1

nodestatus_all() {
	local out
	out=$(tool "$1" nodestatus all)
	echo "$out"
	for p in 0 1 2; do
		grep -E "^pnn:$p $NET.$((p + 1)) " <<<"$out" | grep -qv DISCONNECTED || return 1
	done
	grep -qE "^pnn:3 $NET.4 +DISCONNECTED" <<<"$out"
}
for k in 0 1 2; do check "ctdb nodestatus all on node $k" nodestatus_all "$k"; done
status_all() {
	local out
	out=$(tool "$1" status)
	echo "$out"
	grep -q "^Number of nodes:4" <<<"$out" &&
		grep -qE "^pnn:$1 $NET.$(($1 + 1)) +[A-Z|]+ \(THIS NODE\)" <<<"$out" &&
		[ "$(grep -E "^pnn:[0-2] " <<<"$out" | grep -cv DISCONNECTED)" = 3 ]
}
check "ctdb status on node 1" status_all 1

# --- srvid messages between nodes --------------------------------------
MSG=$HERE/nodemsg.py
SRVID=0xAE00000000011000
message_to() { # message_to FROM DEST-PNN: a client of FROM to one on DEST
	local from=$1 to=$2 out=$DIR/listen.$2
	python3 "$MSG" "$(base "$to")/run/ctdbd.socket" listen $SRVID 3 >"$out" &
	local lp=$!
	for _ in $(seq 50); do grep -q ready "$out" 2>/dev/null && break; sleep 0.1; done
	python3 "$MSG" "$(base "$from")/run/ctdbd.socket" send "$to" $SRVID "hello-$from-$to"
	wait $lp
	cat "$out"
	grep -qx "got hello-$from-$to" "$out"
}
check "message from a client on node 0 to a client on node 2" message_to 0 2
check "message from a client on node 2 to a client on node 1" message_to 2 1
broadcast() { # a broadcast from node 0 reaches a client on every node, once
	local k lp=()
	for k in 0 1 2; do
		python3 "$MSG" "$(base "$k")/run/ctdbd.socket" listen $SRVID 3 >"$DIR/bc.$k" &
		lp+=($!)
	done
	for k in 0 1 2; do
		for _ in $(seq 50); do grep -q ready "$DIR/bc.$k" 2>/dev/null && break; sleep 0.1; done
	done
	python3 "$MSG" "$(base 0)/run/ctdbd.socket" send "$1" $SRVID "to-$1"
	wait "${lp[@]}"
	for k in 0 1 2; do
		echo "node $k: $(tr '\n' ' ' <"$DIR/bc.$k")"
		[ "$(grep -cx "got to-$1" "$DIR/bc.$k")" = 1 ] || return 1
	done
}
check "CTDB_BROADCAST_ALL message reaches clients on all nodes once" broadcast all
check "CTDB_BROADCAST_CONNECTED message reaches clients on all nodes once" broadcast connected

# --- a silent node: keepalives ---------------------------------------------
LIMIT_S=$((INTERVAL * LIMIT))
kill -STOP "${PIDS[1]}"
check "SIGSTOPped node 1 is DISCONNECTED on node 0 within $((LIMIT_S + 2)) s" \
	wait_flags 0 1 disconnected $((LIMIT_S + 2))
check "SIGSTOPped node 1 is DISCONNECTED on node 2" wait_flags 2 1 disconnected 3
grep_log() { grep -E "$2" "$(base "$1")/log.ctdb"; }
check "node 0 logged the dead count" grep_log 0 "dead count reached for node 1"
kill -CONT "${PIDS[1]}"
check "node 1 is connected again after SIGCONT (node 0)" wait_flags 0 1 connected 10
check "node 1 is connected again after SIGCONT (node 2)" wait_flags 2 1 connected 10
check "node 1 sees all connected after SIGCONT" all_connected 1

# --- a killed node -----------------------------------------------------------
kill -KILL "${PIDS[1]}"
check "SIGKILLed node 1 is DISCONNECTED on node 0" wait_flags 0 1 disconnected $((LIMIT_S + 2))
check "SIGKILLed node 1 is DISCONNECTED on node 2" wait_flags 2 1 disconnected $((LIMIT_S + 2))
control_to_dead() {
	local out
	out=$(python3 "$MSG" "$(base 0)/run/ctdbd.socket" control 1 3)
	echo "$out"
	[ "$out" = "status -1 errmsg ctdb_control to disconnected node" ]
}
check "a control to the dead node fails at once" control_to_dead
ping_dead() {
	local out
	out=$(tool 0 -n 1 ping 2>&1)
	echo "$out"
	! grep -q "^response from" <<<"$out"
}
check "ctdb -n 1 ping from node 0 fails while node 1 is dead" ping_dead
rm -f "$(base 1)/run/ctdbd.socket"
if start 1; then ok "restart node 1"; else bad "restart node 1" "$(base 1)/start.out"; fi
for k in 0 1 2; do check "node $k sees nodes 0-2 connected after the restart" all_connected "$k"; done
check "ctdb -n 1 getpid from node 0 after the restart" pnn_of 0 1

# --- strangers and garbage ------------------------------------------------------
stranger() { # a connection from $NET.9 is refused and logged
	python3 - "$NET" <<'EOF'
import socket, sys, time
net = sys.argv[1]
s = socket.socket()
s.bind((net + ".9", 0))
s.connect((net + ".1", 4379))
s.settimeout(5)
# The daemon closes it: EOF (or a reset) comes back.
try:
    data = s.recv(1)
except ConnectionResetError:
    data = b""
sys.exit(0 if data == b"" else 1)
EOF
	sleep 0.3
	grep_log 0 "Refused connection from unknown node $NET.9"
}
check "a connection from $NET.9 is refused and logged" stranger
garbage() { # node 3's address sends a bad magic: disconnected, node 0 lives on
	python3 - "$NET" <<'EOF'
import socket, struct, sys, time
net = sys.argv[1]
s = socket.socket()
s.bind((net + ".4", 0))
s.connect((net + ".1", 4379))
s.settimeout(5)
# A well-formed header with a wrong version, then garbage.
s.sendall(struct.pack("<IIIIIIII", 32, 0x43544442, 99, 0, 7, 0, 3, 1))
try:
    data = s.recv(1)
except ConnectionResetError:
    data = b""
sys.exit(0 if data == b"" else 1)
EOF
	sleep 0.3
	grep_log 0 "Bad packet from node 3" && pnn_of 0 2 && [ "$(tool 0 pnn)" = 0 ]
}
check "a peer sending a bad version is disconnected, node 0 still serves" garbage
check "node 0 still sees nodes 0-2 connected" all_connected 0

for k in 0 1 2; do
	kill "${PIDS[$k]}" 2>/dev/null
done
finish
