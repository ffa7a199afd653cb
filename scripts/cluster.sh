#!/usr/bin/env bash
# A local CTDB cluster of N nodes on loopback addresses, laid out like Samba's
# ctdb/tests/local_daemons.sh: one CTDB_BASE per node, a shared cluster lock,
# CTDB test mode (socket and pid file under $CTDB_BASE/run).
#
#   scripts/cluster.sh start [--leader-first] DIR N BASEADDR KIND [TUNABLES...]
#       Lays out DIR (created; must not hold a running cluster) and starts N
#       nodes: node K (pnn K, K = 0..N-1) has the address BASEADDR + K
#       (127.0.16.1 -> .1 .. .N) and CTDB_BASE DIR/nodeK.  KIND is the path
#       of a ctdbd binary (ours) or "debian" (/usr/sbin/ctdbd), or a comma
#       list of those, one per node (a mixed cluster; the last one is used
#       for the nodes after it).  Extra
#       NAME=VALUE arguments are written to every node's ctdb.tunables, after
#       the short test tunables (KeepaliveInterval=1, KeepaliveLimit=2,
#       RecoverInterval=1, ElectionTimeout=2, RerecoveryTimeout=2,
#       VacuumInterval=600; ctdb.conf has "leader timeout = 2").  Returns when every node has written
#       its pid file and opened its socket (not when the cluster is healthy:
#       use wait).  With --leader-first, node 0 starts alone and becomes
#       leader (as wait sees it) before the others start: the leader is then
#       node 0 every time (started together, the first node to take the
#       cluster lock wins, which varies from run to run).
#   scripts/cluster.sh layout DIR N BASEADDR KIND [TUNABLES...]
#       Lays DIR out as start does but starts no node (every node is down
#       until start-node): for a caller that adds files to the CTDB_BASEs
#       (event scripts, their options) before the daemons first start.
#   scripts/cluster.sh wait DIR [TIMEOUT]
#       Until, on every running node, `ctdb status` lists every running node
#       OK, every node stopped with kill/stop DISCONNECTED, "Recovery
#       mode:NORMAL", and `ctdb leader` names the same running node on all of
#       them.  TIMEOUT in seconds (default 60).  Exit 1 on timeout, printing
#       the last status of each node.
#   scripts/cluster.sh ctdb DIR K ARGS...
#       Debian's ctdb tool (CTDB_TOOL overrides) against node K, stopped
#       after CLUSTER_TOOL_TIMEOUT seconds (default 30).
#   scripts/cluster.sh kill DIR K [SIG]
#       Sends SIG (default TERM) to node K's daemon by its pid, waits until its
#       processes (the daemon and its children) are gone, marks it down.
#   scripts/cluster.sh start-node DIR K    (re)starts node K (it must be down).
#   scripts/cluster.sh restart DIR K       kill DIR K TERM (if running), then
#                                          start-node DIR K.
#   scripts/cluster.sh stop DIR            stops every node (TERM by pid, KILL
#                                          after 10 s) and waits.
#   scripts/cluster.sh pid DIR K           the daemon pid of node K.
#   scripts/cluster.sh addr DIR K          the address of node K.
#   scripts/cluster.sh leader DIR          the leader pnn that `wait` agreed on
#                                          (asks the first running node).
#
# CLUSTER_LOCK=none at start lays the nodes out without a cluster lock (one
# leader per connected group, elected without a lock).
#
# Files: DIR/nodes (all addresses), DIR/kind (the daemon binary of each
# node, one per line),
# DIR/cluster.lock (the cluster lock, shared), DIR/nodeK/{ctdb.conf,nodes,
# ctdb.tunables,log.ctdb,start.out,run/ctdbd.pid,run/ctdbd.socket,db/...},
# DIR/nodeK/down while node K is stopped.
#
# Environment for start: CLUSTER_PUBLIC_ADDRESSES=FILE is copied to every
# node's public_addresses (empty otherwise); CLUSTER_FAILOVER=1 writes
# "[failover] disabled = false" (takeover runs move public addresses;
# failover is disabled otherwise); CLUSTER_EVENT_SCRIPTS=DIR copies DIR's
# files (modes kept) into every node's events/legacy.
# CLUSTER_LOG_LEVEL sets every node's log level (NOTICE by default).
#
# CLUSTER_NETNS=PREFIX at start/layout runs node K in the network namespace
# PREFIXK (made by the caller, e.g. with `ip netns add`; listed in DIR/netns):
# its daemon is started through `ip netns exec`, and the port check looks
# there.  The ctdb tool needs no namespace (it talks over the unix socket).
#
# CLUSTER_SYSTEM_PATHS=1 at start/layout (with CLUSTER_NETNS) runs each node
# as installed, not in CTDB test mode (Samba's ctdbd in test mode neither
# checks that it holds a public address nor sends gratuitous ARPs and tickle
# ACKs after taking one over): in a mount namespace of its own, where
# DIR/nodeK is /etc/ctdb, DIR/nodeK/run is /run/ctdb (on a tmpfs /run) and
# DIR/nodeK/var is /var/lib/ctdb; the ctdb tool still reaches it through
# DIR/nodeK/run/ctdbd.socket.
#
# Every node listens on port 4379 of its own address; start refuses addresses
# where something already listens.  Processes are only ever signalled by pid.
set -uo pipefail

