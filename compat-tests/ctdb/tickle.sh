#!/usr/bin/env bash
# Clients follow the address (issue 15, item 2), on our ctdbd and
# ctdb_killtcp and on Debian's, side by side, in network namespaces this
# suite builds:
#
#   compat-tests/ctdb/tickle.sh [FILTER]      FILTER: killtcp or failover
#
# killtcp: a server namespace (192.0.2.1) and a client namespace
# (192.0.2.100) on a bridge hold real TCP connections; each ctdb_killtcp
# resets one the way 10.interface's releaseip does (one-way for port 445:
# the server end only; both ways for port 2049, so the client sees the
# reset; and both ways over IPv6, 2001:db8::/64), exits 0, and says the
# same as the other for bad input.
#
# failover: a 2-node cluster, every node in its own network and mount
# namespace (node addresses 198.51.100.1-2, public address 192.0.2.1 on
# each node's eth0, all on the bridge) and NOT in test mode: Samba sends
# ARPs and tickle ACKs only outside test mode, so each node gets its own
# /etc/ctdb, /run and /var/lib/ctdb by bind mounts in its mount namespace.
# A legacy event script (10.testip) puts the address on eth0 at takeip and
# removes it at releaseip, as 10.interface would.  A client connects to
# 192.0.2.1:445 on node 0, which registers the connection (TCP_CLIENT from
# a local client, as smbd does); a second registration's client goes away
# and its connection must leave the tickle lists on both nodes.  Then node
# 0 dies (its processes killed, its link down): node 1 takes the address
# over, must send gratuitous ARPs (3 rounds of a request and a reply) and
# a tickle ACK that gets the client's connection reset at once (measured
# from the first ARP); its tickle list is then empty.  `ctdb gettickles`
# output must be the same on both kinds at each step.
#
# scripts/cluster.sh is not used: its clusters run in test mode on one
# network stack.  Environment: CTDBD_BIN (our ctdbd), KILLTCP_BIN (our
# ctdb_killtcp), TICKLE_KINDS (the failover's daemons, "ours debian" by
# default: the comparisons need both), COMPAT_KEEP=1 keeps the run
# directory.  Prints PASS/FAIL
# lines, the measured times, and "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"

reexec_unshared TICKLE_NETNS -n -- "$@"
loopback_up
ip link add br0 type bridge
ip link set br0 up

FILTER=${1:-}
CTDBD_BIN=${CTDBD_BIN:-$BUILT/ctdbd}
KILLTCP_BIN=${KILLTCP_BIN:-$BUILT/ctdb_killtcp}
# Absolute: the nodes and the client run in namespaces of their own (nsenter
# may start them in another directory).
CTDBD_BIN=$(realpath -m "$CTDBD_BIN")
KILLTCP_BIN=$(realpath -m "$KILLTCP_BIN")
DEB_KILLTCP=/usr/libexec/ctdb/ctdb_killtcp
DEB_CTDBD=/usr/sbin/ctdbd
CTDB_TOOL=${CTDB_TOOL:-/usr/bin/ctdb}
HELPER="python3 $HERE/tickle.py"
KINDS=${TICKLE_KINDS:-ours debian}
RUN=$(new_run_dir ctdb-tickle)
HOLDERS=() # the processes holding namespaces, and other helpers: by pid

