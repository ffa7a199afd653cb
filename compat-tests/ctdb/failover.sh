#!/usr/bin/env bash
# Clustered Samba fails over (issue 15, item 6): three ctdbd nodes, each with
# Debian's smbd (`clustering = yes`, on its own node's socket) serving one
# shared directory, public addresses moved by the event scripts; a client in
# a namespace of its own holds files open and locked through them; the node
# serving the client's address is killed.
#
#   compat-tests/ctdb/failover.sh [FILTER]
#
# The network is built here and nowhere else: the suite re-executes itself in
# a private mount namespace with its own /run/netns, where it makes the
# namespaces br (a bridge br0), n0 n1 n2 (the nodes, eth0 on the bridge, node
# addresses 192.0.2.1-3/24) and cl (the client, eth0 198.51.100.200/24).  The
# public addresses 198.51.100.1-3/24 (any node, eth0) are put on and taken off
# eth0 by Debian's 10.interface event script.  The host's interfaces are never
# touched; the namespaces go with their processes (trap EXIT).
#
# Each node's CTDB_BASE is laid out by scripts/cluster.sh (layout, then
# start-node inside its namespace, CLUSTER_SYSTEM_PATHS: not in CTDB test
# mode, where Samba's ctdbd sends no gratuitous ARP and no tickle ACK, but
# as installed, with the node's directories mounted on /etc/ctdb, /run/ctdb
# and /var/lib/ctdb in a mount namespace of its own) plus what an admin
# adds for the legacy event scripts: Debian's `functions` and `notify.sh`,
# and `ctdb event script enable legacy` of 00.ctdb and 10.interface.
# 50.samba is not enabled: it starts and stops smbd through the host's
# service manager (the host's smbd, not this node's), so the suite starts
# each node's smbd itself, in the node's namespace.
#
# Scenario, per kind of daemon: the cluster comes up (every node OK, which
# on Debian's ctdbd means its first monitor event passed) and every public
# address is on exactly one node's eth0; smbd runs on each node; the client
# writes data.bin through one address with smbclient and reads it back
# through another; it holds fa.txt open (sharing read only) and locked
# (bytes 0-99) through address P on node X, and fb.txt the same way through
# address Q on another node Y; the tickle lists of P name the held
# connection on every node; fb.txt's share mode and lock are enforced for a
# client coming through P.  Then node X dies: its bridge port goes down (a
# dead machine neither answers ARP for the addresses it had nor closes its
# clients' connections) and its ctdbd and smbd are killed with SIGKILL by
# pid.  Measured from that moment: (a) until `ctdb ip` on a survivor shows P
# on another node, until P is on that node's eth0, and until the client's
# ARP entry for P names that node (a gratuitous ARP); (b) until the held
# connection to P is reset (the client sends nothing, so only a tickle ACK
# answered with a reset can end it; also checked with ss in the client's
# namespace), and a session of Debian's smbclient through P must be reset
# with it (NT_STATUS_CONNECTION_RESET on its next command or echo); (c) until a new connection to P reads data.bin (the same
# bytes), and until the held client's own reconnection does.  After it:
# fb.txt (held through Y) is still protected for clients coming through P,
# the connection to Q is untouched, fa.txt (held through the dead node) can
# be opened exclusively and locked again, the survivors show X DISCONNECTED
# and serve all three addresses; smbclient through P reads data.bin.
#
# Kinds: Debian's /usr/sbin/ctdbd, then ours (CTDBD_BIN, default
# target/release/ctdbd, with the ctdb-eventd built beside it), and the
# figures of both side by side.  FAILOVER_OURS=0 leaves ours out.
#
# Environment: FAILOVER_OURS, FAILOVER_VICTIM=leader (P is an address the
# leader holds, so the leader dies; by default P is 198.51.100.1, wherever
# it is), CTDBD_BIN, SMB_USER (an existing unix
# account, default daemon), COMPAT_KEEP=1 keeps the directory.  Needs root,
# network namespaces, Debian's ctdb, samba, smbclient, ethtool (10.interface
# monitors the link with it), iptables (10.interface blocks an address while
# releasing it) and python3-impacket (SMB2 byte-range locks: the client in
# smbclient_failover.py).  Prints PASS/FAIL lines, the figures,
# and "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"

