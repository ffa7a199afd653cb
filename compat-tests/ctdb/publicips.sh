#!/usr/bin/env bash
# Public address takeover on our ctdbd and on Debian's ctdbd 4.17: two
# 3-node clusters with the same public_addresses run the same scenario, and
# after each step `ctdb ip -v all`, `ctdb ip all`, every node's own
# `ctdb ip -v` and `ctdb ifaces`, and `ctdb ipinfo` must read the same on
# both.
#
#   compat-tests/ctdb/publicips.sh [FILTER]
#
# Steps: start (IPAllocAlgorithm=0, so that the first layout does not depend
# on the order nodes come up), LCP2 from then on; disable/enable node 1;
# stop/continue node 2; node 2 killed, then back (and RUNNING) with an
# ipreallocate; addip/delip on every node; reloadips with a changed
# public_addresses; setifacelink down/up; addtickle/deltickle (gettickles
# is in every view); NoIPFailback with node 0 disabled and enabled; moveip.
# Then a mixed cluster (our node 0 leading two of Debian's) repeats the
# steps up to the node killed and back, and must show what Debian's showed.
#
# The suite runs in a network namespace it creates (unshare -n): node
# addresses 127.0.20.1-3 (ours) and 127.0.20.11-13 (Debian's) on its
# loopback, public interfaces pub0/pub1 (a veth pair) there, public
# addresses from 192.0.2.0/24 and 198.51.100.0/24.  The daemons run in test
# mode without event scripts, so no address is put on an interface (that is
# 10.interface's job) by either daemon.
#
# Environment: CTDBD_BIN (our ctdbd), COMPAT_KEEP=1 keeps the directory.
# Prints PASS/FAIL lines and ends with "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=compat-tests/ctdb/lib.sh
. "$HERE/lib.sh"

reexec_unshared PUBLICIPS_NETNS -n -- "$@"
loopback_up 127.0.20.1 127.0.20.2 127.0.20.3 127.0.20.11 127.0.20.12 127.0.20.13
veth_pair_up pub0 pub1

FILTER=${1:-}
CTDBD_BIN=${CTDBD_BIN:-$BUILT/ctdbd}
RUN=$(new_run_dir ctdb-publicips)
OURS=$RUN/ours
DEB=$RUN/debian
MIX=$RUN/mixed

cleanup() {
	stop_clusters_under "$RUN"
	remove_run
}
trap cleanup EXIT

is_down() { [ -e "$1/node$2/down" ]; }

# node_view DIR K: node K's own view.
node_view() {
	echo "== node $2: ip -v"
	ctdb_on "$1" "$2" ip -v 2>&1
	echo "== node $2: ifaces"
	ctdb_on "$1" "$2" ifaces 2>&1
	echo "== node $2: gettickles 192.0.2.2"
	ctdb_on "$1" "$2" gettickles 192.0.2.2 2>&1
	echo "== node $2: gettickles 192.0.2.2 445"
	ctdb_on "$1" "$2" gettickles 192.0.2.2 445 2>&1
}

# cluster_view DIR K: the cluster's view, asked from node K.
cluster_view() {
	echo "== ip -v all"
	ctdb_on "$1" "$2" ip -v all 2>&1
	echo "== ip all"
	ctdb_on "$1" "$2" ip all 2>&1
	echo "== ipinfo 192.0.2.1"
	ctdb_on "$1" "$2" ipinfo 192.0.2.1 2>&1
}

# views DIR OUT: what the tools show of the public addresses, from every
# node that runs, into OUT (the tools run at once).
views() {
	local dir=$1 out=$2 k first=""
	for k in 0 1 2; do
		is_down "$dir" "$k" && continue
		[ -n "$first" ] || first=$k
		node_view "$dir" "$k" >"$out.$k" &
	done
	cluster_view "$dir" "$first" >"$out.all" &
	wait
	: >"$out"
	for k in 0 1 2; do
		[ -e "$out.$k" ] && cat "$out.$k" >>"$out" && rm -f "$out.$k"
	done
	cat "$out.all" >>"$out"
	rm -f "$out.all"
}

# compare NAME [SECONDS]: both clusters show the same, within SECONDS
# (takeover runs after a recovery take a moment); what they showed is saved
# for the mixed cluster.
compare() {
	compare_views "$1" "${2:-10}" views || return
	if [ -n "${PUBLICIPS_SHOW:-}" ]; then echo "$VIEWED"; fi
	echo "$VIEWED" >"$RUN/saved/$(slug "$1")"
}