cleanup() {
	local p
	for d in "$RUN"/*/node*; do
		[ -e "$d/sid" ] && kill_session "$(cat "$d/sid")"
	done
	for p in "${HOLDERS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	remove_run
}
trap cleanup EXIT

# kill_session SID: every process of session SID, by pid.
kill_session() {
	local p
	for p in $(ps -e -o pid= -o sid= | awk -v s="$1" '$2 == s { print $1 }'); do
		kill -KILL "$p" 2>/dev/null
	done
}

# new_ns: a new network and mount namespace, held by a sleeping process;
# prints its pid.
new_ns() {
	unshare -n -m --propagation private sleep 100000 >/dev/null 2>&1 &
	echo $!
}

# in_ns PID CMD...: CMD in the namespaces of PID.
in_ns() {
	local pid=$1
	shift
	nsenter -t "$pid" -n -m -- "$@"
}

# plug NAME PID ADDR/BITS...: a veth pair, one end (b-NAME) on the bridge,
# the other as eth0 of namespace PID with these addresses.
plug() {
	local name=$1 pid=$2 a
	shift 2
	ip link add "v-$name" type veth peer name "b-$name"
	ip link set "b-$name" master br0 up
	ip link set "v-$name" netns "$pid"
	in_ns "$pid" ip link set lo up
	in_ns "$pid" ip link set "v-$name" name eth0
	for a in "$@"; do in_ns "$pid" ip addr add "$a" dev eth0; done
	in_ns "$pid" ip link set eth0 up
}

# background PID CMD...: CMD in namespace PID, in the background; its pid
# is remembered for cleanup and left in BG.
background() {
	local pid=$1
	shift
	nsenter -t "$pid" -n -m -- "$@" &
	BG=$!
	disown "$BG"
	HOLDERS+=("$BG")
}

# stop_bg PID: a background helper killed.
stop_bg() {
	kill -KILL "$1" 2>/dev/null
}

has_line() { [ -s "$1" ] && grep -q "$2" "$1"; }

# ---------------------------------------------------------------- killtcp

# established PID PORT PEER: namespace PID has an established connection
# from PEER (ADDR:PORT) to its port PORT.
established() {
	in_ns "$1" ss -Htn state established "( sport = :$2 )" | grep -qF "$3"
}

# kill_one KIND BIN PORT TWOWAY [SERVER]: a fresh connection to SERVER
# (192.0.2.1 unless given; "[…]" for IPv6) port PORT, reset by BIN; checks
# the server end is gone and the client end reset (TWOWAY=1) or left
# alone (0).
kill_one() {
	local kind=$1 bin=$2 port=$3 twoway=$4 server=${5:-192.0.2.1}
	local out=$RUN/conn.$1.$3 peer input rc t0 t1 bare
	bare=${server#[}
	bare=${bare%]}
	background "$CLI" $HELPER connect "$bare" "$port" "$out"
	local client=$BG
	if ! wait_for 10 has_line "$out" ":"; then
		bad "$kind killtcp port $port" "the client did not connect"
		return
	fi
	peer=$(head -n 1 "$out")
	wait_for 5 established "$SRV" "$port" "$peer"
	input="$peer $server:$port"
	[ "$twoway" = 1 ] && input="$input
$server:$port $peer"
	t0=$(now)
	echo "$input" | in_ns "$SRV" "$bin" eth0 >"$RUN/killtcp.$kind.$port.out" 2>&1
	rc=$?
	t1=$(now)
	if [ $rc != 0 ]; then
		bad "$kind killtcp port $port" "exit $rc: $(cat "$RUN/killtcp.$kind.$port.out")"
	elif established "$SRV" "$port" "$peer"; then
		bad "$kind killtcp port $port" "the server end of $peer is still established"
	elif [ "$twoway" = 1 ] && ! wait_for 3 has_line "$out" "^reset"; then
		bad "$kind killtcp port $port" "the client was not reset: $(tail -n 1 "$out")"
	elif [ "$twoway" = 0 ] && sleep 0.5 && has_line "$out" "^reset"; then
		bad "$kind killtcp port $port" "one-way kill reset the client too"
	else
		ok "$kind ctdb_killtcp resets $peer -> $server:$port ($([ "$twoway" = 1 ] && echo both ways || echo server end), $(elapsed "$t0" "$t1") s)"
	fi
	stop_bg "$client"
}

# messages BIN: what BIN says and its status for bad and empty input.
messages() {
	local bin=$1
	run() {
		echo "== $1"
		shift
		"$@" 2>&1 | sed -e "s|$bin|KILLTCP|g"
		echo "status ${PIPESTATUS[0]}"
	}
	run "no arguments" "$bin"
	run "three arguments" "$bin" eth0 192.0.2.100:1
	run "bad address" "$bin" eth0 foo 192.0.2.1:445
	run "bad port" "$bin" eth0 192.0.2.100:x 192.0.2.1:445
	run "bad line" sh -c "echo 'garbage' | $bin eth0"
	run "one address on a line" sh -c "echo '192.0.2.100:1' | $bin eth0"
	run "mixed families on a line" sh -c "echo '192.0.2.100:1 [2001:db8::1]:445' | $bin eth0"
	run "empty input" sh -c "printf '\n# comment\n' | $bin eth0"
}

killtcp_suite() {
	SRV=$(new_ns)
	CLI=$(new_ns)
	HOLDERS+=("$SRV" "$CLI")
	plug srv "$SRV" 192.0.2.1/24
	plug cli "$CLI" 192.0.2.100/24
	in_ns "$SRV" ip addr add 2001:db8::1/64 dev eth0 nodad
	in_ns "$CLI" ip addr add 2001:db8::100/64 dev eth0 nodad
	background "$SRV" $HELPER serve 192.0.2.1 445
	background "$SRV" $HELPER serve 192.0.2.1 2049
	background "$SRV" $HELPER serve 2001:db8::1 139
	sleep 0.3
	kill_one ours "$KILLTCP_BIN" 445 0
	kill_one debian "$DEB_KILLTCP" 445 0
	kill_one ours "$KILLTCP_BIN" 2049 1
	kill_one debian "$DEB_KILLTCP" 2049 1
	kill_one ours "$KILLTCP_BIN" 139 1 "[2001:db8::1]"
	kill_one debian "$DEB_KILLTCP" 139 1 "[2001:db8::1]"
	local a b
	a=$(messages "$KILLTCP_BIN")
	b=$(messages "$DEB_KILLTCP")
	if [ "$a" = "$b" ]; then
		ok "ctdb_killtcp: usage, bad input and empty input read the same"
	else
		bad "ctdb_killtcp messages" "$(diff <(echo "$a") <(echo "$b"))"
	fi
}

# --------------------------------------------------------------- failover

# layout DIR K: node K's directories and configuration.
layout() {
	local dir=$1 k=$2 b=$1/node$2
	mkdir -p "$b/run/ctdb" "$b/var" "$b/db/volatile" "$b/db/persistent" "$b/db/state" "$b/events/legacy"
	printf '198.51.100.1\n198.51.100.2\n' >"$b/nodes"
	echo "192.0.2.1/24 eth0" >"$b/public_addresses"
	printf '%s\n' KeepaliveInterval=1 KeepaliveLimit=2 RecoverInterval=1 ElectionTimeout=2 \
		RerecoveryTimeout=2 TickleUpdateInterval=1 MonitorInterval=2 >"$b/ctdb.tunables"
	cat >"$b/ctdb.conf" <<EOF
[logging]
	location = file:$b/log.ctdb
	log level = INFO

[cluster]
	cluster lock = $dir/cluster.lock
	node address = 198.51.100.$((k + 1))
	leader timeout = 2

[database]
	volatile database directory = $b/db/volatile
	persistent database directory = $b/db/persistent
	state database directory = $b/db/state

[failover]
	disabled = false
EOF
	cat >"$b/events/legacy/10.testip.script" <<'EOF'
#!/bin/sh
# The address work of 10.interface, nothing else.
case "$1" in
takeip) ip addr add "$3/$4" dev "$2" ;;
releaseip) ip addr del "$3/$4" dev "$2" ;;
esac
exit 0
EOF
	chmod +x "$b/events/legacy/10.testip.script"
}

# start_node DIR K BIN: node K's namespace (its pid in DIR/nodeK/ns), its
# mounts, and its daemon (not in test mode).
start_node() {
	local dir=$1 k=$2 bin=$3 b=$1/node$2 ns i pid
	ns=$(new_ns)
	HOLDERS+=("$ns")
	echo "$ns" >"$b/ns"
	plug "$(basename "$dir")$k" "$ns" "198.51.100.$((k + 1))/24"
	in_ns "$ns" mount --bind "$b" /etc/ctdb
	in_ns "$ns" mount --bind "$b/run" /run
	in_ns "$ns" mount --bind "$b/var" /var/lib/ctdb
	(in_ns "$ns" env -u CTDB_TEST_MODE CTDB_BASE=/etc/ctdb setsid "$bin") >>"$b/start.out" 2>&1 </dev/null
	for i in $(seq 1 150); do
		if [ -s "$b/run/ctdb/ctdbd.pid" ] && [ -S "$b/run/ctdb/ctdbd.socket" ]; then
			pid=$(cat "$b/run/ctdb/ctdbd.pid")
			ps -o sid= -p "$pid" | tr -d ' ' >"$b/sid"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# tool DIR K ARGS...: Debian's ctdb tool against node K.
tool() {
	local b=$1/node$2
	shift 2
	in_ns "$(cat "$b/ns")" timeout 20 "$CTDB_TOOL" "$@"
}

holds() { # holds DIR K PNN: node K sees 192.0.2.1 on node PNN
	tool "$1" "$2" ip | grep -q "^192.0.2.1 $3\$"
}
node_ok() { # node_ok DIR K: node K is OK and in normal recovery mode
	local s
	s=$(tool "$1" "$2" status) || return 1
	echo "$s" | grep -q "pnn:$2 .*OK (THIS NODE)" && echo "$s" | grep -q "Recovery mode:NORMAL"
}
tickles_show() { # tickles_show DIR K PATTERN: gettickles output matches
	tool "$1" "$2" gettickles 192.0.2.1 | grep -qE "$3"
}

# gettickles DIR K PORT: node K's tickle list of 192.0.2.1, the client's
# port (which differs from run to run) replaced by PORT.
gettickles() {
	tool "$1" "$2" gettickles 192.0.2.1 2>&1 | sed -e "s/192\.0\.2\.100:$3\b/192.0.2.100:CLIENTPORT/"
}

# failover_run KIND BIN: the scenario on one kind; results in $RUN/KIND.*.
failover_run() {
	local kind=$1 bin=$2 dir=$RUN/$1 out port reg1 reg2 t0 n0 n1 mac1
	mkdir -p "$dir"
	layout "$dir" 0
	layout "$dir" 1
	start_node "$dir" 0 "$bin" || { bad "$kind failover" "node 0 did not start"; return; }
	wait_for 40 holds "$dir" 0 0 || { bad "$kind failover" "node 0 never took 192.0.2.1"; return; }
	start_node "$dir" 1 "$bin" || { bad "$kind failover" "node 1 did not start"; return; }
	wait_for 40 node_ok "$dir" 1 && wait_for 20 holds "$dir" 1 0 ||
		{ bad "$kind failover" "node 1 never became OK seeing 192.0.2.1 on node 0"; return; }
	n0=$(cat "$dir/node0/ns")
	n1=$(cat "$dir/node1/ns")
	note "$kind: 2 nodes up, 192.0.2.1 on node 0"
	background "$n0" $HELPER serve 192.0.2.1 445
	out=$RUN/$kind.client
	background "$CLI" $HELPER connect 192.0.2.1 445 "$out"
	wait_for 10 has_line "$out" ":" || { bad "$kind failover" "the client did not connect"; return; }
	port=$(head -n 1 "$out" | sed -e 's/.*://')
	# smbd's registrations: the real connection (held), and one whose
	# client goes away.
	exec {reg1}> >(in_ns "$n0" $HELPER register /run/ctdb/ctdbd.socket "192.0.2.100:$port" 192.0.2.1:445 >"$RUN/$kind.reg1")
	wait_for 10 has_line "$RUN/$kind.reg1" status
	exec {reg2}> >(in_ns "$n0" $HELPER register /run/ctdb/ctdbd.socket 192.0.2.100:40000 192.0.2.1:445 >"$RUN/$kind.reg2")
	wait_for 10 has_line "$RUN/$kind.reg2" status
	wait_for 10 tickles_show "$dir" 1 "Num connections: 2"
	gettickles "$dir" 1 "$port" >"$RUN/$kind.tickles.registered"
	echo "reg1 $(cat "$RUN/$kind.reg1") reg2 $(cat "$RUN/$kind.reg2")" >>"$RUN/$kind.tickles.registered"
	exec {reg2}>&-
	wait_for 10 tickles_show "$dir" 1 "Num connections: 1"
	sleep 1
	{
		echo "== node 0"
		gettickles "$dir" 0 "$port"
		echo "== node 1"
		gettickles "$dir" 1 "$port"
	} >"$RUN/$kind.tickles.gone"
	background "$CLI" $HELPER announces eth0 "$RUN/$kind.arps"
	mac1=$(in_ns "$n1" ip -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	sleep 0.3
	t0=$(now)
	kill_session "$(cat "$dir/node0/sid")"
	ip link set "b-${kind}0" down
	note "$kind: node 0 killed and off the network"
	if wait_for 30 has_line "$out" "^reset"; then
		echo "$t0 $(awk '$1 == "reset" { print $2 }' "$out")" >"$RUN/$kind.reset"
	else
		echo "$t0 never $(tail -n 1 "$out")" >"$RUN/$kind.reset"
	fi
	sleep 3.5
	echo "$mac1" >"$RUN/$kind.mac"
	gettickles "$dir" 1 "$port" >"$RUN/$kind.tickles.after"
	tool "$dir" 1 ip >"$RUN/$kind.ip.after" 2>&1
	# ctdb gratarp, IPv4 and IPv6, on the survivor.
	tool "$dir" 1 gratarp 192.0.2.77 eth0 >"$RUN/$kind.gratarp" 2>&1
	echo "status $?" >>"$RUN/$kind.gratarp"
	tool "$dir" 1 gratarp 2001:db8::77 eth0 >>"$RUN/$kind.gratarp" 2>&1
	echo "status $?" >>"$RUN/$kind.gratarp"
	sleep 2.5
	exec {reg1}>&-
	kill_session "$(cat "$dir/node1/sid")"
	# Off the bridge: the next kind's nodes use the same addresses.
	ip link del "b-${kind}0"
	ip link del "b-${kind}1"
}

# failover_check KIND: the checks on one kind's results.
failover_check() {
	local kind=$1 mac t0 reset first rounds gratuitous
	[ -e "$RUN/$kind.reset" ] || return
	mac=$(cat "$RUN/$kind.mac")
	read -r t0 reset _ <"$RUN/$kind.reset"
	gratuitous=$(grep -c " gratuitous 192.0.2.1 $mac\$" "$RUN/$kind.arps")
	rounds=$(grep -c " request gratuitous 192.0.2.1 $mac\$" "$RUN/$kind.arps")
	first=$(awk -v m="$mac" '$4 == "192.0.2.1" && $5 == m { print $1; exit }' "$RUN/$kind.arps")
	local v4 v6
	v4=$(grep -c " gratuitous 192.0.2.77 $mac\$" "$RUN/$kind.arps")
	v6=$(grep -c " advert na-override-hlim255-sum-ok 2001:db8::77 $mac\$" "$RUN/$kind.arps")
	if [ "$v4" = 6 ] && [ "$v6" = 3 ] && [ "$(grep -c '^status 0$' "$RUN/$kind.gratarp")" = 2 ]; then
		ok "$kind: ctdb gratarp sent 3 ARP rounds for 192.0.2.77 and 3 valid neighbour advertisements for 2001:db8::77"
	else
		bad "$kind gratarp" "$v4 ARP frames, $v6 advertisements: $(cat "$RUN/$kind.gratarp") $(grep '\.77 ' "$RUN/$kind.arps")"
	fi
	if grep -q "^192.0.2.1 1$" "$RUN/$kind.ip.after"; then
		ok "$kind: node 1 holds 192.0.2.1 after node 0 died"
	else
		bad "$kind takeover" "$(cat "$RUN/$kind.ip.after")"
	fi
	if [ "$rounds" = 3 ] && [ "$gratuitous" = 6 ]; then
		ok "$kind: node 1 sent 3 gratuitous ARP requests and 3 replies for 192.0.2.1"
	else
		bad "$kind ARPs" "$rounds requests, $gratuitous gratuitous frames from $mac: $(cat "$RUN/$kind.arps" 2>/dev/null)"
	fi
	if [ "$reset" = never ] || [ -z "$first" ]; then
		bad "$kind tickle" "the client's connection was not reset (first ARP ${first:-none})"
		return
	fi
	local after_arp since_kill
	after_arp=$(elapsed "$first" "$reset")
	since_kill=$(elapsed "$t0" "$reset")
	if awk -v d="$after_arp" 'BEGIN { exit !(d < 0.5) }'; then
		ok "$kind: the client's connection was reset ${after_arp} s after the first ARP"
	else
		bad "$kind tickle" "the reset came ${after_arp} s after the first ARP"
	fi
	echo "# $kind: reset ${since_kill} s after node 0 died, ${after_arp} s after the first ARP"
}

# same_on_both WHAT FILE: ours and Debian's wrote the same FILE.
same_on_both() {
	local a=$RUN/ours.$2 b=$RUN/debian.$2
	if [ -e "$a" ] && [ -e "$b" ] && cmp -s "$a" "$b"; then
		ok "$1 (same on both)"
	else
		bad "$1" "ours and Debian's differ (< ours, > Debian's):
$(diff "$a" "$b" 2>&1 | head -20)"
	fi
}

failover_suite() {
	CLI=$(new_ns)
	HOLDERS+=("$CLI")
	plug client "$CLI" 192.0.2.100/24
	[[ " $KINDS " == *" debian "* ]] && failover_run debian "$DEB_CTDBD"
	[[ " $KINDS " == *" ours "* ]] && failover_run ours "$CTDBD_BIN"
	if [ "$KINDS" = "ours debian" ]; then
		same_on_both "registered connections on the other node (gettickles)" tickles.registered
		same_on_both "a gone client's connection left both nodes' lists (gettickles)" tickles.gone
		same_on_both "the new holder's tickle list after the takeover (gettickles)" tickles.after
	fi
	failover_check debian
	failover_check ours
}

for b in "$CTDBD_BIN" "$KILLTCP_BIN"; do
	[ -x "$b" ] || {
		echo "no $b" >&2
		exit 1
	}
done
wanted killtcp && killtcp_suite
wanted failover && failover_suite
finish