reexec_unshared FAILOVER_MNTNS -m --propagation private -- "$@"
mkdir -p /run/netns
mount -t tmpfs -o size=1m failover-netns /run/netns || {
	echo "FAIL setup: no private /run/netns (mount namespace)"
	echo "0 passed, 1 failed"
	exit 1
}

FILTER=${1:-}
CTDBD_BIN=${CTDBD_BIN:-$BUILT/ctdbd}
PY=/usr/bin/python3
CLIENT=$HERE/smbclient_failover.py
SMB_USER=${SMB_USER:-daemon}
SMB_PASS=Ctdb-Failover-1
RUN=$(new_run_dir ctdb-failover)
chmod 755 "$RUN"
NODES=3
PUBLIC=(198.51.100.1 198.51.100.2 198.51.100.3)
CLIENT_ADDR=198.51.100.200
STARTED_PIDS=() # smbd and client processes, stopped by pid at the end
declare -A FIGURES

check() { # check NAME OK? DETAILS
	if [ "$2" = true ]; then ok "$1"; else bad "$1" "$3"; fi
}
# since A B: B - A in seconds, 2 decimals (the figures).
since() { elapsed "$1" "$2" 2; }

stop_started() {
	local p q
	for p in "${STARTED_PIDS[@]}"; do
		for q in $(group_pids "$p"); do [ "$q" = "$p" ] || kill -KILL "$q" 2>/dev/null; done
		stop_pid "$p"
	done
	STARTED_PIDS=()
}

net_down() {
	local ns
	for ns in cl n0 n1 n2 br; do ip netns del "$ns" 2>/dev/null; done
}

cleanup() {
	stop_started
	[ -e "$RUN/cluster/nodes" ] && bash "$CLUSTER" stop "$RUN/cluster" >/dev/null 2>&1
	net_down
	umount /run/netns 2>/dev/null
	remove_run
}
trap cleanup EXIT

# veth_to_bridge NS PORT ADDR: NS's eth0, its peer PORT on br0, ADDR on eth0.
veth_to_bridge() {
	ip -n br link add "$2" type veth peer name eth0 netns "$1" &&
		ip -n br link set "$2" master br0 up &&
		ip -n "$1" link set lo up &&
		ip -n "$1" link set eth0 up &&
		ip -n "$1" addr add "$3" dev eth0
}

net_up() {
	local k
	net_down
	ip netns add br && ip -n br link add br0 type bridge && ip -n br link set br0 up || return 1
	for k in $(seq 0 $((NODES - 1))); do
		ip netns add "n$k" && veth_to_bridge "n$k" "p$k" "192.0.2.$((k + 1))/24" || return 1
	done
	ip netns add cl && veth_to_bridge cl pc "$CLIENT_ADDR/24"
}

# layout_events K: what an admin adds to node K's CTDB_BASE for the legacy
# event scripts, then enables 00.ctdb and 10.interface with Debian's tool.
layout_events() {
	local b=$RUN/cluster/node$1 s
	cp /etc/ctdb/functions /etc/ctdb/notify.sh "$b/"
	# The data directory of the tool in test mode (where `script enable`
	# finds the scripts it links to).
	ln -s /usr/share/ctdb "$b/share"
	for s in 00.ctdb 10.interface; do
		CTDB_TEST_MODE=yes CTDB_BASE=$b timeout 20 ctdb event script enable legacy "$s" || return 1
	done
}

# start_cluster BIN: lays the cluster out in the node namespaces and starts it.
start_cluster() {
	local k
	printf '%s/24 eth0\n' "${PUBLIC[@]}" >"$RUN/public_addresses"
	CLUSTER_NETNS=n CLUSTER_SYSTEM_PATHS=1 CLUSTER_FAILOVER=1 CLUSTER_PUBLIC_ADDRESSES=$RUN/public_addresses \
		bash "$CLUSTER" layout "$RUN/cluster" "$NODES" 192.0.2.1 "$1" || return 1
	for k in $(seq 0 $((NODES - 1))); do layout_events "$k" || return 1; done
	for k in $(seq 0 $((NODES - 1))); do
		bash "$CLUSTER" start-node "$RUN/cluster" "$k" || return 1
	done
}

# holder ADDR [K]: the pnn holding ADDR as node K (default: the first up) sees it.
holder() {
	local k=${2:-}
	if [ -z "$k" ]; then
		for k in $(seq 0 $((NODES - 1))); do [ -e "$RUN/cluster/node$k/down" ] || break; done
	fi
	ctdb_on "$RUN/cluster" "$k" -X ip all 2>/dev/null | awk -F'|' -v a="$1" '$2 == a { print $3 }'
}