slug() { echo "$1" | tr -c 'a-zA-Z0-9\n' '_'; }

# compare_saved NAME [SECONDS]: the mixed cluster shows what Debian's showed
# at step NAME, within SECONDS.
compare_saved() {
	local name=$1 limit=${2:-10} end a b
	local saved=$RUN/saved/$(slug "$name")
	[ -e "$saved" ] || return 0
	b=$(cat "$saved")
	end=$((SECONDS + limit))
	while :; do
		views "$MIX" "$RUN/view.mixed"
		a=$(cat "$RUN/view.mixed")
		if [ "$a" = "$b" ]; then
			ok "mixed: $name"
			return 0
		fi
		[ $SECONDS -ge $end ] && break
		sleep 0.5
	done
	bad "mixed: $name" "the mixed cluster and Debian's differ (< mixed, > Debian's):
$(diff <(echo "$a") <(echo "$b") | head -40)"
}

all_nodes() { # all_nodes DIR ARGS...: ctdb ARGS on every running node
	local dir=$1 k
	shift
	for k in 0 1 2; do
		is_down "$dir" "$k" || ctdb_on "$dir" "$k" "$@" >/dev/null
	done
}

setvar_all() { # setvar_all NAME VALUE DIR
	all_nodes "$3" setvar "$1" "$2"
}

ipreallocate() { ctdb_on "$1" 0 ipreallocate >/dev/null; }

# running K DIR: until node K's runstate is RUNNING.
running() {
	local i out
	for i in $(seq 1 100); do
		out=$(ctdb_on "$2" "$1" runstate 2>/dev/null)
		[[ "$out" == *RUNNING* ]] && return 0
		sleep 0.2
	done
	return 1
}

PUBS=$RUN/public_addresses
cat >"$PUBS" <<EOF
192.0.2.1/24 pub0,pub1
192.0.2.2/24 pub1,pub0
192.0.2.3/24 pub0,pub1
192.0.2.4/24 pub1,pub0
192.0.2.5/24 pub0
EOF

start_cluster() { # start_cluster DIR BASE KIND [--leader-first]
	CLUSTER_FAILOVER=1 CLUSTER_PUBLIC_ADDRESSES=$PUBS bash "$CLUSTER" start ${4:-} "$1" 3 "$2" "$3" \
		IPAllocAlgorithm=0 TickleUpdateInterval=2 >/dev/null || return 1
	bash "$CLUSTER" wait "$1" 60 >/dev/null
}

[ -x "$CTDBD_BIN" ] || {
	echo "no ctdbd at $CTDBD_BIN" >&2
	exit 1
}
mkdir -p "$OURS" "$DEB" "$RUN/saved"
start_cluster "$OURS" 127.0.20.1 "$CTDBD_BIN" &
p=$!
start_cluster "$DEB" 127.0.20.11 debian
d=$?
wait $p
o=$?
if [ $o != 0 ] || [ $d != 0 ]; then
	bad "start" "clusters did not come up (ours $o, Debian's $d)"
	finish
fi
note "both clusters up"
both running 0
both running 1
both running 2
note "every node RUNNING"
both ipreallocate
note "ipreallocate done"
wanted start && compare "start (deterministic)" 20

both setvar_all IPAllocAlgorithm 2
both ipreallocate
wanted lcp2 && compare "LCP2 on the deterministic layout"

step_disable() { ctdb_on "$1" 1 disable >/dev/null; }
step_enable() { ctdb_on "$1" 1 enable >/dev/null; }
if wanted disable; then
	both step_disable
	compare "node 1 disabled"
	both step_enable
	compare "node 1 enabled"
fi

step_stop() { ctdb_on "$1" 2 stop >/dev/null; }
step_continue() { ctdb_on "$1" 2 continue >/dev/null; }
if wanted stop; then
	both step_stop
	compare "node 2 stopped"
	both step_continue
	compare "node 2 continued"
fi

step_kill() { bash "$CLUSTER" kill "$1" 2 KILL >/dev/null; }
step_back() {
	bash "$CLUSTER" start-node "$1" 2 >/dev/null && bash "$CLUSTER" wait "$1" 60 >/dev/null &&
		running 2 "$1" && ipreallocate "$1"
}
if wanted kill; then
	both step_kill
	compare "node 2 killed" 20
	both step_back
	compare "node 2 back" 20
fi