CTDB_TOOL=${CTDB_TOOL:-/usr/bin/ctdb}
DEBIAN_CTDBD=${DEBIAN_CTDBD:-/usr/sbin/ctdbd}

# Short test tunables: a dead node is noticed in ~2 s even without a closed
# connection, elections and recoveries are retried quickly.  ctdb.conf also
# sets "leader timeout = 2" (the default 5 s delays the first election).
TEST_TUNABLES=(
	KeepaliveInterval=1
	KeepaliveLimit=2
	RecoverInterval=1
	ElectionTimeout=2
	RerecoveryTimeout=2
	VacuumInterval=600
)

usage() {
	sed -n '2,/^set -uo/p' "$0" | sed -e '/^set -uo/d' -e 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

absdir() { (mkdir -p "$1" && cd "$1" && pwd); }
node_base() { echo "$1/node$2"; }
node_count() { wc -l <"$1/nodes"; }
node_addr() { sed -n "$(($2 + 1))p" "$1/nodes"; }
node_pid() { cat "$(node_base "$1" "$2")/run/ctdbd.pid" 2>/dev/null; }
is_down() { [ -e "$(node_base "$1" "$2")/down" ]; }

# addr_add BASEADDR K: the IPv4 address K after BASEADDR.
addr_add() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	[ -n "$d" ] && [ $((d + $2)) -le 254 ] || die "bad base address $1 for $2 more nodes"
	echo "$a.$b.$c.$((d + $2))"
}

# node_netns DIR K: the network namespace of node K ("" when none).
node_netns() { [ -e "$1/netns" ] && sed -n "$(($2 + 1))p" "$1/netns"; }