# on_eth0 ADDR: the live nodes whose eth0 has ADDR (space separated; a dead
# node keeps its addresses, as a machine that lost power would, but its port
# on the bridge is down).
on_eth0() {
	local k out=""
	for k in $(seq 0 $((NODES - 1))); do
		[ -e "$RUN/cluster/node$k/down" ] && continue
		# (grep reads all of ip's output: with -q, ip could die of SIGPIPE
		# and fail the pipeline under pipefail)
		ip -n "n$k" -4 -o addr show dev eth0 2>/dev/null | grep -F " $1/" >/dev/null && out+="$k "
	done
	echo "${out% }"
}

# smb_conf K: node K's smb.conf (its own state, the shared share directory).
smb_conf() {
	local d=$RUN/smb$1
	smb_state_dirs "$d"
	cat >"$d/smb.conf" <<EOF
[global]
	server role = standalone server
	workgroup = CTDBFAILOVER
	netbios name = CTDBFAILOVER
	clustering = yes
	ctdbd socket = $RUN/cluster/node$1/run/ctdbd.socket
	disable netbios = yes
	smb ports = 445
$(smb_state_conf "$d")
[share]
	path = $RUN/share
	read only = no
EOF
}

# start_smbd K: Debian's smbd in node K's namespace; SMBD_PIDS[K] is its pid.
declare -A SMBD_PIDS
start_smbd() {
	local k=$1 i
	smbd_launch "SMBD_PIDS[$k]" "$RUN/smb$k/smb.conf" "$RUN/smb$k/smbd.out" ip netns exec "n$k"
	# (killed with SIGKILL when its node dies: no job report for that)
	disown "$!"
	for i in $(seq 150); do
		kill -0 "${SMBD_PIDS[$k]}" 2>/dev/null || return 1
		[ -n "$(ip netns exec "n$k" ss -Htln "sport = :445")" ] && return 0
		sleep 0.1
	done
	return 1
}

smbc() { # smbc ADDR ARGS...: Debian's smbclient in the client namespace
	local a=$1
	shift
	ip netns exec cl timeout -k 2 "${SMBC_TIMEOUT:-30}" smbclient "//$a/share" --configfile="$RUN/smb0/smb.conf" \
		-U "$SMB_USER%$SMB_PASS" "$@"
}

client() { # client CMD ADDR FILE: the impacket client in the client namespace
	ip netns exec cl timeout -k 2 30 "$PY" "$CLIENT" "$1" "$2" "$SMB_USER" "$SMB_PASS" "$3"
}