step_addip() {
	all_nodes "$1" addip 198.51.100.1/24 pub1
	ipreallocate "$1"
}
step_delip() {
	all_nodes "$1" delip 198.51.100.1
	ipreallocate "$1"
}
if wanted addip; then
	both step_addip
	compare "addip 198.51.100.1 on every node"
	both step_delip
	compare "delip 198.51.100.1 on every node"
fi

step_reload() {
	local k
	for k in 0 1 2; do
		grep -v '^192.0.2.5/' "$PUBS" >"$1/node$k/public_addresses"
		echo "198.51.100.2/24 pub1,pub0" >>"$1/node$k/public_addresses"
	done
	ctdb_on "$1" 0 reloadips all >/dev/null
}
if wanted reloadips; then
	both step_reload
	compare "reloadips: 192.0.2.5 gone, 198.51.100.2 new"
fi

step_link_down() {
	ctdb_on "$1" 1 setifacelink pub1 down >/dev/null
	ipreallocate "$1"
}
step_link_up() {
	ctdb_on "$1" 1 setifacelink pub1 up >/dev/null
	ipreallocate "$1"
}
if wanted setifacelink; then
	both step_link_down
	compare "node 1: pub1 link down"
	both step_link_up
	compare "node 1: pub1 link up"
fi

# holder DIR ADDR: the node that holds ADDR.
holder() { ctdb_on "$1" 0 ip all | awk -v a="$2" '$1 == a { print $2 }'; }
# Tickles are added and removed on the holder of 192.0.2.2, which sends its
# changed list to every node each TickleUpdateInterval (2 s here).
step_addtickle() {
	local h
	h=$(holder "$1" 192.0.2.2)
	ctdb_on "$1" "$h" addtickle 198.51.100.9:40001 192.0.2.2:445 >/dev/null
	ctdb_on "$1" "$h" addtickle 198.51.100.9:40002 192.0.2.2:139 >/dev/null
	ctdb_on "$1" "$h" addtickle 198.51.100.8:40003 192.0.2.2:445 >/dev/null
}
step_deltickle() {
	ctdb_on "$1" "$(holder "$1" 192.0.2.2)" deltickle 198.51.100.9:40001 192.0.2.2:445 >/dev/null
}
if wanted tickle; then
	both step_addtickle
	sleep 2.5
	compare "addtickle on the holder, lists on every node" 6
	both step_deltickle
	sleep 2.5
	compare "deltickle on the holder, lists on every node" 6
fi

step_disable0() { ctdb_on "$1" 0 disable >/dev/null; }
step_enable0() { ctdb_on "$1" 0 enable >/dev/null; }
if wanted failback; then
	both setvar_all NoIPFailback 1
	both step_disable0
	compare "NoIPFailback: node 0 disabled"
	both step_enable0
	compare "NoIPFailback: node 0 enabled, no failback"
fi

step_moveip() { ctdb_on "$1" 0 moveip 192.0.2.1 2 >/dev/null; }
# Last: moveip disables takeover runs for 20 s (2 * the tool's timelimit),
# and an ipreallocate waits for that on both daemons.
if wanted moveip; then
	both step_moveip
	compare "moveip 192.0.2.1 to node 2"
fi

# A mixed cluster, our node 0 leading two of Debian's (our takeover runs
# drive Samba's daemons), goes through the first steps again: each must
# show what Debian's cluster showed there.
mixed_steps() {
	both_stop
	start_cluster "$MIX" 127.0.20.1 "$CTDBD_BIN,debian" --leader-first || {
		bad "mixed: start" "the mixed cluster did not come up"
		return
	}
	running 0 "$MIX" && running 1 "$MIX" && running 2 "$MIX"
	ipreallocate "$MIX"
	compare_saved "start (deterministic)" 20
	setvar_all IPAllocAlgorithm 2 "$MIX"
	ipreallocate "$MIX"
	compare_saved "LCP2 on the deterministic layout"
	step_disable "$MIX"
	compare_saved "node 1 disabled"
	step_enable "$MIX"
	compare_saved "node 1 enabled"
	step_stop "$MIX"
	compare_saved "node 2 stopped"
	step_continue "$MIX"
	compare_saved "node 2 continued"
	step_kill "$MIX"
	compare_saved "node 2 killed" 20
	step_back "$MIX"
	compare_saved "node 2 back" 20
}
both_stop() {
	bash "$CLUSTER" stop "$OURS" >/dev/null 2>&1
	bash "$CLUSTER" stop "$DEB" >/dev/null 2>&1
}
if wanted mixed || [ -z "$FILTER" ]; then
	mixed_steps
fi

finish