# in_netns NS CMD...: CMD in network namespace NS, or here when NS is "".
in_netns() {
	local ns=$1
	shift
	if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

port_in_use() { # port_in_use ADDR [NETNS]
	in_netns "${2:-}" ss -Hltn "sport = :4379" 2>/dev/null | grep -qE "(${1//./\\.}|0\.0\.0\.0|\*|\[::\]):4379"
}

tool() { # tool DIR K ARGS...
	local b
	b=$(node_base "$1" "$2")
	shift 2
	CTDB_TEST_MODE=yes CTDB_BASE=$b timeout "${CLUSTER_TOOL_TIMEOUT:-30}" "$CTDB_TOOL" "$@"
}

# layout_node DIR K: CTDB_BASE of node K.
layout_node() {
	local dir=$1 k=$2 b addr t
	b=$(node_base "$dir" "$k")
	addr=$(node_addr "$dir" "$k")
	mkdir -p "$b/db/volatile" "$b/db/persistent" "$b/db/state" "$b/events/legacy" "$b/run"
	cp "$dir/nodes" "$b/nodes"
	if [ -n "${CLUSTER_PUBLIC_ADDRESSES:-}" ]; then
		cp "$CLUSTER_PUBLIC_ADDRESSES" "$b/public_addresses"
	else
		: >"$b/public_addresses"
	fi
	if [ -n "${CLUSTER_EVENT_SCRIPTS:-}" ]; then
		cp -p "$CLUSTER_EVENT_SCRIPTS"/* "$b/events/legacy/"
	fi
	: >"$b/ctdb.tunables"
	for t in "${TEST_TUNABLES[@]}" "${EXTRA_TUNABLES[@]}"; do echo "$t" >>"$b/ctdb.tunables"; done
	cat >"$b/ctdb.conf" <<EOF
[logging]
	location = file:$b/log.ctdb
	log level = ${CLUSTER_LOG_LEVEL:-NOTICE}

[cluster]
$([ "${CLUSTER_LOCK:-}" = none ] || echo "	cluster lock = $dir/cluster.lock")
	node address = $addr
	leader timeout = 2

[database]
	volatile database directory = $b/db/volatile
	persistent database directory = $b/db/persistent
	state database directory = $b/db/state

[failover]
	disabled = $([ "${CLUSTER_FAILOVER:-0}" = 1 ] && echo false || echo true)
EOF
}

# node_pids DIR K: the processes of node K: every process in the session
# it was started in (start_node runs each daemon under setsid, so its
# recovery daemon, event daemon and lock helpers share that session even
# after the daemon itself is gone and they are reparented).
node_pids() {
	local sid
	sid=$(cat "$(node_base "$1" "$2")/sid" 2>/dev/null)
	[ -n "$sid" ] || return 0
	ps -e -o pid= -o sid= -o stat= | awk -v s="$sid" '$2 == s && $3 !~ /^Z/ { print $1 }'
}

# alive PID: PID runs (a zombie awaiting its reaper does not count).
alive() {
	[ -n "$1" ] || return 1
	case $(ps -o stat= -p "$1" 2>/dev/null) in
	'' | Z*) return 1 ;;
	esac
}

# The shell that starts a node with CLUSTER_SYSTEM_PATHS (in its own mount
# namespace; $1 its CTDB_BASE, $2 the daemon).
SYSTEM_PATHS_START='mount --bind "$1" /etc/ctdb && mount -t tmpfs -o mode=755 run /run && mkdir /run/ctdb &&
mount --bind "$1/run" /run/ctdb && mount --bind "$1/var" /var/lib/ctdb && exec setsid "$2"'

# start_node DIR K: starts node K's daemon, waits for its pid file and socket.
start_node() {
	local dir=$1 k=$2 b bin addr i pid ns
	b=$(node_base "$dir" "$k")
	bin=$(sed -n "$((k + 1))p" "$dir/kind")
	[ -n "$bin" ] || bin=$(tail -n 1 "$dir/kind")
	addr=$(node_addr "$dir" "$k")
	pid=$(node_pid "$dir" "$k")
	if alive "$pid"; then die "node $k is running (pid $pid)"; fi
	ns=$(node_netns "$dir" "$k")
	port_in_use "$addr" "$ns" && die "something listens on $addr:4379 already"
	rm -f "$b/run/ctdbd.pid" "$b/run/ctdbd.socket" "$b/down"
	rm -f "$b/sid"
	local via=()
	[ -z "$ns" ] || via=(ip netns exec "$ns")
	if [ -e "$dir/system-paths" ]; then
		mkdir -p "$b/var"
		(cd "$b" && CTDB_BASE=/etc/ctdb exec "${via[@]}" unshare -m --propagation private sh -c "$SYSTEM_PATHS_START" \
			system-paths "$b" "$bin") >>"$b/start.out" 2>&1 </dev/null ||
			die "node $k ($bin) failed to start: $(tail -n 5 "$b/start.out")"
	else
		(cd "$b" && CTDB_TEST_MODE=yes CTDB_BASE=$b exec "${via[@]}" setsid "$bin") >>"$b/start.out" 2>&1 </dev/null ||
			die "node $k ($bin) failed to start: $(tail -n 5 "$b/start.out")"
	fi
	for i in $(seq 1 150); do
		if [ -s "$b/run/ctdbd.pid" ] && [ -S "$b/run/ctdbd.socket" ]; then
			pid=$(cat "$b/run/ctdbd.pid")
			ps -o sid= -p "$pid" | tr -d ' ' >"$b/sid"
			return 0
		fi
		sleep 0.1
	done
	die "node $k: no pid file and socket after 15 s (see $b/log.ctdb)"
}

cmd_start() {
	local first_alone=0 layout_only=0
	if [ "${1:-}" = --layout-only ]; then
		layout_only=1
		shift
	fi
	if [ "${1:-}" = --leader-first ]; then
		first_alone=1
		shift
	fi
	[ $# -ge 4 ] || usage
	local dir n base kind bin k
	dir=$(absdir "$1")
	n=$2
	base=$3
	kind=$4
	shift 4
	EXTRA_TUNABLES=("$@")
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not $n"
	local kinds=() bins=()
	IFS=, read -r -a kinds <<<"$kind"
	for kind in "${kinds[@]}"; do
		case $kind in
		debian) bin=$DEBIAN_CTDBD ;;
		*) bin=$(cd "$(dirname "$kind")" && pwd)/$(basename "$kind") ;;
		esac
		[ -x "$bin" ] || die "no ctdbd at $bin"
		bins+=("$bin")
	done
	[ -x "$CTDB_TOOL" ] || die "Debian's ctdb tool ($CTDB_TOOL) is not installed"
	if [ -e "$dir/nodes" ]; then
		for k in $(seq 0 $(($(node_count "$dir") - 1))); do
			local p
			p=$(node_pid "$dir" "$k")
			alive "$p" && die "$dir holds a running cluster (node $k, pid $p)"
		done
	fi
	: >"$dir/kind"
	for k in $(seq 0 $((n - 1))); do
		bin=${bins[$k]:-${bins[${#bins[@]} - 1]}}
		echo "$bin" >>"$dir/kind"
	done
	: >"$dir/nodes"
	for k in $(seq 0 $((n - 1))); do addr_add "$base" "$k" >>"$dir/nodes"; done
	rm -f "$dir/netns" "$dir/system-paths"
	[ "${CLUSTER_SYSTEM_PATHS:-0}" = 1 ] && touch "$dir/system-paths"
	if [ -n "${CLUSTER_NETNS:-}" ]; then
		for k in $(seq 0 $((n - 1))); do echo "$CLUSTER_NETNS$k" >>"$dir/netns"; done
	fi
	for k in $(seq 0 $((n - 1))); do
		port_in_use "$(node_addr "$dir" "$k")" "$(node_netns "$dir" "$k")" && die "something listens on $(node_addr "$dir" "$k"):4379 already"
	done
	rm -f "$dir/cluster.lock"
	for k in $(seq 0 $((n - 1))); do layout_node "$dir" "$k"; done
	if [ $layout_only = 1 ]; then
		for k in $(seq 0 $((n - 1))); do touch "$(node_base "$dir" "$k")/down"; done
		return
	fi
	if [ $first_alone = 1 ]; then
		start_node "$dir" 0
		for k in $(seq 1 $((n - 1))); do touch "$(node_base "$dir" "$k")/down"; done
		cmd_wait "$dir" 60 || die "node 0 alone did not become leader"
		for k in $(seq 1 $((n - 1))); do start_node "$dir" "$k"; done
		return
	fi
	for k in $(seq 0 $((n - 1))); do start_node "$dir" "$k"; done
}

# node_healthy DIR K: node K's view matches the expected one.
node_healthy() {
	local dir=$1 k=$2 n=$3 out j want
	out=$(tool "$dir" "$k" status 2>/dev/null) || return 1
	# Nodes deleted with ctdb reloadnodes are counted apart:
	# "Number of nodes:4 (including 1 deleted nodes)".
	local line total del
	line=$(grep "^Number of nodes:" <<<"$out") || return 1
	total=${line#Number of nodes:}
	total=${total%% *}
	del=$(sed -n 's/.*including \([0-9]*\) deleted.*/\1/p' <<<"$line")
	[ $((total - ${del:-0})) = "$n" ] || return 1
	grep -q "^Recovery mode:NORMAL" <<<"$out" || return 1
	for j in $(seq 0 $((n - 1))); do
		if is_down "$dir" "$j"; then want="DISCONNECTED"; else want="OK"; fi
		grep -qE "^pnn:$j +[^ ]+ +$want( |\||\$)" <<<"$out" || return 1
	done
}

cmd_wait() {
	[ $# -ge 1 ] || usage
	local dir=$1 timeout=${2:-60} n k end ok leaders l
	dir=$(absdir "$dir")
	n=$(node_count "$dir")
	end=$((SECONDS + timeout))
	while [ $SECONDS -lt $end ]; do
		ok=1
		leaders=""
		for k in $(seq 0 $((n - 1))); do
			is_down "$dir" "$k" && continue
			node_healthy "$dir" "$k" "$n" || { ok=0; break; }
			l=$(tool "$dir" "$k" leader 2>/dev/null) || { ok=0; break; }
			leaders="$leaders $l"
		done
		if [ $ok = 1 ] && [ "$(tr ' ' '\n' <<<"$leaders" | sed '/^$/d' | sort -u | wc -l)" = 1 ]; then
			l=$(tr ' ' '\n' <<<"$leaders" | sed '/^$/d' | head -n 1)
			if ! is_down "$dir" "$l" 2>/dev/null; then return 0; fi
		fi
		sleep 0.5
	done
	echo "cluster.sh: not healthy after ${timeout}s" >&2
	for k in $(seq 0 $((n - 1))); do
		if is_down "$dir" "$k"; then echo "-- node $k: down" >&2; continue; fi
		echo "-- node $k: ctdb status; ctdb leader" >&2
		{ tool "$dir" "$k" status; tool "$dir" "$k" leader; } 2>&1 | sed 's/^/   /' >&2
	done
	return 1
}

# stop_node DIR K SIG: signals node K by pid, waits for its session to empty
# (KILL after 10 s when SIG was not KILL), marks it down.
stop_node() {
	local dir=$1 k=$2 sig=$3 pid i left
	pid=$(node_pid "$dir" "$k")
	touch "$(node_base "$dir" "$k")/down"
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null
	for i in $(seq 1 200); do
		left=$(node_pids "$dir" "$k")
		[ -z "$left" ] && return 0
		[ "$i" = 100 ] && for p in $left; do kill -KILL "$p" 2>/dev/null; done
		sleep 0.1
	done
	echo "cluster.sh: node $k: processes $left still running" >&2
	return 1
}

cmd_kill() {
	[ $# -ge 2 ] || usage
	local dir
	dir=$(absdir "$1")
	stop_node "$dir" "$2" "${3:-TERM}"
}

cmd_restart() {
	[ $# -ge 2 ] || usage
	local dir pid
	dir=$(absdir "$1")
	pid=$(node_pid "$dir" "$2")
	if alive "$pid"; then stop_node "$dir" "$2" TERM || return 1; fi
	start_node "$dir" "$2"
}

cmd_stop() {
	[ $# -ge 1 ] || usage
	local dir k rc=0
	dir=$(absdir "$1")
	[ -e "$dir/nodes" ] || return 0
	for k in $(seq 0 $(($(node_count "$dir") - 1))); do
		local pid
		pid=$(node_pid "$dir" "$k")
		[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
	done
	for k in $(seq 0 $(($(node_count "$dir") - 1))); do stop_node "$dir" "$k" TERM || rc=1; done
	return $rc
}

cmd_leader() {
	local dir k n
	dir=$(absdir "$1")
	n=$(node_count "$dir")
	for k in $(seq 0 $((n - 1))); do
		is_down "$dir" "$k" && continue
		tool "$dir" "$k" leader
		return
	done
	return 1
}

[ $# -ge 1 ] || usage
cmd=$1
shift
EXTRA_TUNABLES=()
case $cmd in
start) cmd_start "$@" ;;
layout) cmd_start --layout-only "$@" ;;
wait) cmd_wait "$@" ;;
ctdb)
	[ $# -ge 2 ] || usage
	d=$(absdir "$1")
	k=$2
	shift 2
	tool "$d" "$k" "$@"
	;;
kill) cmd_kill "$@" ;;
start-node)
	[ $# -ge 2 ] || usage
	start_node "$(absdir "$1")" "$2"
	;;
restart) cmd_restart "$@" ;;
stop) cmd_stop "$@" ;;
pid)
	[ $# -ge 2 ] || usage
	node_pid "$(absdir "$1")" "$2"
	;;
addr)
	[ $# -ge 2 ] || usage
	node_addr "$(absdir "$1")" "$2"
	;;
leader)
	[ $# -ge 1 ] || usage
	cmd_leader "$@"
	;;
-h | --help | help) usage ;;
*) usage ;;
esac