# hold NAME ADDR FILE: a client holding FILE through ADDR, output in
# $RUN/NAME.out; HOLD_PIDS[NAME] is its pid.  Returns once it holds.
declare -A HOLD_PIDS
hold() {
	local i
	: >"$RUN/$1.out"
	ip netns exec cl "$PY" "$CLIENT" hold "$2" "$SMB_USER" "$SMB_PASS" "$3" >"$RUN/$1.out" 2>&1 &
	HOLD_PIDS[$1]=$!
	STARTED_PIDS+=("$!")
	for i in $(seq 100); do
		grep -q '^held ' "$RUN/$1.out" && return 0
		kill -0 "${HOLD_PIDS[$1]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# smbclient_session ADDR: Debian's smbclient, interactive, its commands
# from a fifo (SMBC_FD) and its output in $RUN/smbc.out; once it has
# listed the share, SMBC_PORT is its client port.
smbclient_session() {
	local i others
	rm -f "$RUN/smbc.in"
	mkfifo "$RUN/smbc.in"
	: >"$RUN/smbc.out"
	ip netns exec cl stdbuf -oL smbclient "//$1/share" --configfile="$RUN/smb0/smb.conf" -U "$SMB_USER%$SMB_PASS" \
		<"$RUN/smbc.in" >"$RUN/smbc.out" 2>&1 &
	STARTED_PIDS+=("$!")
	disown "$!"
	exec {SMBC_FD}>"$RUN/smbc.in"
	(echo "ls data.bin" >&"$SMBC_FD") 2>/dev/null
	for i in $(seq 100); do
		grep -qs ' data\.bin ' "$RUN/smbc.out" && break
		sleep 0.1
	done
	# its connection: the one to ADDR:445 that is not hold A's
	others=$(ip netns exec cl ss -Htn state established "( dport = :445 and dst $1 )" |
		awk -v a=":$(held_port A)" '{ if (index($3, a) != length($3) - length(a) + 1) print $3 }')
	SMBC_PORT=${others##*:}
	[ -n "$SMBC_PORT" ] && grep -qs ' data\.bin ' "$RUN/smbc.out"
}

# held_port NAME: the client port of hold NAME's connection.
held_port() { sed -n 's/^held //p' "$RUN/$1.out"; }

# established PORT ADDR: the client's connection from PORT to ADDR:445 is
# ESTABLISHED (ss in the client's namespace).
established() { [ -n "$(ip netns exec cl ss -Htn state established "( sport = :$1 and dst $2 )")" ]; }

# expect_protected ADDR FILE: the checks of `client check` show FILE held by
# another client (CHECK_OUT keeps what was seen).
expect_protected() {
	CHECK_OUT=$(client check "$1" "$2" 2>&1)
	grep -qx 'share-write STATUS_SHARING_VIOLATION' <<<"$CHECK_OUT" &&
		grep -qx 'share-delete STATUS_SHARING_VIOLATION' <<<"$CHECK_OUT" &&
		grep -qx 'lock STATUS_LOCK_NOT_GRANTED' <<<"$CHECK_OUT" &&
		grep -qx 'free-lock OK' <<<"$CHECK_OUT"
}

# addresses_placed: every public address is held by a node that has it on
# its eth0, and by no other node's eth0 (PLACED says where; "-" for none).
addresses_placed() {
	local a h e all=0
	PLACED=""
	for a in "${PUBLIC[@]}"; do
		h=$(holder "$a")
		e=$(on_eth0 "$a")
		PLACED+="$a:${h:--}/eth0:${e:--} "
		[ -n "$h" ] && [ "$h" != -1 ] && [ "$e" = "$h" ] && [ ! -e "$RUN/cluster/node$h/down" ] || all=1
	done
	return $all
}

# address_logs: what the live nodes logged about the public addresses (for
# a failure's details).
address_logs() {
	local k
	for k in $(seq 0 $((NODES - 1))); do
		[ -e "$RUN/cluster/node$k/down" ] && continue
		echo "-- node $k: $(ip -n "n$k" -4 -o addr show dev eth0 | awk '{ printf "%s ", $4 }')"
		grep -E '198\.51\.100\.|takeip|releaseip|updateip|Takeover|Release' "$RUN/cluster/node$k/log.ctdb" | tail -n 15
	done
}

# scenario_start KIND BIN: the cluster up with its event scripts, the public
# addresses on interfaces, smbd on every node.  Fails (returns 1) when the
# rest of the scenario cannot run.
scenario_start() {
	local kind=$1 bin=$2 t k i out ok msg
	t="failover-$kind: cluster with 00.ctdb and 10.interface comes up healthy"
	if ! net_up; then
		bad "$t" "could not build the test network"
		return 1
	fi
	if ! out=$(start_cluster "$bin" 2>&1); then
		bad "$t" "start: $out"
		return 1
	fi
	if ! out=$(bash "$CLUSTER" wait "$RUN/cluster" 90 2>&1); then
		bad "$t" "$out $(tail -n 20 "$RUN/cluster/node0/log.ctdb")"
		return 1
	fi
	out=$(CTDB_TEST_MODE=yes CTDB_BASE=$RUN/cluster/node0 timeout 20 ctdb event script list legacy 2>&1)
	if grep -qE '^\* 00\.ctdb' <<<"$out" && grep -qE '^\* 10\.interface' <<<"$out"; then
		ok "$t"
	else bad "$t" "script list: $out"; fi

	t="failover-$kind: every public address on exactly one node's eth0"
	for i in $(seq 100); do
		addresses_placed && break
		sleep 0.2
	done
	if addresses_placed; then ok "$t"; else bad "$t" "$PLACED; $(address_logs)"; fi

	t="failover-$kind: smbd with clustering = yes on every node"
	mkdir -p "$RUN/share" && chmod 1777 "$RUN/share"
	ok=true
	msg=""
	for k in $(seq 0 $((NODES - 1))); do smb_conf "$k"; done
	# passdb.tdb is a persistent database of the cluster: one pdbedit
	# reaches every node's smbd.
	out=$(printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" | timeout 30 pdbedit --configfile="$RUN/smb0/smb.conf" -a -u "$SMB_USER" -t 2>&1) ||
		{ ok=false; msg+="pdbedit: $out; "; }
	for k in $(seq 0 $((NODES - 1))); do
		start_smbd "$k" || { ok=false; msg+="node $k: smbd does not listen: $(tail -n 5 "$RUN/smb$k/smbd.out"); "; }
	done
	check "$t" $ok "$msg"
	$ok
}

# scenario_files KIND: data.bin written through one address, read through
# all; fa.txt and fb.txt held through P (node X) and Q (node Y).
scenario_files() {
	local kind=$1 t ok msg a out k
	t="failover-$kind: smbclient writes through one address, reads through every one"
	head -c 300000 /dev/urandom >"$RUN/data.bin"
	SHA=$(sha256sum <"$RUN/data.bin" | cut -d' ' -f1)
	printf 'file a, held through the node that dies\n%0100d\n' 0 >"$RUN/fa.txt"
	printf 'file b, held through a node that lives\n%0100d\n' 0 >"$RUN/fb.txt"
	ok=true
	msg=""
	out=$(smbc "${PUBLIC[0]}" -c "put $RUN/data.bin data.bin; put $RUN/fa.txt fa.txt; put $RUN/fb.txt fb.txt" 2>&1) ||
		{ ok=false; msg+="put: $out; "; }
	for a in "${PUBLIC[@]}"; do
		rm -f "$RUN/data.back"
		out=$(smbc "$a" -c "get data.bin $RUN/data.back" 2>&1) || { ok=false; msg+="get via $a: $out; "; }
		cmp -s "$RUN/data.bin" "$RUN/data.back" || { ok=false; msg+="data.bin via $a differs; "; }
	done
	cmp -s "$RUN/data.bin" "$RUN/share/data.bin" || { ok=false; msg+="not in the shared directory; "; }
	check "$t" $ok "$msg"

	P=${PUBLIC[0]}
	if [ "${FAILOVER_VICTIM:-}" = leader ]; then
		# P: an address the leader holds (its death also costs an election)
		local l
		l=$(bash "$CLUSTER" leader "$RUN/cluster" 2>/dev/null)
		for a in "${PUBLIC[@]}"; do
			[ "$(holder "$a")" = "$l" ] && P=$a && break
		done
	fi
	X=$(holder "$P")
	Q=""
	for a in "${PUBLIC[@]}"; do
		k=$(holder "$a")
		if [ -n "$k" ] && [ "$k" != "$X" ]; then
			Q=$a
			Y=$k
			break
		fi
	done
	note "$kind: P=$P on node $X, Q=$Q on node ${Y:-?}, leader node $(bash "$CLUSTER" leader "$RUN/cluster" 2>/dev/null)"
	t="failover-$kind: client holds fa.txt through P and fb.txt through Q (open, byte-range lock)"
	if [ -z "$Q" ] || [ -z "$X" ]; then
		bad "$t" "no two nodes hold addresses: $PLACED"
		return 1
	fi
	if hold A "$P" fa.txt && hold B "$Q" fb.txt; then
		ok "$t"
	else
		bad "$t" "A: $(cat "$RUN/A.out") B: $(cat "$RUN/B.out")"
		return 1
	fi

	t="failover-$kind: Debian's smbclient holds a session through P too"
	if smbclient_session "$P"; then ok "$t"; else bad "$t" "port ${SMBC_PORT:-none}: $(cat "$RUN/smbc.out")"; fi

	t="failover-$kind: both connections to P are in the tickle list of every node"
	ok=true
	msg=""
	for k in $(seq 0 $((NODES - 1))); do
		out=$(ctdb_on "$RUN/cluster" "$k" gettickles "$P" 2>&1)
		grep -q "SRC: $CLIENT_ADDR:$(held_port A) *DST: $P:445" <<<"$out" &&
			grep -q "SRC: $CLIENT_ADDR:${SMBC_PORT:-none} *DST: $P:445" <<<"$out" || { ok=false; msg+="node $k: $out; "; }
	done
	check "$t" $ok "$msg"

	t="failover-$kind: fb.txt's share mode and lock (held through Q) enforced through P"
	if expect_protected "$P" fb.txt; then ok "$t"; else bad "$t" "$CHECK_OUT"; fi
}

# probe_until_read ADDR DEADLINE: new connections to ADDR every 0.1 s until
# one reads data.bin with the right content; writes the time to
# $RUN/probe.done.  (Run in the background.)
probe_until_read() {
	local out
	while [ "$SECONDS" -lt "$2" ]; do
		out=$(client probe "$1" data.bin 2>&1)
		if [ "$out" = "$SHA" ]; then
			now >"$RUN/probe.done"
			return 0
		fi
		echo "$(now) $out" >>"$RUN/probe.log"
		sleep 0.1
	done
}

# kill_node K: node K dies: its bridge port down, its ctdbd and smbd killed
# with SIGKILL by pid.  Sets T0.
kill_node() {
	local k=$1 p
	SMBC_LINES=$(wc -l <"$RUN/smbc.out")
	T0=$(now)
	ip -n br link set "p$k" down
	touch "$RUN/cluster/node$k/down"
	kill -KILL "$(bash "$CLUSTER" pid "$RUN/cluster" "$k")" 2>/dev/null
	for p in $(group_pids "${SMBD_PIDS[$k]}"); do kill -KILL "$p" 2>/dev/null; done
	# cluster.sh waits for the rest of the node's session (its helpers) and
	# marks the node down.
	bash "$CLUSTER" kill "$RUN/cluster" "$k" KILL >"$RUN/kill.out" 2>&1 &
	KILL_WAITER=$!
}

# client_arp ADDR: the link address the client's neighbour table has for ADDR.
client_arp() { ip -n cl neigh show "$1" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }

# node_mac K: the link address of node K's eth0.
node_mac() { ip -n "n$1" link show eth0 | awk '$1 == "link/ether" { print $2 }'; }

# measure KIND: polls until (a) P has a new holder, on its eth0, (b) the held
# connection is gone, (c) new and held clients read data.bin again, or 60 s.
measure() {
	local kind=$1 end=$((SECONDS + 60)) h z="" ta="" te="" tss="" tarp="" tsmbc="" port
	port=$(held_port A)
	rm -f "$RUN/probe.done" "$RUN/probe.log"
	probe_until_read "$P" "$end" &
	local prober=$!
	STARTED_PIDS+=("$prober")
	while [ "$SECONDS" -lt "$end" ]; do
		if [ -z "$ta" ]; then
			h=$(holder "$P" "$Y")
			if [ -n "$h" ] && [ "$h" != -1 ] && [ "$h" != "$X" ]; then
				ta=$(now)
				z=$h
			fi
		fi
		if [ -n "$z" ] && [ -z "$te" ] && [ "$(on_eth0 "$P")" = "$z" ]; then
			te=$(now)
		fi
		[ -z "$tss" ] && ! established "$port" "$P" && tss=$(now)
		[ -z "$tsmbc" ] && [ -n "$SMBC_PORT" ] && ! established "$SMBC_PORT" "$P" && tsmbc=$(now)
		if [ -n "$z" ] && [ -z "$tarp" ] && [ "$(client_arp "$P")" = "$(node_mac "$z")" ]; then
			tarp=$(now)
		fi
		[ -n "$ta" ] && [ -n "$te" ] && [ -n "$tss" ] && [ -n "$tarp" ] && [ -n "$tsmbc" ] && [ -e "$RUN/probe.done" ] &&
			grep -q '^reconnected ' "$RUN/A.out" && break
		sleep 0.1
	done
	wait "$prober"
	Z=$z
	FIGURES[$kind.holder]=$([ -n "$ta" ] && since "$T0" "$ta" || echo none)
	FIGURES[$kind.eth0]=$([ -n "$te" ] && since "$T0" "$te" || echo none)
	FIGURES[$kind.smbc]=$([ -n "$tsmbc" ] && since "$T0" "$tsmbc" || echo none)
	FIGURES[$kind.arp]=$([ -n "$tarp" ] && since "$T0" "$tarp" || echo none)
	FIGURES[$kind.ss]=$([ -n "$tss" ] && since "$T0" "$tss" || echo none)
	local r
	r=$(sed -n 's/^reset \([0-9.]*\) .*/\1/p' "$RUN/A.out")
	FIGURES[$kind.reset]=$([ -n "$r" ] && since "$T0" "$r" || echo none)
	FIGURES[$kind.how]=$(sed -n 's/^reset [0-9.]* //p' "$RUN/A.out")
	# The tickle: a bare ACK with sequence number 0 from P:445; then the RST
	# the new holder's kernel answers the client's reply with.
	r=$(awk '$1 == "segment" && $3 == "ACK" && $4 == 0 { print $2; exit }' "$RUN/A.out")
	FIGURES[$kind.tickle]=$([ -n "$r" ] && since "$T0" "$r" || echo none)
	r=$(awk '$1 == "segment" && $3 ~ /RST/ { print $2; exit }' "$RUN/A.out")
	FIGURES[$kind.rst]=$([ -n "$r" ] && since "$T0" "$r" || echo none)
	FIGURES[$kind.probe]=$([ -e "$RUN/probe.done" ] && since "$T0" "$(cat "$RUN/probe.done")" || echo none)
	r=$(sed -n 's/^reconnected \([0-9.]*\) .*/\1/p' "$RUN/A.out")
	FIGURES[$kind.reconnect]=$([ -n "$r" ] && since "$T0" "$r" || echo none)
}

# tickle_before_rst: in what hold A saw on eth0, a tickle ACK came before
# the first RST.
tickle_before_rst() {
	awk '$1 == "segment" && $3 == "ACK" && $4 == 0 && !t { t = NR }
		$1 == "segment" && $3 ~ /RST/ && !r { r = NR }
		END { exit !(t && r && t < r) }' "$RUN/A.out"
}

# under SECONDS LIMIT: SECONDS is a number below LIMIT.
under() { [ "$1" != none ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# scenario_failover KIND: kill node X, measure, check what survives.
scenario_failover() {
	local kind=$1 t ok msg out k f
	note "$kind: node $X dies"
	kill_node "$X"
	measure "$kind"
	note "$kind: P now on node ${Z:-none}"

	t="failover-$kind: (a) P moves to a survivor and onto its eth0"
	check "$t" "$(under "${FIGURES[$kind.eth0]}" 30 && echo true)" \
		"holder after ${FIGURES[$kind.holder]} s, eth0 after ${FIGURES[$kind.eth0]} s; on eth0 of: $(on_eth0 "$P")"

	t="failover-$kind: (a) the client's ARP entry for P follows it to the new node (gratuitous ARP)"
	check "$t" "$(under "${FIGURES[$kind.arp]}" 10 && echo true)" \
		"after ${FIGURES[$kind.arp]} s; client has $(client_arp "$P"), node ${Z:-?} is $([ -n "$Z" ] && node_mac "$Z")"

	t="failover-$kind: (b) the held idle connection is reset within seconds, after a tickle ACK"
	f="${FIGURES[$kind.reset]}"
	check "$t" "$(under "$f" 30 && [ "${FIGURES[$kind.how]}" = ConnectionResetError ] &&
		[ "${FIGURES[$kind.tickle]}" != none ] && tickle_before_rst && echo true)" \
		"reset after $f s (${FIGURES[$kind.how]:-nothing}), tickle ACK seen after ${FIGURES[$kind.tickle]} s, RST after ${FIGURES[$kind.rst]} s, socket left ESTABLISHED after ${FIGURES[$kind.ss]} s: $(cat "$RUN/A.out")"

	t="failover-$kind: (b) Debian's smbclient session through P is reset by the same tickles"
	# The new holder tickles every connection of P's list at once: the
	# smbclient's socket goes with the held one (not seconds later, when its
	# own SMB echo would meet the new holder's RST).
	# (in a subshell: should smbclient have gone, the write's SIGPIPE must
	# not end this shell)
	(echo "ls data.bin" >&"$SMBC_FD") 2>/dev/null
	sleep 1
	# what smbclient wrote since the node died: its next ls failed, or its
	# own SMB echo (every few seconds) met the reset first and it left
	out=$(tail -n +"$((SMBC_LINES + 1))" "$RUN/smbc.out")
	check "$t" "$(under "${FIGURES[$kind.smbc]}" 30 && [ "${FIGURES[$kind.ss]}" != none ] &&
		under "${FIGURES[$kind.smbc]}" "$(awk -v a="${FIGURES[$kind.ss]}" 'BEGIN { print a + 1 }')" &&
		grep -q 'NT_STATUS_CONNECTION' <<<"$out" && echo true)" \
		"socket gone after ${FIGURES[$kind.smbc]} s (the held one's after ${FIGURES[$kind.ss]} s); since the death it wrote: $out"
	exec {SMBC_FD}>&-

	t="failover-$kind: (c) a new connection to P reads the same data"
	check "$t" "$(under "${FIGURES[$kind.probe]}" 40 && echo true)" "after ${FIGURES[$kind.probe]} s; $(tail -n 3 "$RUN/probe.log" 2>/dev/null)"

	t="failover-$kind: (c) the reset client reconnects and reads the same data"
	check "$t" "$(grep -q "^reconnected [0-9.]* $(sha256sum <"$RUN/fa.txt" | cut -d' ' -f1)\$" "$RUN/A.out" && echo true)" \
		"$(cat "$RUN/A.out")"

	t="failover-$kind: fb.txt (held through node $Y) still protected through P"
	if expect_protected "$P" fb.txt; then ok "$t"; else bad "$t" "$CHECK_OUT"; fi

	t="failover-$kind: the connection to Q is untouched"
	check "$t" "$(established "$(held_port B)" "$Q" && ! grep -q '^reset' "$RUN/B.out" && echo true)" "$(cat "$RUN/B.out")"

	t="failover-$kind: fa.txt (its holder's node is dead) can be opened exclusively and locked"
	out=$(client grab "$P" fa.txt 2>&1)
	check "$t" "$(grep -qx 'open OK' <<<"$out" && grep -qx 'lock OK' <<<"$out" && echo true)" "$out"

	t="failover-$kind: survivors show node $X DISCONNECTED and serve every address"
	wait "$KILL_WAITER"
	ok=true
	msg=""
	out=$(bash "$CLUSTER" wait "$RUN/cluster" 30 2>&1) || { ok=false; msg+="$out; "; }
	for k in $(seq 50); do
		addresses_placed && break
		sleep 0.2
	done
	addresses_placed || { ok=false; msg+="$PLACED; $(address_logs)"; }
	check "$t" $ok "$msg"

	t="failover-$kind: smbclient through P after the failover reads data.bin"
	rm -f "$RUN/data.back"
	out=$(smbc "$P" -c "get data.bin $RUN/data.back" 2>&1)
	check "$t" "$(cmp -s "$RUN/data.bin" "$RUN/data.back" && echo true)" "$out"
}

# run_kind KIND BIN: the whole scenario on one kind of daemon.
run_kind() {
	local kind=$1
	note "$kind: $2"
	if scenario_start "$kind" "$2" && scenario_files "$kind"; then
		scenario_failover "$kind"
	fi
	stop_started
	bash "$CLUSTER" stop "$RUN/cluster" >/dev/null 2>&1
	if [ -n "${COMPAT_KEEP:-}" ]; then
		mv "$RUN/cluster" "$RUN/cluster.$kind"
		for k in $(seq 0 $((NODES - 1))); do mv "$RUN/smb$k" "$RUN/smb$k.$kind"; done
	fi
	rm -rf "$RUN/cluster" "$RUN/share" "$RUN"/smb[0-9]
	net_down
}

KINDS=(debian)
if [ "${FAILOVER_OURS:-1}" = 1 ]; then
	KINDS+=(ours)
else
	note "ours: not run (FAILOVER_OURS=0)"
fi
for kind in "${KINDS[@]}"; do
	wanted "failover-$kind" || continue
	case $kind in
	debian) run_kind debian debian ;;
	ours) run_kind ours "$CTDBD_BIN" ;;
	esac
done

# The figures, one column per kind: seconds from the node's death.
figure_rows=(
	"holder:P shown on a new node (ctdb ip)"
	"eth0:P on the new node's eth0"
	"arp:client's ARP entry for P updated"
	"tickle:tickle ACK reaches the client"
	"rst:RST reaches the client"
	"reset:held connection reset (client)"
	"ss:held socket gone (ss)"
	"smbc:smbclient's socket gone (ss)"
	"probe:new connection reads data.bin"
	"reconnect:reset client reconnected, read"
)
shown=()
for kind in "${KINDS[@]}"; do [ -n "${FIGURES[$kind.reset]:-}" ] && shown+=("$kind"); done
if [ ${#shown[@]} -gt 0 ]; then
	printf '# %-40s' "figures (s after the node died)"
	printf ' %10s' "${shown[@]}"
	echo
	for row in "${figure_rows[@]}"; do
		printf '# %-40s' "${row#*:}"
		for kind in "${shown[@]}"; do printf ' %10s' "${FIGURES[$kind.${row%%:*}]}"; done
		echo
	done
fi
finish
